"""The fitted references live windows are compared against, and their JSON form.

A reference is fitted once (from `reference.path`, read by
`exporter.stats.reference_csv.read_reference_csv`, or the first `from_stream` rows) and
never changes afterwards. Everything a window needs to compute data-quality ratios and
drift statistics is kept as small arrays, so a window only ever stores counts:

- `NumericReference`: the PSI decile edges and proportions, and the reference counted
  on a *fine grid* of about ``fine_bins`` points on which KS and Wasserstein are
  computed from counts (`exporter.stats.fine_grid`; fitted by `exporter.stats.fit`).
- `CategoricalReference`: the category set (most frequent first, capped) and counts.
- `exporter.stats.multivariate.MultivariateReference`: a PCA of the standardized numeric
  features and the reference's own reconstruction-error distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from exporter.stats.fine_grid import CellIndex
from exporter.stats.multivariate import MultivariateReference

__all__ = [
    "CategoricalReference",
    "NumericReference",
    "reference_from_dict",
    "reference_to_dict",
]

STD_FLOOR = 0.001  # as Evidently: normed Wasserstein divides by max(std, 0.001)


@dataclass(frozen=True, eq=False)
class NumericReference:
    """A numeric feature's reference distribution, reduced to bins.

    Attributes:
        psi_edges: inner edges of the PSI bins (reference quantiles, ascending); bins are
            right-closed: ``(-inf, e_0], (e_0, e_1], ..., (e_last, inf)``.
        psi_proportions: reference share of each PSI bin, ``len(psi_edges) + 1``.
        fine_edges: the fine grid points ``g_0 = min, ..., g_{G-1} = max``
            (`exporter.stats.fine_grid`).
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
