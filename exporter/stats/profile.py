"""Window profiles: the count arrays a feature's window is reduced to, as drift reads them.

A *profile* is a mapping of int64/float64 arrays (0-d for scalars) that add up: the
profile of two sets of rows is the elementwise sum of theirs, so a window's is the sum
of its time buckets' (``exporter.monitor`` builds them). Keys:

- ``count``, ``missing``, ``invalid`` (optional): rows, and the rows without a value
  (missing) or with one that is not a finite number (invalid, numeric only); the drift
  statistics see the others (`valid_count`).
- numeric: ``fine_counts``, ``fine_offsets``: the valid values counted on the
  reference's fine grid, ``2G + 1`` slots and ``G + 1`` offset sums
  (`exporter.stats.fine_grid.fine_histogram`): slot 0 and the last count the values
  below the reference min and above its max, which makes Wasserstein exact outside the
  range. The PSI bins' counts are derived from them (`psi_counts`): PSI edges are grid
  points.
- categorical: ``counts``, one slot per reference category, one for the folded "other"
  categories, and a last one for categories unseen in the reference.

What counts as missing or invalid for a numeric value is `split_numeric`'s rule, the same
for the reference and the log.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from exporter.stats.fit import category_strings
from exporter.stats.reference import NumericReference

__all__ = ["psi_counts", "split_numeric", "valid_count"]


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


def valid_count(profile: Mapping[str, np.ndarray]) -> int:
    """Values the drift statistics see: rows that are neither missing nor invalid."""
    invalid = int(profile.get("invalid", 0))
    return int(profile["count"]) - int(profile["missing"]) - invalid


def psi_counts(ref: NumericReference, profile: Mapping[str, np.ndarray]) -> np.ndarray:
    """Counts in the reference's PSI bins, summed from the fine slots."""
    return np.bincount(
        ref.psi_bin_of_slot, weights=profile["fine_counts"], minlength=len(ref.psi_edges) + 1
    ).astype(np.int64)
