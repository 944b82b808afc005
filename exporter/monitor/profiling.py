"""Counting encoded rows into the `exporter.stats.profile.FeatureCounts` a time bucket
holds, and reading a window's summed counts back as the profiles drift takes.

Against the fitted reference, every feature's and the prediction's fine-grid or category
counts and fine offsets are counted into two flat arrays (`BinnedCounts` ``slots`` and
``opens``, sliced back into profiles by the `exporter.monitor.baseline.Layout`): a
handful of arrays per bucket keeps adding buckets and the scrape-time sums cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exporter.monitor.baseline import Baseline
from exporter.monitor.encoding import Encoded, binary_slots, category_counts
from exporter.state.windows import group_positions
from exporter.stats.fine_grid import fine_histogram
from exporter.stats.profile import (
    BinnedCounts,
    CategoricalProfile,
    FeatureCounts,
    MultivariateCounts,
    NumericProfile,
    Profile,
)
from exporter.stats.reference import NumericReference

__all__ = ["WindowProfiles", "binned_profiles", "outcome_profile", "profiles"]

# rows per data-quality code (0..15) @ _BITS: the counts of each of the code's 4 bits
_BITS = np.array([[(code >> bit) & 1 for bit in range(4)] for code in range(16)], dtype=np.int64)


def profiles(
    encoded: Encoded,
    baseline: Baseline,
    positions: np.ndarray | None,
    group: np.ndarray,
    groups: int,
    *,
    features_key: str,
) -> list[FeatureCounts]:
    """The counts of each of ``groups`` groups of rows of an encoded chunk: the rows
    at ``positions`` (ascending; None: all of them), row ``positions[i]`` in group
    ``group[i]``. One bincount per array for all groups instead of one per group; the
    counts and sums are the same (a weighted bincount adds each cell's terms in row
    order either way)."""
    rows = np.bincount(group, minlength=groups)
    counts = _data_quality_counts(encoded, len(baseline.features), positions, group, groups)
    result = [FeatureCounts(int(rows[g]), {features_key: counts[g]}) for g in range(groups)]
    binned = _binned(encoded, baseline, positions, group, groups)
    if baseline.tag is not None and binned is not None:
        for profile, one in zip(result, binned, strict=True):
            profile.binned[baseline.tag] = one
    return result


def _data_quality_counts(
    encoded: Encoded,
    features: int,
    positions: np.ndarray | None,
    group: np.ndarray,
    groups: int,
) -> np.ndarray:
    """(groups, features, 4) row counts per data-quality problem."""
    rows = np.bincount(group, minlength=groups)
    # Count the rows with a non-zero code only; a feature's code-0 count is the rest of
    # its group's rows (the same integers as a bincount of every code).
    feature, row = encoded.flagged_cells()
    if positions is None:
        group_of = group
    else:
        group_of = np.full(encoded.rows, -1, dtype=np.intp)
        group_of[positions] = group
        kept = group_of[row] >= 0
        feature, row = feature[kept], row[kept]
    keys = group_of[row] * (16 * features) + feature * 16 + encoded.data_quality[feature, row]
    counts = np.bincount(keys, minlength=groups * 16 * features).reshape(groups, features, 16)
    counts[:, :, 0] = rows[:, None] - counts.sum(axis=2)
    return counts @ _BITS


def _binned(
    encoded: Encoded,
    baseline: Baseline,
    positions: np.ndarray | None,
    group: np.ndarray,
    groups: int,
) -> list[BinnedCounts] | None:
    """Each group's binned counts against the fitted reference (None: none encoded)."""
    layout = baseline.layout
    if layout is None or encoded.slots is None or encoded.distances is None:
        return None

    def take(array: np.ndarray) -> np.ndarray:  # rows are the last axis
        return array if positions is None else array[..., positions]

    # one set of keys for the counts and the distance sums of every slot
    width = layout.slots + 1
    slot_keys = take(encoded.slots)
    keys = (slot_keys if groups == 1 else slot_keys + group * width).ravel()
    slots = np.bincount(keys, minlength=groups * width).reshape(groups, width)
    sums = np.bincount(
        keys, weights=take(encoded.distances).ravel(), minlength=groups * width
    ).reshape(groups, width)
    slots = slots[:, : layout.slots]
    opens = sums[:, layout.open_slots]
    errors, binned_rows = encoded.errors, encoded.binned_rows
    if errors is None or binned_rows is None:
        return [BinnedCounts(slots[g], opens[g]) for g in range(groups)]
    in_group = group_positions(positions, group, groups) if groups > 1 else None

    def of_group(array: np.ndarray, g: int) -> np.ndarray:  # group g's rows of a row array
        return take(array) if in_group is None else array[in_group[g]]

    return [
        BinnedCounts(
            slots[g],
            opens[g],
            multivariate=MultivariateCounts(
                int(np.count_nonzero(of_group(binned_rows, g))), float(of_group(errors, g).sum())
            ),
        )
        for g in range(groups)
    ]


def outcome_profile(baseline: Baseline, task: str, actual: np.ndarray) -> FeatureCounts:
    """Outcome counts against the reference outcomes (empty: no outcome reference, or
    outcomes that are not labels). Binary: 1.0 positive, 0.0 other; regression: values;
    multiclass: class labels (`ModelState` maps its class indices back to labels)."""
    outcome = baseline.outcome
    if outcome is None or outcome.ref is None or baseline.tag is None:
        return FeatureCounts()
    values = np.asarray(actual)
    if isinstance(outcome.ref, NumericReference):
        numbers = values.astype(np.float64)
        counts, offsets = fine_histogram(
            outcome.ref.fine_edges, numbers[np.isfinite(numbers)], outcome.ref.cell_index
        )
        binned: Profile = NumericProfile(counts, offsets)
    elif task == "binary":
        numbers = values.astype(np.float64)
        positive = int(np.count_nonzero(numbers == 1.0))
        negative = int(np.count_nonzero(np.isfinite(numbers))) - positive
        counts = np.zeros(len(outcome.ref.categories) + 2, dtype=np.int64)
        positive_slot, negative_slot = binary_slots(outcome.ref)
        counts[positive_slot] += positive
        counts[negative_slot] += negative
        binned = CategoricalProfile(counts)
    elif values.dtype.kind in "OUS":
        binned = CategoricalProfile(category_counts(values, outcome.ref))
    else:
        return FeatureCounts()  # class indices: no labels to compare with the reference
    return FeatureCounts(binned={baseline.tag: BinnedCounts(outcome=binned)})


@dataclass(frozen=True)
class WindowProfiles:
    """A window's counts binned against the current reference, as drift takes them
    (each feature's, the prediction's and the outcome's profile, the multivariate counts;
    None or left out when there are none)."""

    features: dict[str, Profile] = field(default_factory=dict)
    prediction: Profile | None = None
    outcome: Profile | None = None
    multivariate: MultivariateCounts | None = None


def binned_profiles(counts: FeatureCounts, baseline: Baseline) -> WindowProfiles:
    """A window's counts against the current reference; counts under another reference
    tag are not included."""
    layout, tag = baseline.layout, baseline.tag
    binned = counts.binned.get(tag) if tag is not None else None
    if layout is None or binned is None:
        return WindowProfiles()
    features: dict[str, Profile] = {}
    prediction = None
    slots, opens = binned.slots, binned.opens
    if slots is not None and opens is not None:
        for entry in layout.entries:
            if entry.section == "features":
                features[entry.name] = entry.profile(slots, opens)
            else:
                prediction = entry.profile(slots, opens)
    return WindowProfiles(features, prediction, binned.outcome, binned.multivariate)
