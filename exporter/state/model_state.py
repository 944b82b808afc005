"""Everything the exporter knows about one model: counters, window buckets, pending joins.

Rows arrive already parsed (``exporter.ingest.rows``); this module turns them into additive
counts. It does no I/O and reads no clock of its own: the caller passes ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from exporter.config import (
    DEFAULT_MAX_FUTURE,
    DEFAULT_MAX_LABEL_VALUES,
    DEFAULT_WINDOW_BUCKETS,
    ModelConfig,
    Window,
)
from exporter.ingest.rows import ParsedRows
from exporter.state.admission import admit_outcomes, admit_predictions
from exporter.state.join import EventTimeJoin, Matches
from exporter.state.labels import LabelCapper, RecentLabels, canonical_labels
from exporter.state.row_values import TaskValues
from exporter.state.totals import VersionTotals
from exporter.state.windows import Bucket, BucketRing, group_positions
from exporter.stats.model_quality import ModelQualityCounts, Outcomes, counts_by_group
from exporter.stats.profile import FeatureCounts


class FeatureMonitor(Protocol):
    """Data quality and drift for one model (``exporter.monitor.monitor``): turns rows into
    additive counts that live in the same time buckets as the model-quality counts."""

    def observe(self, frame: pd.DataFrame) -> None:
        """Sees every accepted prediction chunk, in log order, before it is bucketed (a
        ``from_stream`` reference is fitted from the first rows)."""

    def profile_groups(
        self, positions: np.ndarray | None, group: np.ndarray, groups: int
    ) -> list[FeatureCounts]:
        """Counts of the features and the prediction of each group of rows at once: the
        rows at ``positions`` (ascending; None: all) of the chunk last given to ``observe``,
        row ``positions[i]`` in group ``group[i]``: each time bucket's share, in bucket
        order."""

    def profile_outcomes(self, actual: np.ndarray) -> FeatureCounts:
        """Counts of these outcomes (binary: 1.0 = positive; multiclass: the class label;
        regression: the value), for one time bucket of their predictions."""

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...


# How the engine gets each model's feature monitor (None: the model has none).
MonitorFactory = Callable[[ModelConfig], FeatureMonitor | None]


@dataclass(frozen=True)
class WindowSnapshot:
    window: Window
    model_quality: dict[str, ModelQualityCounts]  # model_version label -> summed counts
    features: FeatureCounts  # the feature monitor's summed counts (empty without one)


@dataclass(frozen=True)
class ModelSnapshot:
    model: ModelConfig
    watermark: float | None
    last_outcome_timestamp: float | None
    predictions_total: dict[str, int]  # by model_version label
    outcomes_total: dict[str, int]
    confusion_total: dict[tuple[str, str, str], int]  # (version, actual, predicted) -> count
    windows: tuple[WindowSnapshot, ...]
    pending: int  # predictions waiting for their outcome
    waiting_outcomes: int  # outcomes waiting for their prediction
    expired_total: int
    unmatched_total: int


class ModelState:
    def __init__(
        self,
        model: ModelConfig,
        *,
        max_label_values: int = DEFAULT_MAX_LABEL_VALUES,
        window_buckets: int = DEFAULT_WINDOW_BUCKETS,
        monitor: FeatureMonitor | None = None,
        max_future: float = DEFAULT_MAX_FUTURE,
    ) -> None:
        self.model = model
        self.max_future = max_future
        self.versions = RecentLabels(max_label_values)
        self.values = TaskValues(model, max_label_values)
        self.rings = [BucketRing(w, window_buckets) for w in model.windows]
        self.monitor = monitor
        self.watermark: float | None = None
        self.last_outcome_timestamp: float | None = None
        self.totals = VersionTotals()
        outcomes = model.outcomes
        self.join = EventTimeJoin(
            outcomes.max_delay if outcomes else 0.0, outcomes.max_pending if outcomes else 0
        )

    # --- ingest ------------------------------------------------------------
    def add_predictions(self, rows: ParsedRows, now: float) -> dict[str, int]:
        """Count a chunk of prediction rows; return rejections by reason (late, duplicate, ...)."""
        frame, timestamps = rows.frame, rows.timestamps
        if len(frame) == 0:
            return {}
        columns = self.model.columns
        ids = None
        if self.model.outcomes is not None and columns.id in frame.columns:
            ids = frame[columns.id].astype(str).to_numpy(dtype=object)
        # before any row is dropped: class indices go to labels in order of first sight
        values = self.values.predictions(frame[columns.prediction])
        verdict = admit_predictions(
            timestamps,
            ids,
            horizon=now + self.max_future,
            watermark=self.watermark,
            lateness=self.model.longest_window,
            join=self.join,
        )
        keep = verdict.keep
        if not keep.any():
            return verdict.rejected
        if not keep.all():
            frame = frame.loc[keep].reset_index(drop=True)
            timestamps = timestamps[keep]
            values = values[keep]
            ids = ids[keep] if ids is not None else None

        watermark = self.watermark = max(self.watermark or -np.inf, float(timestamps.max()))
        version_index = self._version_indices(frame, timestamps)
        self.totals.count_predictions(version_index)
        actual = self.values.outcomes(frame)
        has_outcome = np.isfinite(actual)
        if self.monitor is not None:
            self.monitor.observe(frame)
        for ring in self.rings:
            self._bucket_predictions(ring, timestamps, version_index, watermark)
            ring.evict(watermark)

        if has_outcome.any():
            joined = self.values.joined(values[has_outcome], actual[has_outcome])
            self._add_outcomes(timestamps[has_outcome], version_index[has_outcome], joined)
            self._note_outcome_time(float(timestamps[has_outcome].max()))
        if ids is not None:
            waiting = ~has_outcome
            matches = self.join.add_predictions(
                ids[waiting],
                timestamps[waiting],
                version_index[waiting],
                values[waiting],
                watermark,
            )
            self._add_matches(matches)
        return verdict.rejected

    def add_outcomes(self, rows: ParsedRows, now: float) -> dict[str, int]:
        """Join a chunk of outcome rows to waiting predictions by id (``exporter.state.join``);
        return rejections by reason."""
        frame = rows.frame
        if len(frame) == 0:
            return {}
        ids = frame[self.model.columns.id].astype(str).to_numpy(dtype=object)
        actual = self.values.outcomes(frame)
        timestamps = rows.timestamps
        if len(timestamps) != len(frame):
            timestamps = np.full(len(frame), np.nan)
        verdict = admit_outcomes(
            ids, actual, timestamps, horizon=now + self.max_future, join=self.join
        )
        keep = verdict.keep
        if not keep.any():
            return verdict.rejected
        given = timestamps[keep & np.isfinite(timestamps)]
        self._note_outcome_time(float(given.max()) if len(given) else now)
        self._add_matches(self.join.add_outcomes(ids[keep], timestamps[keep], actual[keep]))
        return verdict.rejected

    def enforce_bounds(self, *, predictions_behind: bool, outcomes_behind: bool) -> None:
        """Hold the join within max_pending per side (``EventTimeJoin.enforce_bounds``):
        the engine says which of the model's logs still has unread data."""
        if self.model.outcomes is not None:
            self.join.enforce_bounds(
                predictions_behind=predictions_behind, outcomes_behind=outcomes_behind
            )

    @property
    def outcome_stream_time(self) -> float:
        """How far the outcome log has been read, in event time (-inf: not at all)."""
        return self.join.outcome_time

    def _add_matches(self, matches: Matches) -> None:
        if len(matches):
            joined = self.values.joined(matches.values, matches.actual)
            self._add_outcomes(matches.timestamps, matches.versions, joined)

    def _bucket_predictions(
        self, ring: BucketRing, timestamps: np.ndarray, versions: np.ndarray, watermark: float
    ) -> None:
        """Count predictions and profile their rows in the ring's live buckets."""
        groups = ring.version_groups(timestamps, versions, watermark)
        if groups is not None:
            _, group, keys = groups
            counts = np.bincount(group, minlength=len(keys))
            for (bucket, version), count in zip(keys, counts.tolist(), strict=True):
                bucket.counts(version).predictions += count
        live = None if self.monitor is None else ring.live_groups(timestamps, watermark)
        if self.monitor is not None and live is not None:
            positions, group, buckets = live
            profiles = self.monitor.profile_groups(positions, group, len(buckets))
            for bucket, profile in zip(buckets, profiles, strict=True):
                bucket.features.add(profile)

    def _add_outcomes(self, timestamps: np.ndarray, versions: np.ndarray, rows: Outcomes) -> None:
        self.totals.count_outcomes(versions, rows, self.values.confusion_size)
        watermark = self.watermark
        if watermark is None:
            return
        for ring in self.rings:
            groups = ring.version_groups(timestamps, versions, watermark)
            if groups is not None:
                live, group, keys = groups
                counts = counts_by_group(
                    self.model.task, rows.subset(live), group, len(keys), self.values.confusion_size
                )
                for (bucket, version), one in zip(keys, counts, strict=True):
                    bucket.counts(version).add(one)
            if self.monitor is not None:
                # the monitor compares class labels, not our class indices
                labels = self.values.class_labels() if self.values.multiclass else None
                live = ring.live_groups(timestamps, watermark)
                _profile_outcomes(self.monitor, live, rows.actual, labels)

    def _version_indices(self, frame: pd.DataFrame, timestamps: np.ndarray) -> np.ndarray:
        static = self.model.model_version
        name = self.model.columns.model_version
        if static is None and name in frame.columns:
            labels = canonical_labels(frame[name])
        else:
            labels = np.full(len(frame), static or "", dtype=object)
        indices, folded = self.versions.assign(labels, timestamps)
        if folded:
            self._fold_versions(list(folded))
        return indices

    def _fold_versions(self, slots: list[int]) -> None:
        """Move what was counted under these version slots to ``__other__``: the slots
        now belong to newer versions."""
        other = self.versions.limit
        self.totals.fold_versions(slots, other)
        for ring in self.rings:
            for bucket in ring.buckets.values():
                bucket.fold_versions(slots, other)
        self.join.fold_versions(dict.fromkeys(slots, other))

    def _note_outcome_time(self, timestamp: float) -> None:
        if self.last_outcome_timestamp is None or timestamp > self.last_outcome_timestamp:
            self.last_outcome_timestamp = timestamp

    # --- read side -----------------------------------------------------------
    def snapshot(self) -> ModelSnapshot:
        """An immutable copy for the scrape; cheap enough to take under the ingest lock."""
        version_label = self.versions.label
        windows = []
        for ring in self.rings:
            total = ring.total()
            per_version = {version_label(v): c for v, c in total.model_quality.items()}
            windows.append(WindowSnapshot(ring.window, per_version, total.features))
        predictions, outcomes, confusion = self.totals.labelled(
            version_label, self.values.confusion_label
        )
        return ModelSnapshot(
            model=self.model,
            watermark=self.watermark,
            last_outcome_timestamp=self.last_outcome_timestamp,
            predictions_total=predictions,
            outcomes_total=outcomes,
            confusion_total=confusion,
            windows=tuple(windows),
            pending=len(self.join.predictions),
            waiting_outcomes=self.join.waiting_outcomes,
            expired_total=self.join.expired_total,
            unmatched_total=self.join.unmatched_total,
        )

    # --- checkpoint ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "watermark": self.watermark,
            "last_outcome_timestamp": self.last_outcome_timestamp,
            "versions": list(self.versions.values),
            "version_last_seen": list(self.versions.last_seen),
            "classes": list(self.values.classes.values),
            "totals": self.totals.state(),
            "rings": {ring.window.name: ring.state() for ring in self.rings},
            "join": self.join.state(),
            "monitor": self.monitor.state() if self.monitor is not None else None,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.watermark = state["watermark"]
        self.last_outcome_timestamp = state["last_outcome_timestamp"]
        self.versions = RecentLabels(
            self.versions.limit, state["versions"], state["version_last_seen"]
        )
        self.values.classes = LabelCapper(self.values.classes.limit, state["classes"])
        self.totals.restore(state["totals"])
        for ring in self.rings:
            if ring.window.name in state["rings"]:
                ring.restore(state["rings"][ring.window.name])
        self.join.restore(state["join"])
        if self.monitor is not None and state["monitor"] is not None:
            self.monitor.restore(state["monitor"])


def _profile_outcomes(
    monitor: FeatureMonitor,
    live: tuple[np.ndarray | None, np.ndarray, list[Bucket]] | None,
    actual: np.ndarray,
    class_labels: np.ndarray | None,
) -> None:
    """Profile the outcomes in each live bucket (``BucketRing.live_groups``); with
    ``class_labels``, outcomes are class indices and the profile gets their labels."""
    if live is None:
        return
    positions, group, buckets = live
    for bucket, rows in zip(buckets, group_positions(positions, group, len(buckets)), strict=True):
        outcomes = actual[rows]
        if class_labels is not None:
            outcomes = class_labels[outcomes.astype(np.int64)]
        bucket.features.add(monitor.profile_outcomes(outcomes))
