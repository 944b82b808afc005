"""What the exporter learns once from reference data, to compare live windows against.

A reference is fitted once (from `reference.path`, read by `read_reference_csv` with
the prediction logs' missing-cell rule, or the first `from_stream` rows) and never changes
afterwards. Everything a window needs to compute data-quality ratios and
drift statistics is kept here as small arrays, so a window only ever stores counts:

- `NumericReference`: the PSI decile edges and proportions, and a *fine grid* of about
  ``fine_bins`` (default 1000) points on which KS and Wasserstein are computed from
  counts (see `exporter.stats.drift` for how, and the error bounds).
- `CategoricalReference`: the category set (most frequent first, capped) and counts.
- `MultivariateReference`: a PCA of the standardized numeric features and the
  reference's own reconstruction-error distribution (multivariate drift).

The fine grid is the set of points ``g_0 = min < g_1 < ... < g_{G-1} = max``: all
distinct reference values when there are no more than ``fine_bins + 1`` of them (so
discrete features are represented exactly), else ``fine_bins / 2`` probability
quantiles and ``fine_bins / 2`` points where a Wasserstein distance accumulates
(`_fine_grid`); plus the PSI edges. A value is counted in one of ``2G + 1`` *slots*:
below ``g_0`` (slot 0), on a grid point ``g_j`` (slot ``2j + 1``), strictly between
``g_{j-1}`` and ``g_j`` (slot ``2j``), or above ``g_{G-1}`` (slot ``2G``). For the open
intervals (even slots, ``G + 1`` of them) the sum of distances to the interval's finite
end is kept too, which makes the Wasserstein integral exact wherever the two CDFs do not
cross inside a fine bin, and exact outside the reference range. A window therefore holds
``3G + 6`` numbers per numeric feature (about 24 KB at the default), whatever its rows.
`exporter.stats.profile` counts a window into the same slots.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

__all__ = [
    "CategoricalReference",
    "CellIndex",
    "MultivariateReference",
    "NumericReference",
    "category_strings",
    "fine_histogram",
    "fit_categorical",
    "fit_multivariate",
    "fit_numeric",
    "infer_feature_type",
    "read_reference_csv",
    "reconstruction_errors",
    "reconstruction_errors_of_columns",
    "reference_from_dict",
    "reference_to_dict",
]

DEFAULT_PSI_BINS = 10
DEFAULT_FINE_BINS = 1000
DEFAULT_MAX_CATEGORIES = 1000
DEFAULT_EXPLAINED_VARIANCE = 0.9
NUMERIC_SHARE_FOR_INFERENCE = 0.95  # share of non-missing values that must parse as numbers
STD_FLOOR = 0.001  # as Evidently: normed Wasserstein divides by max(std, 0.001)


@dataclass(frozen=True, eq=False)
class NumericReference:
    """A numeric feature's reference distribution, reduced to bins.

    Attributes:
        psi_edges: inner edges of the PSI bins (reference quantiles, ascending); bins are
            right-closed: ``(-inf, e_0], (e_0, e_1], ..., (e_last, inf)``.
        psi_proportions: reference share of each PSI bin, ``len(psi_edges) + 1``.
        fine_edges: the fine grid points ``g_0 = min, ..., g_{G-1} = max`` (module doc).
        fine_counts: reference count in each of the ``2G + 1`` slots.
        fine_offsets: per open interval (``G + 1``), the sum over its values of the
            distance to the interval's finite end (the left end, but ``g_0`` for values
            below ``g_0``).
        min, max, mean, std: of the reference values (``std`` with ddof=0, as numpy and
            Evidently).
        n: number of reference values (missing and non-finite values are not counted).
    """

    psi_edges: np.ndarray
    psi_proportions: np.ndarray
    fine_edges: np.ndarray
    fine_counts: np.ndarray
    fine_offsets: np.ndarray
    min: float
    max: float
    mean: float
    std: float
    n: int

    @property
    def kind(self) -> Literal["numeric"]:
        return "numeric"

    @property
    def std_norm(self) -> float:
        """The divisor of normed Wasserstein: the reference std, floored at 0.001."""
        return max(self.std, STD_FLOOR)

    @property
    def ks_error_bound(self) -> float:
        """Upper bound of |binned KS - exact KS|: the largest reference share in an open bin."""
        return float(self.fine_counts[2::2].max(initial=0) / self.n)

    @cached_property
    def lower_points(self) -> np.ndarray:
        """``g_{r-1}`` for each right position r of a value on the fine grid (g_0 for 0)."""
        return np.concatenate([self.fine_edges[:1], self.fine_edges])

    @cached_property
    def cell_index(self) -> CellIndex | None:
        """Speeds up counting values on `fine_edges` (derived, not stored)."""
        return CellIndex.build(self.fine_edges, np.cumsum(self.fine_counts)[1::2] / self.n)

    @cached_property
    def psi_bin_of_slot(self) -> np.ndarray:
        """Index of the PSI bin holding each fine slot (PSI edges are fine grid points)."""
        grid = self.fine_edges
        atom_bins = np.searchsorted(self.psi_edges, grid, side="left")
        open_bins = np.searchsorted(self.psi_edges, grid, side="right")
        slots = np.empty(2 * len(grid) + 1, dtype=np.intp)
        slots[0] = 0
        slots[1::2] = atom_bins
        slots[2::2] = open_bins
        return slots


@dataclass(frozen=True, eq=False)
class CategoricalReference:
    """A categorical feature's reference distribution.

    Attributes:
        categories: the most frequent categories (at most `max_categories`), most
            frequent first, ties by name.
        counts: reference count per category, plus a last entry for `other_categories`
            (0 when nothing was folded): ``len(categories) + 1``.
        other_categories: reference categories beyond the cap, folded into one slot;
            they are known, so never counted as unseen.
        n: number of non-missing reference values.
    """

    categories: tuple[str, ...]
    counts: np.ndarray
    other_categories: frozenset[str]
    n: int

    @property
    def kind(self) -> Literal["categorical"]:
        return "categorical"

    @property
    def proportions_with_unseen(self) -> np.ndarray:
        """Reference shares over the profile slots: categories, other, unseen (always 0)."""
        return np.append(self.counts, 0) / self.n

    @cached_property
    def slot_index(self) -> tuple[pd.Index, np.ndarray]:
        """Lookup of every known category and the profile slot it counts in."""
        names = list(self.categories) + sorted(self.other_categories)
        slots = np.arange(len(names), dtype=np.intp)
        slots[len(self.categories) :] = len(self.categories)
        return pd.Index(names, dtype=object), slots


@dataclass(frozen=True, eq=False)
class MultivariateReference:
    """A PCA of the standardized numeric features and its reference reconstruction error.

    Attributes:
        features: the feature names, in the column order `reconstruction_errors` expects.
        mean, scale: reference mean and std (ddof=0; 1 where the std is 0) per feature.
        components: the kept principal axes, shape (k, d) with ``1 <= k < d``.
        pca_mean: the PCA centre in standardized space (about 0).
        error_mean, error_std: of the reference rows' own reconstruction errors.
        threshold: ``error_mean + 3 * error_std``.
        n: reference rows.
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    pca_mean: np.ndarray
    error_mean: float
    error_std: float
    threshold: float
    n: int

    @property
    def explained_components(self) -> int:
        return int(self.components.shape[0])

    @cached_property
    def complement(self) -> np.ndarray:
        """An orthonormal basis, shape ``(d - k, d)``, of the directions the kept axes
        leave out: a row's residual is its projection on them."""
        return _complement(self.components)


@dataclass(frozen=True, eq=False)
class CellIndex:
    """A faster ``np.searchsorted(grid, values, side="right")`` for one fixed grid.

    A range of the grid is cut into equal cells; each cell knows the grid position at
    its left and the few grid points inside it, so a value's position is a table lookup
    plus `steps` vectorized compare-and-step passes (about 7x faster than the binary
    search for 250-point grids). The cell width comes from the central range of the
    reference (0.5% to 99.5%). When cells of that width span the whole grid in at most
    `MAX_CELLS` (`covers_grid`), a value outside the grid lands in an end cell and needs
    nothing more; otherwise (heavy tails) the cells span the central range and any value
    outside it goes through ``searchsorted``. The result is always exactly
    ``searchsorted``'s.
    """

    grid: np.ndarray
    low: float
    inverse_width: float
    cells: int
    start: np.ndarray
    steps: int
    covers_grid: bool

    MAX_STEPS = 6
    MAX_CELLS = 1 << 13  # 64 KB of table per feature
    CENTRAL_SHARE = 0.005

    @classmethod
    def build(cls, grid: np.ndarray, cdf_at_points: np.ndarray) -> CellIndex | None:
        """Index `grid` given the reference CDF at its points; None if not worth it."""
        first = int(np.searchsorted(cdf_at_points, cls.CENTRAL_SHARE))
        last = min(int(np.searchsorted(cdf_at_points, 1 - cls.CENTRAL_SHARE)), len(grid) - 1)
        low, high = float(grid[first]), float(grid[last])
        if not high > low or (high - low) < 1e-9 * max(abs(low), abs(high)):
            return None
        inner = last - first + 1
        for cells in (8 * inner, 32 * inner, 128 * inner):
            width = (high - low) / cells
            whole = math.ceil((float(grid[-1]) - float(grid[0])) / width)
            covers = whole <= cls.MAX_CELLS
            start_at, count = (float(grid[0]), max(whole, 1)) if covers else (low, cells)
            edges = start_at + (np.arange(count + 2) - 1) * width
            positions = np.searchsorted(grid, edges, "right")
            if covers:
                positions[-1] = len(grid)  # the last cell takes every value above the grid
            start = positions[:-2]
            steps = int((positions[2:] - start).max())
            if steps <= cls.MAX_STEPS:
                return cls(grid, start_at, 1 / width, count, start.astype(np.intp), steps, covers)
        return None

    def right_positions(self, values: np.ndarray) -> np.ndarray:
        """Same as ``np.searchsorted(self.grid, values, side="right")`` for finite values.

        A value inside the indexed range lands within one cell of its own (float error is
        far below a cell), and each cell's start is the grid position one cell to its left,
        so `steps` compare-and-step passes always reach the answer: no check is needed.
        Outside the range: below the grid, cell 0 starts at position 0 and stays there;
        above it, the last cell's steps reach the end. Values outside a central range
        (about 1% of a reference-like sample) are searched."""
        scaled = values - self.low
        scaled *= self.inverse_width
        outside = None if self.covers_grid else (scaled < 0) | (scaled >= self.cells)
        np.clip(scaled, 0, self.cells - 1, out=scaled)
        positions = self.start[scaled.astype(np.intp)]
        above = self.above
        for _ in range(self.steps):
            positions += above[positions] <= values
        if outside is not None and outside.any():
            where = np.flatnonzero(outside)
            positions[where] = np.searchsorted(self.grid, values[where], side="right")
        return positions

    @cached_property
    def above(self) -> np.ndarray:
        """The grid with +inf appended: ``above[p]`` is the point a position p must stay below."""
        return np.append(self.grid, np.inf)


def fine_histogram(
    grid: np.ndarray, values: np.ndarray, index: CellIndex | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Count finite values into the ``2G + 1`` slots of a fine grid (module docstring).

    Returns ``(counts, offsets)``: int64 counts per slot, and per open interval
    (``G + 1``) the float64 sum of each value's distance to the interval's finite end:
    ``g_0 - v`` below the grid, ``v - g_{j-1}`` inside ``(g_{j-1}, g_j)`` and above.
    One grid search (`index` speeds it up) and three ``bincount`` passes.
    """
    points = len(grid)
    right = (  # half-open bins [g_{r-1}, g_r)
        np.searchsorted(grid, values, side="right")
        if index is None
        else index.right_positions(values)
    )
    lower_point = np.concatenate([grid[:1], grid])  # g_{r-1} (g_0 for r = 0)
    on_point = lower_point[right] == values
    # Centre on the grid's middle so that per-bin sums lose no precision to a large offset.
    centre = grid[points // 2]
    lower = lower_point - centre
    half_open = np.bincount(right, minlength=points + 1)
    atoms = np.bincount(right[on_point], minlength=points + 1)
    sums = np.bincount(right, weights=values - centre, minlength=points + 1)
    counts = np.empty(2 * points + 1, dtype=np.int64)
    counts[0::2] = half_open - atoms
    counts[1::2] = atoms[1:]
    # Points on g_{r-1} add 0 to their half-open bin's distance sum.
    offsets = sums - half_open * lower
    offsets[0] = -offsets[0]
    return counts, offsets


def _finite(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    return array[np.isfinite(array)]


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


def _fine_grid(sorted_values: np.ndarray, fine_bins: int, psi_edges: np.ndarray) -> np.ndarray:
    """The fine grid: all distinct values if few, else two kinds of quantiles, + PSI edges.

    Half the points are probability quantiles (every ``2n/fine_bins``-th order
    statistic), which bounds the reference mass of an open bin and so the KS error. The
    other half are quantiles of the measure ``sqrt(F (1 - F)) dx`` (interpolated, not
    data values), which is how a Wasserstein distance between two samples of the
    reference distribution accumulates: it puts points in the wide, sparse tails where
    a few values carry much of the distance, and keeps the Wasserstein error small even
    for heavy tails (lognormal, Pareto, Cauchy).
    """
    distinct, counts = np.unique(sorted_values, return_counts=True)
    if len(distinct) <= fine_bins + 1:
        return np.unique(np.concatenate([distinct, psi_edges]))
    n = len(sorted_values)
    probability_bins = max(fine_bins // 2, 1)
    positions = np.round(np.linspace(0, n - 1, probability_bins + 1)).astype(np.intp)
    share_below = np.cumsum(counts)[:-1] / n
    spread = np.diff(distinct) * np.sqrt(share_below * (1 - share_below))
    cumulative = np.concatenate([[0.0], np.cumsum(spread)])
    targets = np.linspace(0.0, cumulative[-1], fine_bins - probability_bins + 1)
    spread_points = np.interp(targets, cumulative, distinct)
    return np.unique(np.concatenate([sorted_values[positions], spread_points, psi_edges]))


def fit_numeric(
    values: np.ndarray, bins: int = DEFAULT_PSI_BINS, fine_bins: int = DEFAULT_FINE_BINS
) -> NumericReference:
    """Fit a numeric reference; NaN and infinite values are ignored.

    `bins` is the number of PSI bins (fewer when ties merge them), `fine_bins` the number
    of fine grid points KS and Wasserstein are computed on (`_fine_grid`): the KS error
    is at most ``2 / fine_bins`` (exactly `NumericReference.ks_error_bound`), and a
    window costs about ``24 * fine_bins`` bytes per feature and bucket.
    """
    if fine_bins < 1:
        raise ValueError(f"fine_bins must be >= 1, got {fine_bins}")
    finite = np.sort(_finite(values))
    if finite.size == 0:
        raise ValueError("no finite reference values")
    psi_edges = _psi_edges(finite, bins)
    psi_counts = np.bincount(
        np.searchsorted(psi_edges, finite, side="left"), minlength=len(psi_edges) + 1
    )
    grid = _fine_grid(finite, fine_bins, psi_edges)
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


def read_reference_csv(
    path: Path | str, *, text: Collection[str] = (), na_values: Sequence[str] = ()
) -> pd.DataFrame:
    """The reference CSV with the cells read as in the prediction logs (SPEC 3): only an
    empty cell, or one of the model's ``na_values``, is missing; ``NA``, ``None``, ``null``
    and ``n/a`` are values like any other (a category ``NA`` is a category). The ``text``
    columns the file has are read as strings, never as numbers. pandas' errors (an
    unreadable file) are the caller's to report."""
    header = pd.read_csv(path, nrows=0).columns
    strings = set(text) & {str(name) for name in header}
    return pd.read_csv(
        path,
        dtype=dict.fromkeys(strings, str) or None,
        keep_default_na=False,
        na_values=["", *na_values],
        low_memory=False,
    )


def infer_feature_type(series: pd.Series) -> Literal["numeric", "categorical"]:
    """Guess a feature's type from reference values.

    Numeric: a numeric dtype (not bool), or text of which at least 95% of the non-missing
    values parse as finite numbers (the rest then count as invalid). Anything else,
    including bool and an all-missing column, is categorical.
    """
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    _, missing = category_strings(series.to_numpy(dtype=object))
    present = series[~missing]
    if present.empty:
        return "categorical"
    if pd.api.types.is_bool_dtype(present.infer_objects()):
        return "categorical"
    parsed = pd.to_numeric(present.astype(str).str.strip(), errors="coerce").to_numpy(
        dtype=np.float64
    )
    share = np.count_nonzero(np.isfinite(parsed)) / parsed.size
    return "numeric" if share >= NUMERIC_SHARE_FOR_INFERENCE else "categorical"


def _standardize(ref_mean: np.ndarray, ref_scale: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    array = np.array(matrix, dtype=np.float64, copy=True)
    if array.ndim != 2 or array.shape[1] != ref_mean.size:
        raise ValueError(f"expected a (rows, {ref_mean.size}) matrix, got shape {array.shape}")
    missing = ~np.isfinite(array)
    if missing.any():
        array[missing] = np.broadcast_to(ref_mean, array.shape)[missing]
    return (array - ref_mean) / ref_scale


def _complement(components: np.ndarray) -> np.ndarray:
    """The rows completing the orthonormal rows of `components` to a basis of R^d."""
    return np.linalg.svd(components, full_matrices=True)[2][components.shape[0] :]


def _row_errors(components: np.ndarray, complement: np.ndarray, centred: np.ndarray) -> np.ndarray:
    """Mean squared residual of each column of ``centred`` (features x rows, standardized
    minus the PCA centre; left unchanged) after projecting on ``components``.

    With V the kept axes and W their `complement` ([V; W] orthonormal), the residual
    ``|z - V^T V z|^2`` is ``|W z|^2`` and also ``|z|^2 - |V z|^2``: neither builds the
    reconstruction, and the one with fewer rows is used (90% of the variance usually
    keeps most axes, leaving W a row or two: about 5x less work than V)."""
    if complement.shape[0] < components.shape[0]:
        residual = complement @ centred
        squares = np.einsum("ij,ij->j", residual, residual)
    else:
        squares = np.einsum("ij,ij->j", centred, centred)
        projected = components @ centred
        squares -= np.einsum("ij,ij->j", projected, projected)
        np.maximum(squares, 0.0, out=squares)  # rounding can leave a tiny negative
    return squares / centred.shape[0]


def fit_multivariate(
    frame: pd.DataFrame, explained_variance: float = DEFAULT_EXPLAINED_VARIANCE
) -> MultivariateReference:
    """Fit PCA on the standardized numeric features of a reference frame.

    Keeps the fewest components that explain `explained_variance` of the variance, but
    always at least 1 and fewer than the number of features (so something is left to
    reconstruct). Missing values are replaced by the reference mean.
    """
    features = tuple(str(column) for column in frame.columns)
    if len(features) < 2:
        raise ValueError("multivariate drift needs at least 2 numeric features")
    raw = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    raw = np.where(np.isfinite(raw), raw, np.nan)
    rows = int(np.count_nonzero(np.isfinite(raw).any(axis=1)))
    if rows < 2:
        raise ValueError("multivariate drift needs at least 2 reference rows")
    mean = np.nan_to_num(np.nanmean(raw, axis=0))
    std = np.nan_to_num(np.nanstd(raw, axis=0))
    scale = np.where(std > 0, std, 1.0)
    standardized = _standardize(mean, scale, raw)
    pca = PCA(n_components=len(features), svd_solver="full").fit(standardized)
    cumulative = np.cumsum(pca.explained_variance_ratio_)
    kept = int(np.searchsorted(cumulative, explained_variance - 1e-12) + 1)
    kept = min(max(kept, 1), len(features) - 1)
    components = pca.components_[:kept].copy()
    errors = _row_errors(components, _complement(components), (standardized - pca.mean_).T)
    error_mean, error_std = float(errors.mean()), float(errors.std())
    return MultivariateReference(
        features=features,
        mean=mean,
        scale=scale,
        components=components,
        pca_mean=pca.mean_.copy(),
        error_mean=error_mean,
        error_std=error_std,
        threshold=error_mean + 3 * error_std,
        n=int(raw.shape[0]),
    )


def reconstruction_errors(
    ref: MultivariateReference, matrix: np.ndarray | pd.DataFrame
) -> np.ndarray:
    """Per-row mean squared reconstruction error in standardized space.

    `matrix` has the columns of `ref.features` in that order (a DataFrame is reordered
    by name); missing and non-finite values are replaced by the reference mean.
    """
    if isinstance(matrix, pd.DataFrame):
        matrix = matrix.loc[:, list(ref.features)].to_numpy(dtype=np.float64, na_value=np.nan)
    array = np.asarray(matrix, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != ref.mean.size:
        raise ValueError(f"expected a (rows, {ref.mean.size}) matrix, got shape {array.shape}")
    return reconstruction_errors_of_columns(ref, list(array.T))


def reconstruction_errors_of_columns(
    ref: MultivariateReference, columns: Sequence[np.ndarray]
) -> np.ndarray:
    """`reconstruction_errors` of the rows whose feature values come one array per feature
    (in `ref.features` order): the monitor's layout, so no row-major copy is made."""
    centred = np.stack([np.asarray(c, dtype=np.float64) for c in columns])
    # standardized - pca_mean = (x - (mean + pca_mean * scale)) / scale, in place
    centred -= (ref.mean + ref.pca_mean * ref.scale)[:, None]
    centred /= ref.scale[:, None]
    with np.errstate(invalid="ignore", over="ignore"):  # such rows are redone below
        errors = _row_errors(ref.components, ref.complement, centred)
    incomplete = ~np.isfinite(errors)  # a NaN or inf anywhere in the row
    if incomplete.any():
        rows = centred[:, incomplete]
        absent = ~np.isfinite(rows)
        rows[absent] = np.broadcast_to(-ref.pca_mean[:, None], rows.shape)[absent]  # the mean
        errors[incomplete] = _row_errors(ref.components, ref.complement, rows)
    return errors


Reference = NumericReference | CategoricalReference | MultivariateReference
_REFERENCE_KINDS: dict[str, type[Reference]] = {
    "numeric": NumericReference,
    "categorical": CategoricalReference,
    "multivariate": MultivariateReference,
}
_ARRAY_DTYPES = {"fine_counts": np.int64, "counts": np.int64}


def reference_to_dict(ref: Reference) -> dict[str, Any]:
    """A JSON-ready dict of a fitted reference (e.g. to checkpoint a `from_stream` fit)."""
    kind = next(name for name, cls in _REFERENCE_KINDS.items() if isinstance(ref, cls))
    data: dict[str, Any] = {"kind": kind}
    for item in fields(ref):
        value = getattr(ref, item.name)
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, frozenset):
            value = sorted(value)
        elif isinstance(value, tuple):
            value = list(value)
        data[item.name] = value
    return data


def reference_from_dict(data: dict[str, Any]) -> Reference:
    """The reference `reference_to_dict` wrote."""
    cls = _REFERENCE_KINDS[data["kind"]]
    values: dict[str, Any] = {}
    for item in fields(cls):
        value = data[item.name]
        if item.name in ("categories", "features"):
            value = tuple(value)
        elif item.name == "other_categories":
            value = frozenset(value)
        elif isinstance(value, list):
            value = np.asarray(value, dtype=_ARRAY_DTYPES.get(item.name, np.float64))
        values[item.name] = value
    return cls(**values)
