"""Fitting one feature's reference from its reference values: numeric (PSI edges, the
reference counted on its fine grid) or categorical (capped category counts)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from exporter.config import DEFAULT_DRIFT_BINS
from exporter.stats.fine_grid import fine_grid, fine_histogram
from exporter.stats.reference import CategoricalReference, NumericReference

__all__ = ["category_strings", "fit_categorical", "fit_numeric"]

DEFAULT_FINE_BINS = 1000
DEFAULT_MAX_CATEGORIES = 1000


def fit_numeric(
    values: np.ndarray, bins: int = DEFAULT_DRIFT_BINS, fine_bins: int = DEFAULT_FINE_BINS
) -> NumericReference:
    """Fit a numeric reference; NaN and infinite values are ignored.

    `bins` is the number of PSI bins (fewer when ties merge them), `fine_bins` the number
    of fine grid points KS and Wasserstein are computed on
    (`exporter.stats.fine_grid.fine_grid`): the KS error is at most ``2 / fine_bins``
    (exactly `NumericReference.ks_error_bound`), and a window costs about
    ``24 * fine_bins`` bytes per feature and bucket.
    """
    if fine_bins < 1:
        raise ValueError(f"fine_bins must be >= 1, got {fine_bins}")
    finite = np.asarray(values, dtype=np.float64).ravel()
    finite = np.sort(finite[np.isfinite(finite)])
    if finite.size == 0:
        raise ValueError("no finite reference values")
    psi_edges = _psi_edges(finite, bins)
    psi_counts = np.bincount(
        np.searchsorted(psi_edges, finite, side="left"), minlength=len(psi_edges) + 1
    )
    grid = fine_grid(finite, fine_bins, psi_edges)
    fine_counts, fine_offsets = fine_histogram(grid, finite)
    return NumericReference(
        psi_edges=psi_edges,
        psi_proportions=psi_counts / finite.size,
        fine_edges=grid,
        fine_counts=fine_counts,
        fine_offsets=fine_offsets,
        min=float(finite[0]),
        max=float(finite[-1]),
        mean=float(finite.mean()),
        std=float(finite.std()),
        n=int(finite.size),
    )


def _psi_edges(sorted_values: np.ndarray, bins: int) -> np.ndarray:
    """Reference quantile edges for `bins` bins, without bins empty in the reference.

    Plain ``np.quantile`` deciles (linear interpolation) for continuous data. With ties
    the deciles repeat or fall between two data values; an edge is dropped when the bin
    it closes holds no reference value (it merges into the next bin), and edges at the
    maximum are dropped (the bin above them would be empty by construction).
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    edges = np.unique(np.quantile(sorted_values, np.arange(1, bins) / bins))
    counts = np.bincount(
        np.searchsorted(edges, sorted_values, side="left"), minlength=len(edges) + 1
    )
    edges = edges[counts[:-1] > 0]
    return edges[edges < sorted_values[-1]]


def category_strings(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalize raw categorical values to strings; return ``(strings, missing_mask)``.

    Missing: None, NaN, NA, and empty or blank strings. Numbers become their text, with
    integral floats written as integers (``3.0`` -> ``"3"``) so that JSON and CSV logs
    agree. `strings` holds "" where missing.
    """
    series = pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object)
    missing = series.isna().to_numpy().copy()
    if pd.api.types.infer_dtype(series, skipna=True) in ("floating", "mixed-integer-float"):
        floats = pd.to_numeric(series, errors="coerce").to_numpy(dtype=np.float64)
        integral = (np.abs(floats) < 2.0**53) & (np.floor(floats) == floats)
        as_int = np.where(integral, floats, 0).astype(np.int64)
        series = series.where(~integral, pd.Series(as_int, dtype=object))
    text = series.where(~missing, "").astype(str).str.strip()
    missing |= (text == "").to_numpy(dtype=bool)
    return text.to_numpy(dtype=object), missing


def fit_categorical(
    values: np.ndarray, max_categories: int = DEFAULT_MAX_CATEGORIES
) -> CategoricalReference:
    """Fit a categorical reference; missing values are ignored.

    The `max_categories` most frequent categories get their own slot; rarer ones share
    one "other" slot (exact statistics need no more than `max_categories` categories).
    """
    if max_categories < 1:
        raise ValueError(f"max_categories must be >= 1, got {max_categories}")
    text, missing = category_strings(values)
    present = pd.Series(text[~missing], dtype=object)
    if present.empty:
        raise ValueError("no non-missing reference values")
    counts = present.value_counts()
    frame = pd.DataFrame({"name": counts.index.astype(str), "count": counts.to_numpy()})
    frame = frame.sort_values(["count", "name"], ascending=[False, True], kind="stable")
    kept = frame.iloc[:max_categories]
    folded = frame.iloc[max_categories:]
    return CategoricalReference(
        categories=tuple(kept["name"]),
        counts=np.append(kept["count"].to_numpy(np.int64), folded["count"].sum()).astype(np.int64),
        other_categories=frozenset(folded["name"]),
        n=int(present.size),
    )
