"""Counting encoded rows into the additive aggregate a time bucket holds, and reading a
window's summed aggregate back as the `exporter.stats.profile` profiles drift takes.

What a bucket holds (a nested dict of arrays, summed with ``windows.add_into``)::

    rows                      rows profiled
    quality[features_key]     (features, 4) data-quality row counts: missing, invalid,
                              out_of_range, unseen category (key: hash of the feature names)
    binned[tag]               only rows profiled against the reference `tag` names:
        slots, opens          every feature's and the prediction's fine-grid / category
                              counts and fine offsets, concatenated (`binned_profiles`
                              slices them back into profiles)
        outcome               the outcomes' counts
        multivariate          count + error_sum (PCA reconstruction error)

A handful of arrays per bucket keeps ``add_into`` and the scrape-time sums cheap. The key
names are part of the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from exporter.monitor.baseline import Baseline
from exporter.monitor.encoding import Encoded, binary_slots, category_counts
from exporter.state.windows import Aggregate, group_positions
from exporter.stats.fine_grid import fine_histogram
from exporter.stats.reference import NumericReference

__all__ = ["DATA_QUALITY", "binned_profiles", "outcome_profile", "profiles"]

DATA_QUALITY = "quality"  # the bucket key of the data-quality counts (checkpointed name)
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
) -> list[Aggregate]:
    """The aggregate of each of ``groups`` groups of rows of an encoded chunk: the rows
    at ``positions`` (ascending; None: all of them), row ``positions[i]`` in group
    ``group[i]``. One bincount per array for all groups instead of one per group; the
    counts and sums are the same (a weighted bincount adds each cell's terms in row
    order either way)."""
    rows = np.bincount(group, minlength=groups)
    counts = _data_quality_counts(encoded, len(baseline.features), positions, group, groups)
    result: list[Aggregate] = [
        {"rows": np.int64(rows[g]), DATA_QUALITY: {features_key: counts[g]}} for g in range(groups)
    ]
    binned = _binned(encoded, baseline, positions, group, groups)
    if baseline.tag is not None and binned is not None:
        for profile, counts in zip(result, binned, strict=True):
            profile["binned"] = {baseline.tag: counts}
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
) -> list[Aggregate] | None:
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
        return [{"slots": slots[g], "opens": opens[g]} for g in range(groups)]
    in_group = group_positions(positions, group, groups) if groups > 1 else None

    def of_group(array: np.ndarray, g: int) -> np.ndarray:  # group g's rows of a row array
        return take(array) if in_group is None else array[in_group[g]]

    return [
        {
            "slots": slots[g],
            "opens": opens[g],
            "multivariate": {
                "count": np.int64(np.count_nonzero(of_group(binned_rows, g))),
                "error_sum": np.float64(of_group(errors, g).sum()),
            },
        }
        for g in range(groups)
    ]


def outcome_profile(baseline: Baseline, task: str, actual: np.ndarray) -> Aggregate:
    """Outcome counts against the reference outcomes (empty: no outcome reference, or
    outcomes that are not labels). Binary: 1.0 positive, 0.0 other; regression: values;
    multiclass: class labels (`ModelState` maps its class indices back to labels)."""
    outcome = baseline.outcome
    if outcome is None or outcome.ref is None or baseline.tag is None:
        return {}
    values = np.asarray(actual)
    if isinstance(outcome.ref, NumericReference):
        numbers = values.astype(np.float64)
        counts, offsets = fine_histogram(
            outcome.ref.fine_edges, numbers[np.isfinite(numbers)], outcome.ref.cell_index
        )
        binned: Aggregate = {"fine_counts": counts, "fine_offsets": offsets}
    elif task == "binary":
        numbers = values.astype(np.float64)
        positive = int(np.count_nonzero(numbers == 1.0))
        negative = int(np.count_nonzero(np.isfinite(numbers))) - positive
        counts = np.zeros(len(outcome.ref.categories) + 2, dtype=np.int64)
        positive_slot, negative_slot = binary_slots(outcome.ref)
        counts[positive_slot] += positive
        counts[negative_slot] += negative
        binned = {"counts": counts}
    elif values.dtype.kind in "OUS":
        binned = {"counts": category_counts(values, outcome.ref)}
    else:
        return {}  # class indices: no labels to compare with the reference
    return {"binned": {baseline.tag: {"outcome": binned}}}


def binned_profiles(aggregate: Mapping[str, Any], baseline: Baseline) -> dict[str, Any]:
    """A window's counts against the current reference, as `exporter.stats.profile` keys:
    ``features`` (name -> profile), ``prediction``, ``outcome``, ``multivariate`` (each
    only if present). Counts under another reference tag are not included."""
    layout, tag = baseline.layout, baseline.tag
    binned = aggregate.get("binned", {}).get(tag) if tag is not None else None
    if layout is None or not binned:
        return {}
    result: dict[str, Any] = {}
    slots, opens = binned.get("slots"), binned.get("opens")
    if slots is not None and opens is not None:
        result["features"] = {}
        for section, name, kind, base, length, open_base, open_length in layout.entries:
            if kind == "numeric":
                entry = {
                    "fine_counts": slots[base : base + length],
                    "fine_offsets": opens[open_base : open_base + open_length],
                }
            else:
                entry = {"counts": slots[base : base + length]}
            if section == "features":
                result["features"][name] = entry
            else:
                result[section] = entry
    for key in ("outcome", "multivariate"):
        if key in binned:
            result[key] = binned[key]
    return result
