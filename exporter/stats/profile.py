"""Window profiles: the additive counts a window's rows are reduced to for data quality
and drift, and the rule that splits raw numeric values into valid, missing and invalid.

Every class here adds up: the counts of two sets of rows are the elementwise sum of
theirs, so a window's are the sum of its time buckets' (`exporter.monitor.profiling`
counts them). ``add`` never shares an array with what it added, and ``state`` /
``from_state`` are the plain data the checkpoint holds.

- `NumericProfile`: a numeric value's valid values counted on the reference's fine grid,
  ``2G + 1`` slots and ``G + 1`` offset sums (`exporter.stats.fine_grid.fine_histogram`):
  slot 0 and the last count the values below the reference min and above its max, which
  makes Wasserstein exact outside the range. The PSI bins' counts are derived from them
  (`psi_counts`): PSI edges are grid points.
- `CategoricalProfile`: one slot per reference category, one for the folded "other"
  categories, and a last one for categories unseen in the reference.
- `MultivariateCounts`: rows and their summed PCA reconstruction error.
- `BinnedCounts`: every count binned against one reference; `FeatureCounts`: what a time
  bucket holds of a model's feature monitor.

Missing and invalid values are never binned, so a profile's count is the number of
values the drift statistics see. What counts as missing or invalid for a numeric value
is `split_numeric`'s rule, the same for the reference and the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from exporter.stats.additive import Additive
from exporter.stats.fit import category_strings
from exporter.stats.reference import NumericReference

__all__ = [
    "BinnedCounts",
    "CategoricalProfile",
    "FeatureCounts",
    "MultivariateCounts",
    "NumericProfile",
    "Profile",
    "psi_counts",
    "split_numeric",
]


@dataclass(eq=False)
class NumericProfile(Additive):
    """Valid numeric values on the reference's fine grid (module docstring)."""

    fine_counts: np.ndarray
    fine_offsets: np.ndarray

    @property
    def count(self) -> int:
        return int(self.fine_counts.sum())


@dataclass(eq=False)
class CategoricalProfile(Additive):
    """Counts per reference category slot, "other" and "unseen" (module docstring)."""

    counts: np.ndarray

    @property
    def count(self) -> int:
        return int(self.counts.sum())


Profile = NumericProfile | CategoricalProfile


def _profile_from_state(state: Mapping[str, Any]) -> Profile:
    if "counts" in state:
        return CategoricalProfile(np.asarray(state["counts"]))
    return NumericProfile(np.asarray(state["fine_counts"]), np.asarray(state["fine_offsets"]))


@dataclass(eq=False)
class MultivariateCounts(Additive):
    """Rows checked against the multivariate reference and their summed reconstruction
    error."""

    count: int
    error_sum: float


@dataclass(eq=False)
class BinnedCounts(Additive):
    """Every count binned against one reference, each None until something is binned:
    the features' and the prediction's slot counts and open-interval offset sums,
    concatenated in the order of the monitor's layout (`exporter.monitor.baseline.Layout`),
    the outcomes' profile and the multivariate counts."""

    slots: np.ndarray | None = None
    opens: np.ndarray | None = None
    outcome: Profile | None = None
    multivariate: MultivariateCounts | None = None

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> BinnedCounts:
        outcome, multivariate = state.get("outcome"), state.get("multivariate")
        return cls(
            state.get("slots"),
            state.get("opens"),
            None if outcome is None else _profile_from_state(outcome),
            None if multivariate is None else MultivariateCounts(**multivariate),
        )


@dataclass(eq=False)
class FeatureCounts:
    """What a time bucket (or a whole window) holds of a model's feature monitor: its
    rows, the data-quality counts of each feature ((features, 4) rows missing, invalid,
    out of range and of an unseen category) keyed by the hash of the feature names they
    are for, and the counts binned against each reference, keyed by its tag."""

    rows: int = 0
    data_quality: dict[str, np.ndarray] = field(default_factory=dict)
    binned: dict[str, BinnedCounts] = field(default_factory=dict)

    def add(self, other: FeatureCounts) -> None:
        self.rows += other.rows
        for key, counts in other.data_quality.items():
            mine = self.data_quality.get(key)
            self.data_quality[key] = counts.copy() if mine is None else mine + counts
        for tag, binned in other.binned.items():
            self.binned.setdefault(tag, BinnedCounts()).add(binned)

    def state(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "data_quality": dict(self.data_quality),
            "binned": {tag: binned.state() for tag, binned in self.binned.items()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> FeatureCounts:
        return cls(
            int(state["rows"]),
            {str(key): np.asarray(counts) for key, counts in state["data_quality"].items()},
            {str(tag): BinnedCounts.from_state(b) for tag, b in state["binned"].items()},
        )


def split_numeric(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse raw log values of a numeric feature into ``(values, invalid_mask)``.

    Numbers and numeric text parse (booleans as 0 / 1, as pandas does); None, NaN and
    empty or blank text are missing (NaN, not invalid); anything else (``"abc"``) is NaN
    and flagged invalid. ``"inf"`` parses to inf, which counts as invalid (not a finite number).
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


def psi_counts(ref: NumericReference, fine_counts: np.ndarray) -> np.ndarray:
    """Counts in the reference's PSI bins, summed from counts in its fine slots."""
    return np.bincount(
        ref.psi_bin_of_slot, weights=fine_counts, minlength=len(ref.psi_edges) + 1
    ).astype(np.int64)
