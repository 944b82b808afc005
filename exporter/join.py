"""The event-time join of predictions with outcomes that arrive in another log.

Either side may be read first: a prediction waits for its outcome and an outcome waits
for its prediction, each in an id-keyed table. What ends a wait is event time, never
how far one file happens to have been read:

- A match needs both rows and ``outcome time - prediction time <= max_delay``. An
  outcome later than that is too late: its prediction counts as expired and the outcome
  as unmatched, whichever of the two was read first.
- A waiting prediction expires once the outcome stream's event time (the newest outcome
  timestamp read; for a log without timestamps, the prediction watermark each time that
  log has been read to its end) is more than ``max_delay`` past it.
- A waiting outcome is unmatched once the prediction watermark is more than
  ``max_delay`` past it.
- Each table holds at most ``max_pending`` rows, oldest (first read) evicted first and
  counted, but only while the other stream has no unread data: a row's partner may be
  in that data (``enforce_bounds``). The engine reads the lagging stream first, so a
  table outgrows its bound by at most one chunk of the leading stream.
- An outcome row without a timestamp is judged by arrival: it is placed at the
  prediction watermark when it is read, waits without the ``max_delay`` check, and is
  unmatched once the prediction log, read to its end, is ``max_delay`` past it.

With each stream in time order (or out of order by less than ``max_delay``) and fewer
than ``max_pending`` rows in flight at any event time, every pair is therefore joined
the same way however the two files are cut into chunks and interleaved: live, replayed
from scratch, or resumed from a checkpoint.

Pure data and numpy: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Matches:
    """Joined pairs: the prediction's time, version index and value, and the outcome."""

    timestamps: np.ndarray
    versions: np.ndarray
    values: np.ndarray
    actual: np.ndarray

    def __len__(self) -> int:
        return len(self.timestamps)


def _matches(rows: list[tuple[float, int, float]], actual: list[float]) -> Matches:
    if not rows:
        empty = np.zeros(0)
        return Matches(empty, np.zeros(0, dtype=np.int64), empty, empty)
    table = np.array(rows, dtype=np.float64)
    return Matches(
        table[:, 0], table[:, 1].astype(np.int64), table[:, 2], np.array(actual, dtype=np.float64)
    )


class EventTimeJoin:
    def __init__(self, max_delay: float, max_pending: int) -> None:
        self.max_delay = max_delay
        self.max_pending = max_pending
        # id -> (prediction time, version index, prediction value), in arrival order
        self.predictions: dict[str, tuple[float, int, float]] = {}
        # id -> (outcome time, actual value), in arrival order
        self.outcomes: dict[str, tuple[float, float]] = {}
        # id -> (arrival on the prediction watermark, actual): rows without a timestamp
        self.untimed_outcomes: dict[str, tuple[float, float]] = {}
        self.untimed_seen = False  # the outcome log has rows without a timestamp
        self.prediction_time = -math.inf  # the prediction watermark
        self.outcome_time = -math.inf  # the outcome stream's event time
        self.expired_total = 0
        self.unmatched_total = 0

    @property
    def waiting_outcomes(self) -> int:
        return len(self.outcomes) + len(self.untimed_outcomes)

    # --- the two streams -----------------------------------------------------------
    def waiting_prediction_ids(self, ids: np.ndarray) -> np.ndarray:
        """Which of these ids already have a prediction waiting (a duplicate)."""
        return np.fromiter((i in self.predictions for i in ids), dtype=bool, count=len(ids))

    def waiting_outcome_ids(self, ids: np.ndarray) -> np.ndarray:
        timed, untimed = self.outcomes, self.untimed_outcomes
        return np.fromiter((i in timed or i in untimed for i in ids), dtype=bool, count=len(ids))

    def add_predictions(
        self,
        ids: np.ndarray,
        timestamps: np.ndarray,
        versions: np.ndarray,
        values: np.ndarray,
        watermark: float,
    ) -> Matches:
        """Predictions without an outcome in their row (ids unique, none waiting): those
        whose outcome is waiting are joined and returned; the rest wait."""
        rows: list[tuple[float, int, float]] = []
        actual: list[float] = []
        timed, untimed = self.outcomes, self.untimed_outcomes
        for key, ts, version, value in zip(
            ids.tolist(), timestamps.tolist(), versions.tolist(), values.tolist(), strict=True
        ):
            found = timed.pop(key, None) if timed else None
            if found is not None:
                if found[0] - ts > self.max_delay:  # the outcome came too late for it
                    self.expired_total += 1
                    self.unmatched_total += 1
                    continue
                outcome = found[1]
            elif untimed and key in untimed:
                outcome = untimed.pop(key)[1]
            else:
                self.predictions[key] = (ts, version, value)
                continue
            rows.append((ts, version, value))
            actual.append(outcome)
        if self.prediction_time == -math.inf and untimed:
            # outcomes read before any prediction: they arrived, as far as we can tell, now
            self.untimed_outcomes = {k: (watermark, v) for k, (_, v) in untimed.items()}
        self.prediction_time = max(self.prediction_time, watermark)
        self._expire()
        return _matches(rows, actual)

    def add_outcomes(self, ids: np.ndarray, timestamps: np.ndarray, actual: np.ndarray) -> Matches:
        """Outcomes (ids unique, none waiting; timestamps NaN where the row has none):
        those whose prediction is waiting are joined and returned; the rest wait."""
        rows: list[tuple[float, int, float]] = []
        joined: list[float] = []
        predictions = self.predictions
        for key, ts, value in zip(ids.tolist(), timestamps.tolist(), actual.tolist(), strict=True):
            found = predictions.pop(key, None) if predictions else None
            if found is None:
                if math.isfinite(ts):
                    self.outcomes[key] = (ts, value)
                else:
                    self.untimed_outcomes[key] = (self.prediction_time, value)
                continue
            if ts - found[0] > self.max_delay:  # NaN (no timestamp) compares False
                self.expired_total += 1
                self.unmatched_total += 1
                continue
            rows.append(found)
            joined.append(value)
        finite = np.isfinite(timestamps)
        self.untimed_seen = self.untimed_seen or not finite.all()
        timed = timestamps[finite]
        if len(timed):
            self.outcome_time = max(self.outcome_time, float(timed.max()))
        self._expire()
        return _matches(rows, joined)

    def _expire(self) -> None:
        """Drop what the other stream's event time has passed by more than max_delay.
        Tables are in arrival order, which follows event time closely in a log: the scan
        stops at the first row still in time."""
        horizon = self.outcome_time - self.max_delay
        predictions = self.predictions
        while predictions:
            key = next(iter(predictions))
            if not predictions[key][0] < horizon:
                break
            del predictions[key]
            self.expired_total += 1
        horizon = self.prediction_time - self.max_delay
        outcomes = self.outcomes
        while outcomes:
            key = next(iter(outcomes))
            if not outcomes[key][0] < horizon:
                break
            del outcomes[key]
            self.unmatched_total += 1

    def enforce_bounds(self, *, predictions_behind: bool, outcomes_behind: bool) -> None:
        """Keep each table within max_pending, oldest first, counting what is dropped;
        while the other stream still has unread data its rows stay: their partner may be
        in that data (the engine reads that stream next, so this is one chunk at most).

        Rows without a timestamp are judged by arrival: the outcome log, read to its end,
        is as far as the prediction stream; an untimed outcome is unmatched once the
        prediction log, read to its end, is max_delay past the outcome's arrival."""
        if not outcomes_behind and self.untimed_seen:
            self.outcome_time = max(self.outcome_time, self.prediction_time)
            self._expire()
        if not predictions_behind and self.untimed_outcomes:
            horizon = self.prediction_time - self.max_delay
            untimed = self.untimed_outcomes
            while untimed:
                key = next(iter(untimed))
                if not untimed[key][0] < horizon:
                    break
                del untimed[key]
                self.unmatched_total += 1
        predictions = self.predictions
        while len(predictions) > self.max_pending and not outcomes_behind:
            del predictions[next(iter(predictions))]
            self.expired_total += 1
        for table in (self.outcomes, self.untimed_outcomes):
            while len(table) > self.max_pending and not predictions_behind:
                del table[next(iter(table))]
                self.unmatched_total += 1

    # --- versions ------------------------------------------------------------------
    def fold_versions(self, folded: Mapping[int, int]) -> None:
        """Waiting predictions of a version whose label slot was given up move to ``folded[v]``."""
        for key, (ts, version, value) in list(self.predictions.items()):
            if version in folded:
                self.predictions[key] = (ts, folded[version], value)

    # --- checkpoint ------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "prediction_ids": list(self.predictions),
            "predictions": np.array(list(self.predictions.values()), dtype=np.float64).reshape(
                -1, 3
            ),
            "outcome_ids": list(self.outcomes),
            "outcomes": np.array(list(self.outcomes.values()), dtype=np.float64).reshape(-1, 2),
            "untimed_outcome_ids": list(self.untimed_outcomes),
            "untimed_outcomes": np.array(
                list(self.untimed_outcomes.values()), dtype=np.float64
            ).reshape(-1, 2),
            "untimed_seen": self.untimed_seen,
            "prediction_time": self.prediction_time,
            "outcome_time": self.outcome_time,
            "expired_total": self.expired_total,
            "unmatched_total": self.unmatched_total,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.predictions = {
            key: (float(ts), int(version), float(value))
            for key, (ts, version, value) in zip(
                state["prediction_ids"], np.asarray(state["predictions"]).tolist(), strict=True
            )
        }
        self.outcomes = {
            key: (float(ts), float(value))
            for key, (ts, value) in zip(
                state["outcome_ids"], np.asarray(state["outcomes"]).tolist(), strict=True
            )
        }
        self.untimed_outcomes = {
            key: (float(ts), float(value))
            for key, (ts, value) in zip(
                state["untimed_outcome_ids"],
                np.asarray(state["untimed_outcomes"], dtype=np.float64).reshape(-1, 2).tolist(),
                strict=True,
            )
        }
        self.untimed_seen = bool(state["untimed_seen"])
        self.prediction_time = float(state["prediction_time"])
        self.outcome_time = float(state["outcome_time"])
        self.expired_total = int(state["expired_total"])
        self.unmatched_total = int(state["unmatched_total"])
