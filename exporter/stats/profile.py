"""Per-chunk profiles: a feature's values reduced to count arrays that add up.

A *profile* is a ``dict[str, np.ndarray]`` of int64/float64 arrays (0-d for scalars).
Profiles of the same feature and reference have the same keys and shapes, and the
profile of a concatenation is the elementwise sum of the profiles (`merge`), so a
window's aggregate is the sum of its time buckets and memory never depends on rows.
Computing one costs a few vectorized passes over the chunk (one ``searchsorted`` on the
fine grid per numeric feature, one hash lookup per categorical feature), no Python loop
per row.

Numeric profile keys (`numeric_profile`):

- ``count``: rows in the chunk.
- ``missing``: NaN values that are not invalid (null, empty, NaN in the log).
- ``invalid``: rows flagged by `invalid_mask` (text in a numeric column) plus ``±inf``.
- ``out_of_range``: valid values below the lower bound or above the upper bound, each
  bound being the configured one if given, else the reference's min / max (so
  ``{min: 0}`` alone checks ``v < 0`` and ``v > reference max``). Bounds are inclusive.
- ``fine_counts``, ``fine_offsets`` (only with a reference): the valid values counted on
  the reference's fine grid, ``2G + 1`` slots and ``G + 1`` offset sums
  (`exporter.stats.reference`). ``fine_counts[0]`` / ``fine_offsets[0]`` count and sum the
  distance of values below the reference min, ``fine_counts[-1]`` / ``fine_offsets[-1]``
  those above the reference max, which makes Wasserstein exact outside the range.
  PSI counts are derived from them (`psi_counts`): PSI edges are grid points.

Categorical profile keys (`categorical_profile`):

- ``count``, ``missing`` (None, NaN, empty or blank).
- ``counts`` (only with a reference): one slot per reference category, one for the
  folded "other" categories, and a last one for categories unseen in the reference.

Ratios (`quality_ratios`): **every denominator is the window's row count** (``count``),
missing and invalid rows included, so the ratios of one feature add up to at most 1
and read the same way: "share of this window's rows that ...". Drift statistics are
computed over the valid, non-missing values only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from exporter.stats.reference import (
    CategoricalReference,
    MultivariateReference,
    NumericReference,
    category_strings,
    fine_histogram,
    reconstruction_errors,
)

__all__ = [
    "Profile",
    "categorical_profile",
    "empty_categorical_profile",
    "empty_numeric_profile",
    "empty_reconstruction_profile",
    "merge",
    "numeric_profile",
    "psi_counts",
    "quality_ratios",
    "reconstruction_profile",
    "split_numeric",
    "valid_count",
]

Profile = dict[str, np.ndarray]


def _scalar(value: int | float = 0, dtype: type = np.int64) -> np.ndarray:
    return np.array(value, dtype=dtype)


def split_numeric(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse raw log values of a numeric feature into ``(values, invalid_mask)``.

    Numbers and numeric text parse (booleans as 0 / 1, as pandas does); None, NaN and
    empty or blank text are missing (NaN, not invalid); anything else (``"abc"``) is NaN
    and flagged invalid. ``"inf"`` parses to inf, which `numeric_profile` counts invalid.
    """
    array = np.asarray(raw)
    if array.dtype.kind in "iuf":
        values = array.astype(np.float64, copy=False).ravel()  # read, never written
        return values, np.zeros(values.shape, dtype=bool)
    flat = array.ravel().astype(object)
    values = pd.to_numeric(pd.Series(flat, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    invalid = np.isnan(values)
    if invalid.any():  # only the values that did not parse are checked for missing
        _, missing = category_strings(flat[invalid])
        invalid[invalid] = ~missing
    return values, invalid


def empty_numeric_profile(ref: NumericReference | None) -> Profile:
    """A numeric profile of zero rows, with the shapes `numeric_profile` gives for `ref`."""
    profile = {"count": _scalar(), "missing": _scalar(), "invalid": _scalar()}
    profile["out_of_range"] = _scalar()
    if ref is not None:
        grid_points = len(ref.fine_edges)
        profile["fine_counts"] = np.zeros(2 * grid_points + 1, dtype=np.int64)
        profile["fine_offsets"] = np.zeros(grid_points + 1, dtype=np.float64)
    return profile


def numeric_profile(
    values: np.ndarray,
    invalid_mask: np.ndarray | None,
    ref: NumericReference | None,
    min_value: float | None = None,
    max_value: float | None = None,
) -> Profile:
    """Count one chunk of a numeric feature (float values, NaN = missing).

    `invalid_mask` marks rows whose raw value was present but not a number (their value
    is ignored); None means none. See the module docstring for the keys.
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    flagged = (
        np.zeros(array.shape, dtype=bool)
        if invalid_mask is None
        else np.asarray(invalid_mask, dtype=bool).ravel()
    )
    if flagged.shape != array.shape:
        raise ValueError(f"invalid_mask shape {flagged.shape} != values shape {array.shape}")
    nan = np.isnan(array)
    valid = ~nan & ~flagged & np.isfinite(array)
    profile = empty_numeric_profile(ref)
    profile["count"] = _scalar(array.size)
    profile["missing"] = _scalar(np.count_nonzero(nan & ~flagged))
    profile["invalid"] = _scalar(array.size - np.count_nonzero(valid) - int(profile["missing"]))
    finite = array[valid]
    lower = min_value if min_value is not None else (ref.min if ref is not None else None)
    upper = max_value if max_value is not None else (ref.max if ref is not None else None)
    outside = np.zeros(finite.shape, dtype=bool)
    if lower is not None:
        outside |= finite < lower
    if upper is not None:
        outside |= finite > upper
    profile["out_of_range"] = _scalar(np.count_nonzero(outside))
    if ref is not None:
        profile["fine_counts"], profile["fine_offsets"] = fine_histogram(
            ref.fine_edges, finite, ref.cell_index
        )
    return profile


def empty_categorical_profile(ref: CategoricalReference | None) -> Profile:
    """A categorical profile of zero rows, with the shapes `categorical_profile` gives."""
    profile = {"count": _scalar(), "missing": _scalar()}
    if ref is not None:
        profile["counts"] = np.zeros(len(ref.categories) + 2, dtype=np.int64)
    return profile


def categorical_profile(values: np.ndarray, ref: CategoricalReference | None) -> Profile:
    """Count one chunk of a categorical feature (see `category_strings` for missing).

    Values are hashed once (``pandas.factorize``); only the chunk's distinct values are
    normalized and looked up in the reference.
    """
    codes, distinct = pd.factorize(np.asarray(values, dtype=object).ravel(), use_na_sentinel=True)
    text, blank = category_strings(np.asarray(distinct, dtype=object))
    present = codes >= 0
    present[present] = ~blank[codes[present]]
    profile = empty_categorical_profile(ref)
    profile["count"] = _scalar(codes.size)
    profile["missing"] = _scalar(codes.size - np.count_nonzero(present))
    if ref is not None:
        index, slot_of = ref.slot_index
        unseen = len(ref.categories) + 1
        positions = index.get_indexer(text)
        distinct_slots = np.where(positions >= 0, slot_of[positions], unseen)
        profile["counts"] = np.bincount(
            distinct_slots[codes[present]], minlength=unseen + 1
        ).astype(np.int64)
    return profile


def empty_reconstruction_profile() -> Profile:
    """A multivariate profile of zero rows."""
    return {"count": _scalar(), "error_sum": _scalar(0.0, np.float64)}


def reconstruction_profile(ref: MultivariateReference, matrix: np.ndarray) -> Profile:
    """Rows and summed PCA reconstruction error of a chunk (columns as `ref.features`)."""
    errors = reconstruction_errors(ref, matrix)
    return {"count": _scalar(errors.size), "error_sum": _scalar(errors.sum(), np.float64)}


def merge(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> Profile:
    """The profile of both chunks: elementwise sums (same keys and shapes required)."""
    if a.keys() != b.keys():
        raise ValueError(f"cannot merge profiles with keys {sorted(a)} and {sorted(b)}")
    merged: Profile = {}
    for key, left in a.items():
        right = b[key]
        if np.shape(left) != np.shape(right):
            raise ValueError(f"cannot merge {key!r}: shapes {np.shape(left)} != {np.shape(right)}")
        merged[key] = np.asarray(np.add(left, right))
    return merged


def valid_count(profile: Mapping[str, np.ndarray]) -> int:
    """Values the drift statistics see: rows that are neither missing nor invalid."""
    invalid = int(profile.get("invalid", 0))
    return int(profile["count"]) - int(profile["missing"]) - invalid


def psi_counts(ref: NumericReference, profile: Mapping[str, np.ndarray]) -> np.ndarray:
    """Counts in the reference's PSI bins, summed from the fine slots."""
    return np.bincount(
        ref.psi_bin_of_slot, weights=profile["fine_counts"], minlength=len(ref.psi_edges) + 1
    ).astype(np.int64)


def quality_ratios(profile: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Data-quality ratios over the window's row count; empty for a window of 0 rows.

    Keys: ``missing``, plus ``invalid`` and ``out_of_range`` for numeric features and
    ``unseen_category`` for categorical ones with a reference.
    """
    rows = int(profile["count"])
    if rows == 0:
        return {}
    ratios = {"missing": int(profile["missing"]) / rows}
    for key in ("invalid", "out_of_range"):
        if key in profile:
            ratios[key] = int(profile[key]) / rows
    if "counts" in profile:
        ratios["unseen_category"] = int(profile["counts"][-1]) / rows
    return ratios
