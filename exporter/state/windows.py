"""Event-time sliding windows as rings of additive time buckets.

A window of length W is cut into ``n`` buckets of width ``W / n`` aligned to the Unix
epoch. A row with event time ``t`` lands in bucket ``floor(t / width)``. With watermark
``wm`` (the newest prediction time of the model) the window holds the ``n`` buckets up to
and including the watermark's bucket, i.e. it covers
``(ceil_to_bucket(wm) - W, ceil_to_bucket(wm)]``: the window ``(wm - W, wm]`` with its
trailing edge quantised to one bucket (1/n of the window). This keeps memory at
``n x bucket size`` whatever the row count, and the result depends only on the rows
and the watermark, so live, restart and backfill agree.

A bucket holds the model-quality counts of each model version and the feature monitor's
counts of its rows; two buckets add elementwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from exporter.config import Window
from exporter.stats.model_quality import ModelQualityCounts
from exporter.stats.profile import FeatureCounts


@dataclass(eq=False)
class Bucket:
    """What one time bucket (or a whole window) holds: model-quality counts by
    model-version slot, and the feature monitor's counts (empty without a monitor)."""

    model_quality: dict[int, ModelQualityCounts] = field(default_factory=dict)
    features: FeatureCounts = field(default_factory=FeatureCounts)

    def counts(self, version: int) -> ModelQualityCounts:
        """The model-quality counts of a model-version slot, created empty on first use."""
        return self.model_quality.setdefault(version, ModelQualityCounts())

    def add(self, other: Bucket) -> None:
        for version, counts in other.model_quality.items():
            self.counts(version).add(counts)
        self.features.add(other.features)

    def fold_versions(self, slots: Iterable[int], into: int) -> None:
        """Move the counts of these version slots to slot ``into``."""
        for slot in slots:
            counts = self.model_quality.pop(slot, None)
            if counts is not None:
                self.counts(into).add(counts)

    def state(self) -> dict[str, Any]:
        return {
            "model_quality": {v: counts.state() for v, counts in self.model_quality.items()},
            "features": self.features.state(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Bucket:
        quality = state["model_quality"]
        return cls(
            {int(v): ModelQualityCounts.from_state(c) for v, c in quality.items()},
            FeatureCounts.from_state(state["features"]),
        )


class BucketRing:
    """The time buckets of one window."""

    def __init__(self, window: Window, n_buckets: int) -> None:
        self.window = window
        self.n_buckets = n_buckets
        self.width = window.seconds / n_buckets
        self.buckets: dict[int, Bucket] = {}

    def bucket_of(self, timestamps: np.ndarray) -> np.ndarray:
        return np.floor(timestamps / self.width).astype(np.int64)

    def oldest_live_bucket(self, watermark: float) -> int:
        return math.floor(watermark / self.width) - self.n_buckets + 1

    def bucket(self, index: int) -> Bucket:
        return self.buckets.setdefault(index, Bucket())

    def evict(self, watermark: float) -> None:
        oldest = self.oldest_live_bucket(watermark)
        for index in [i for i in self.buckets if i < oldest]:
            del self.buckets[index]

    def total(self) -> Bucket:
        total = Bucket()
        for bucket in self.buckets.values():
            total.add(bucket)
        return total

    def live_groups(
        self, timestamps: np.ndarray, watermark: float
    ) -> tuple[np.ndarray | None, np.ndarray, list[Bucket]] | None:
        """The rows in live buckets, grouped by bucket without a row mask per bucket: their
        positions (ascending; None: every row), each one's group number, and each group's
        bucket, in ascending bucket order.

        None when no row is in a live bucket."""
        if len(timestamps) == 0:
            return None
        oldest = self.oldest_live_bucket(watermark)
        local = self.bucket_of(timestamps) - oldest
        live = local >= 0
        if live.all():
            positions = None
        else:
            positions = np.flatnonzero(live)
            if len(positions) == 0:
                return None
            local = local[positions]
        found, group = dense_groups(local, 4 * self.n_buckets)
        uniques = (found + oldest).tolist()
        return positions, group, [self.bucket(int(index)) for index in uniques]

    def version_groups(
        self, timestamps: np.ndarray, versions: np.ndarray, watermark: float
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[Bucket, int]]] | None:
        """The rows in live buckets, grouped by (bucket, model-version slot): the live-row
        mask, each live row's group number, and each group's bucket and version slot.

        None when no row is in a live bucket."""
        if len(timestamps) == 0:
            return None
        indices = self.bucket_of(timestamps)
        oldest = self.oldest_live_bucket(watermark)
        live = indices >= oldest
        if not live.any():
            return None
        width = int(versions.max()) + 1
        combined = (indices[live] - oldest) * width + versions[live]
        uniques, group = dense_groups(combined, 4 * self.n_buckets * width)
        keys = [(self.bucket(oldest + u // width), u % width) for u in uniques.tolist()]
        return live, group, keys

    def state(self) -> dict[str, Any]:
        return {"buckets": {index: bucket.state() for index, bucket in self.buckets.items()}}

    def restore(self, state: Mapping[str, Any]) -> None:
        self.buckets = {int(k): Bucket.from_state(v) for k, v in state["buckets"].items()}


def dense_groups(values: np.ndarray, span_limit: int) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True)`` for integers: the sorted distinct values
    and each value's group number, from one bincount when they span at most
    ``span_limit`` (the usual case for bucket numbers), without np.unique's sort."""
    low, high = int(values.min()), int(values.max())
    if high - low > span_limit:
        found, group = np.unique(values, return_inverse=True)
        return found, group.reshape(-1).astype(np.intp, copy=False)
    present = np.flatnonzero(np.bincount(values - low, minlength=high - low + 1))
    number = np.zeros(high - low + 1, dtype=np.intp)
    number[present] = np.arange(len(present), dtype=np.intp)
    return present + low, number[values - low]


def group_positions(
    positions: np.ndarray | None, group: np.ndarray, groups: int
) -> list[np.ndarray]:
    """Each group's row positions, ascending (as ``np.flatnonzero`` of its mask gives them),
    from one stable sort instead of one full-length mask per group."""
    order = np.argsort(group, kind="stable")
    rows = order if positions is None else positions[order]
    bounds = np.cumsum(np.bincount(group, minlength=groups)).tolist()
    return [rows[start:end] for start, end in zip([0, *bounds[:-1]], bounds, strict=True)]
