"""Everything the exporter knows about one model: counters, window buckets, pending joins.

Rows arrive already parsed (``exporter.ingest.parse``); this module turns them into additive
aggregates. It does no I/O and reads no clock of its own: the caller passes ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from exporter.stats import quality
from exporter.config import DEFAULT_MAX_FUTURE, ModelConfig, Window
from exporter.state.join import EventTimeJoin, Matches
from exporter.state.labels import OTHER, LabelCapper, RecentLabels, canonical_labels
from exporter.ingest.parse import ParsedRows
from exporter.state.windows import (
    Aggregate,
    BucketRing,
    add_into,
    copy_aggregate,
    dense_groups,
    group_positions,
)


class FeatureMonitor(Protocol):
    """Data quality and drift for one model (``exporter.monitor.monitor``): turns rows into additive
    profiles that live in the same time buckets as the quality aggregates."""

    def observe(self, frame: pd.DataFrame) -> None:
        """Sees every accepted prediction chunk, in log order, before it is bucketed (a
        ``from_stream`` reference is fitted from the first rows)."""

    def profile_groups(
        self, positions: np.ndarray | None, group: np.ndarray, groups: int
    ) -> list[Aggregate]:
        """Profiles of the features and the prediction of each group of rows at once: the
        rows at ``positions`` (ascending; None: all) of the chunk last given to ``observe``,
        row ``positions[i]`` in group ``group[i]``: each time bucket's share, in bucket
        order."""

    def profile_outcomes(self, actual: np.ndarray) -> Aggregate:
        """Profile of these outcomes (binary: 1.0 = positive; multiclass: the class label;
        regression: the value), for one time bucket of their predictions."""

    def state(self) -> dict[str, Any]: ...

    def restore(self, state: Mapping[str, Any]) -> None: ...


# How the engine gets each model's feature monitor (None: the model has none).
MonitorFactory = Callable[[ModelConfig], FeatureMonitor | None]


@dataclass(frozen=True)
class WindowSnapshot:
    window: Window
    quality: dict[str, Aggregate]  # model_version label -> summed quality aggregate
    features: Aggregate  # summed feature/prediction/outcome profiles (may be empty)


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
        max_label_values: int = 20,
        window_buckets: int = 60,
        monitor: FeatureMonitor | None = None,
        max_future: float = DEFAULT_MAX_FUTURE,
    ) -> None:
        self.model = model
        self.binary = model.task == "binary"
        self.multiclass = model.task == "multiclass"
        self.max_future = max_future
        self.versions = RecentLabels(max_label_values)
        self.classes = LabelCapper(max_label_values)
        self.rings = [BucketRing(w, window_buckets) for w in model.windows]
        self.monitor = monitor
        self.watermark: float | None = None
        self.last_outcome_timestamp: float | None = None
        self.predictions_total: dict[int, int] = {}
        self.outcomes_total: dict[int, int] = {}
        self.confusion_total: dict[tuple[int, int, int], int] = {}
        outcomes = model.outcomes
        self.join = EventTimeJoin(
            outcomes.max_delay if outcomes else 0.0, outcomes.max_pending if outcomes else 0
        )

    # --- ingest ------------------------------------------------------------
    def add_predictions(self, rows: ParsedRows, now: float) -> dict[str, int]:
        """Count a chunk of prediction rows; return rejections by reason (late, duplicate, ...)."""
        rejected: dict[str, int] = {}
        frame, timestamps = rows.frame, rows.timestamps
        if len(frame) == 0:
            return rejected
        columns = self.model.columns
        values = self._prediction_values(frame[columns.prediction])
        if values is None:
            rejected["schema"] = len(frame)
            return rejected
        keep = timestamps <= now + self.max_future
        if not keep.all():
            rejected["timestamp"] = int((~keep).sum())
        running = np.maximum.accumulate(
            np.concatenate(
                (
                    [self.watermark if self.watermark is not None else -np.inf],
                    np.where(keep, timestamps, -np.inf),
                )
            )
        )[:-1]
        late = keep & (timestamps <= running - self.model.longest_window)
        if late.any():
            rejected["late"] = int(late.sum())
            keep &= ~late
        ids = None
        if self.model.outcomes is not None and columns.id in frame.columns:
            ids = frame[columns.id].astype(str).to_numpy(dtype=object)
            # the same id at the same time again is the same line written twice; an id
            # used again later (a daily request id) is a new prediction
            duplicate = keep & (
                _repeated(ids, timestamps) | self.join.waiting_prediction_rows(ids, timestamps)
            )
            if duplicate.any():
                rejected["duplicate"] = int(duplicate.sum())
                keep &= ~duplicate
        if not keep.any():
            return rejected
        if not keep.all():
            frame = frame.loc[keep].reset_index(drop=True)
            timestamps = timestamps[keep]
            values = values[keep]
            ids = ids[keep] if ids is not None else None

        self.watermark = max(self.watermark or -np.inf, float(timestamps.max()))
        version_index = self._version_indices(frame, timestamps)
        _count_into(self.predictions_total, version_index)
        actual = self._actual_values(frame)
        has_outcome = self._has_outcome(actual)
        if self.monitor is not None:
            self.monitor.observe(frame)

        for ring in self.rings:
            groups = _bucket_version_groups(ring, timestamps, version_index, self.watermark)
            if groups is not None:
                _, group, keys = groups
                counts = np.bincount(group, minlength=len(keys))
                for (bucket, version), count in zip(keys, counts.tolist(), strict=True):
                    quality_agg = bucket.setdefault("q", {}).setdefault(version, {})
                    add_into(quality_agg, {"predictions": np.int64(count)})
            live = None if self.monitor is None else ring.live_groups(timestamps, self.watermark)
            if self.monitor is not None and live is not None:
                positions, group, buckets = live
                profiles = self.monitor.profile_groups(positions, group, len(buckets))
                for bucket, profile in zip(buckets, profiles, strict=True):
                    add_into(bucket.setdefault("f", {}), profile)
            ring.evict(self.watermark)

        if has_outcome.any():
            self._add_outcomes(
                timestamps[has_outcome],
                version_index[has_outcome],
                values[has_outcome],
                actual[has_outcome],
            )
            self._note_outcome_time(float(timestamps[has_outcome].max()))
        if ids is not None:
            waiting = ~has_outcome
            matches = self.join.add_predictions(
                ids[waiting],
                timestamps[waiting],
                version_index[waiting],
                values[waiting],
                self.watermark,
            )
            self._add_matches(matches)
        return rejected

    def add_outcomes(self, rows: ParsedRows, now: float) -> dict[str, int]:
        """Join a chunk of outcome rows to waiting predictions by id (``exporter.state.join``);
        return rejections by reason."""
        frame = rows.frame
        if len(frame) == 0:
            return {}
        rejected: dict[str, int] = {}
        ids = frame[self.model.columns.id].astype(str).to_numpy(dtype=object)
        actual = self._actual_values(frame)
        timestamps = rows.timestamps
        if len(timestamps) != len(frame):
            timestamps = np.full(len(frame), np.nan)
        keep = self._has_outcome(actual)
        if not keep.all():
            rejected["schema"] = int((~keep).sum())
        ahead = keep & (timestamps > now + self.max_future)
        if ahead.any():
            rejected["timestamp"] = int(ahead.sum())
            keep &= ~ahead
        timed = np.isfinite(timestamps)
        duplicate = (
            keep
            & timed
            & (_repeated(ids, timestamps) | self.join.waiting_outcome_rows(ids, timestamps))
        )
        if duplicate.any():
            rejected["duplicate"] = int(duplicate.sum())
            keep &= ~duplicate
        if not keep.any():
            return rejected
        given = timestamps[keep & np.isfinite(timestamps)]
        self._note_outcome_time(float(given.max()) if len(given) else now)
        self._add_matches(self.join.add_outcomes(ids[keep], timestamps[keep], actual[keep]))
        return rejected

    def _add_matches(self, matches: Matches) -> None:
        if len(matches):
            self._add_outcomes(matches.timestamps, matches.versions, matches.values, matches.actual)

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

    def _add_outcomes(
        self, timestamps: np.ndarray, versions: np.ndarray, values: np.ndarray, actual: np.ndarray
    ) -> None:
        predicted_class, actual_class = self._classes(values, actual)
        _count_into(self.outcomes_total, versions)
        if predicted_class is not None:
            size = 2 if self.binary else self.classes.limit + 1
            cells = np.bincount((versions * size + actual_class) * size + predicted_class)
            for cell in np.flatnonzero(cells).tolist():
                key = (cell // (size * size), cell // size % size, cell % size)
                self.confusion_total[key] = self.confusion_total.get(key, 0) + int(cells[cell])
        if self.watermark is None:
            return
        for ring in self.rings:
            groups = _bucket_version_groups(ring, timestamps, versions, self.watermark)
            if groups is not None:
                live, group, keys = groups
                aggregates = self._outcome_aggregates(
                    group,
                    len(keys),
                    values=values[live],
                    actual=actual[live],
                    predicted_class=None if predicted_class is None else predicted_class[live],
                    actual_class=None if actual_class is None else actual_class[live],
                )
                for index, (bucket, version) in enumerate(keys):
                    quality_agg = bucket.setdefault("q", {}).setdefault(version, {})
                    add_into(quality_agg, {k: v[index] for k, v in aggregates.items()})
            live = None if self.monitor is None else ring.live_groups(timestamps, self.watermark)
            if self.monitor is None or live is None:
                continue
            positions, group, buckets = live
            rows = group_positions(positions, group, len(buckets))
            for bucket, mask in zip(buckets, rows, strict=True):
                outcomes = actual[mask]
                if self.multiclass:  # the monitor compares class labels, not our indices
                    outcomes = self._class_labels()[outcomes.astype(np.int64)]
                add_into(bucket.setdefault("f", {}), self.monitor.profile_outcomes(outcomes))

    def _outcome_aggregates(
        self,
        group: np.ndarray,
        groups: int,
        *,
        values: np.ndarray,
        actual: np.ndarray,
        predicted_class: np.ndarray | None,
        actual_class: np.ndarray | None,
    ) -> dict[str, np.ndarray]:
        """The outcome aggregate of every group of rows at once: arrays whose first axis is
        the group (a bucket and model version), each computed with one bincount."""

        def total(weights: np.ndarray | None = None) -> np.ndarray:
            return np.bincount(group, weights=weights, minlength=groups)

        def histogram(cells: np.ndarray, size: int, rows: np.ndarray | None = None) -> np.ndarray:
            keys = group * size + cells if rows is None else (group * size + cells)[rows]
            return np.bincount(keys, minlength=groups * size).reshape(groups, size)

        aggregates: dict[str, np.ndarray] = {"outcomes": total().astype(np.int64)}
        if predicted_class is not None and actual_class is not None:
            size = 2 if self.binary else self.classes.limit + 1
            aggregates["confusion"] = histogram(
                actual_class * size + predicted_class, size * size
            ).reshape(groups, size, size)
        if self.binary:
            positive = actual_class == 1
            bins = quality.score_bins(values)
            aggregates["score_positive"] = histogram(bins, quality.SCORE_BINS, positive)
            aggregates["score_negative"] = histogram(bins, quality.SCORE_BINS, ~positive)
            aggregates["log_loss_sum"] = total(quality.log_loss_terms(values, positive))
        elif not self.multiclass:
            actual_numbers = actual.astype(np.float64)
            error = values - actual_numbers
            aggregates["abs_error_sum"] = total(np.abs(error))
            aggregates["squared_error_sum"] = total(error * error)
            aggregates["abs_percentage_error_sum"] = total(
                quality.absolute_percentage_errors(actual_numbers, values)
            )
            aggregates["actual_sum"] = total(actual_numbers)
            aggregates["actual_squared_sum"] = total(actual_numbers * actual_numbers)
        return aggregates

    # --- values ------------------------------------------------------------
    def _prediction_values(self, column: pd.Series) -> np.ndarray | None:
        """Scores (binary), values (regression) or class indices stored as float (multiclass)."""
        if self.multiclass:
            labels = canonical_labels(column)
            return self.classes.indices(labels).astype(np.float64)
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    def _actual_values(self, frame: pd.DataFrame) -> np.ndarray:
        name = self.model.columns.actual
        n = len(frame)
        if name not in frame.columns:
            return np.full(n, np.nan)
        column = frame[name]
        if self.binary:
            positive_number = _as_number(self.model.positive_class)
            if is_numeric_dtype(column) and positive_number is not None:  # fast path: 0/1 columns
                numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
                return np.where(np.isnan(numbers), np.nan, (numbers == positive_number) * 1.0)
            labels = canonical_labels(column)
            return np.where(
                labels == "", np.nan, (labels == self.model.positive_class).astype(np.float64)
            )
        if self.multiclass:
            labels = canonical_labels(column)
            classes = self.classes.indices(labels).astype(np.float64)
            return np.where(labels == "", np.nan, classes)
        return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)

    @staticmethod
    def _has_outcome(actual: np.ndarray) -> np.ndarray:
        return np.isfinite(actual)

    def _classes(
        self, values: np.ndarray, actual: np.ndarray
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        if self.binary:
            return (values >= self.model.threshold).astype(np.int64), actual.astype(np.int64)
        if self.multiclass:
            return values.astype(np.int64), actual.astype(np.int64)
        return None, None

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
        moved = dict.fromkeys(slots, other)
        for counter in (self.predictions_total, self.outcomes_total):
            for slot in slots:
                if slot in counter:
                    counter[other] = counter.get(other, 0) + counter.pop(slot)
        for key in [k for k in self.confusion_total if k[0] in moved]:
            target = (other, key[1], key[2])
            self.confusion_total[target] = self.confusion_total.get(
                target, 0
            ) + self.confusion_total.pop(key)
        for ring in self.rings:
            for bucket in ring.buckets.values():
                per_version = bucket.get("q")
                if not per_version:
                    continue
                for slot in slots:
                    aggregate = per_version.pop(str(slot), None)
                    if aggregate is not None:
                        add_into(per_version.setdefault(str(other), {}), aggregate)
        self.join.fold_versions(moved)

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
            per_version = {version_label(int(v)): agg for v, agg in total.get("q", {}).items()}
            windows.append(WindowSnapshot(ring.window, per_version, total.get("f", {})))
        class_label = self._confusion_label
        return ModelSnapshot(
            model=self.model,
            watermark=self.watermark,
            last_outcome_timestamp=self.last_outcome_timestamp,
            predictions_total=_by_label(self.predictions_total, version_label),
            outcomes_total=_by_label(self.outcomes_total, version_label),
            confusion_total={
                (version_label(v), class_label(a), class_label(p)): c
                for (v, a, p), c in self.confusion_total.items()
            },
            windows=tuple(windows),
            pending=len(self.join.predictions),
            waiting_outcomes=self.join.waiting_outcomes,
            expired_total=self.join.expired_total,
            unmatched_total=self.join.unmatched_total,
        )

    def _class_labels(self) -> np.ndarray:
        """The label of every class index (``limit``: ``__other__``)."""
        labels = [self.classes.label(i) for i in range(self.classes.limit + 1)]
        return np.array(labels, dtype=object)

    def _confusion_label(self, index: int) -> str:
        if self.binary:
            return str(index)
        return self.classes.label(index)

    # --- checkpoint ------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "watermark": self.watermark,
            "last_outcome_timestamp": self.last_outcome_timestamp,
            "versions": list(self.versions.values),
            "version_last_seen": list(self.versions.last_seen),
            "classes": list(self.classes.values),
            "predictions_total": dict(self.predictions_total),
            "outcomes_total": dict(self.outcomes_total),
            "confusion_total": dict(self.confusion_total),
            "rings": {ring.window.name: copy_aggregate(ring.state()) for ring in self.rings},
            "join": self.join.state(),
            "monitor": self.monitor.state() if self.monitor is not None else None,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.watermark = state["watermark"]
        self.last_outcome_timestamp = state["last_outcome_timestamp"]
        self.versions = RecentLabels(
            self.versions.limit, state["versions"], state.get("version_last_seen")
        )
        self.classes = LabelCapper(self.classes.limit, state["classes"])
        self.predictions_total = dict(state["predictions_total"])
        self.outcomes_total = dict(state["outcomes_total"])
        self.confusion_total = dict(state["confusion_total"])
        for ring in self.rings:
            if ring.window.name in state["rings"]:
                ring.restore(state["rings"][ring.window.name])
        self.join.restore(state["join"])
        if self.monitor is not None and state.get("monitor") is not None:
            self.monitor.restore(state["monitor"])


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _repeated(ids: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Rows whose (id, time) pair came earlier in the same chunk."""
    return pd.DataFrame({"id": ids, "time": timestamps}).duplicated().to_numpy()


def _count_into(counter: dict[int, int], indices: np.ndarray) -> None:
    counts = np.bincount(indices)
    for key in np.flatnonzero(counts).tolist():
        counter[key] = counter.get(key, 0) + int(counts[key])


def _bucket_version_groups(
    ring: BucketRing, timestamps: np.ndarray, versions: np.ndarray, watermark: float
) -> tuple[np.ndarray, np.ndarray, list[tuple[Aggregate, str]]] | None:
    """Rows in the ring's live buckets, grouped by (bucket, model version): the live-row
    mask, each live row's group number, and each group's bucket and version label key."""
    if len(timestamps) == 0:
        return None
    indices = ring.bucket_of(timestamps)
    oldest = ring.oldest_live_bucket(watermark)
    live = indices >= oldest
    if not live.any():
        return None
    width = int(versions.max()) + 1
    combined = (indices[live] - oldest) * width + versions[live]
    uniques, group = dense_groups(combined, 4 * ring.n_buckets * width)
    keys = [(ring.bucket(oldest + u // width), str(u % width)) for u in uniques.tolist()]
    return live, group, keys


def _by_label(counter: Mapping[int, int], label: Callable[[int], str]) -> dict[str, int]:
    result: dict[str, int] = {}
    for index, count in counter.items():
        name = label(index)
        result[name] = result.get(name, 0) + count
    return result


__all__ = ["OTHER", "ModelSnapshot", "ModelState", "WindowSnapshot"]
