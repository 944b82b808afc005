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
from collections.abc import Callable, Mapping
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


class _Waiting:
    """Rows waiting for their partner: id -> its rows (an id may be reused, e.g. a daily
    request id), each a tuple whose first field is its time. Ids are kept in arrival order
    of their oldest row, which follows event time closely in a log."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple]] = {}
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def __contains__(self, key: str) -> bool:
        return key in self.rows

    def add(self, key: str, row: tuple) -> None:
        self.rows.setdefault(key, []).append(row)
        self.count += 1

    def holding(self, ids: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Which of these rows already wait, same id and this very time (a line twice)."""
        rows = self.rows
        return np.fromiter(
            (
                any(row[0] == time for row in rows.get(key, ()))
                for key, time in zip(ids, times.tolist(), strict=True)
            ),
            dtype=bool,
            count=len(ids),
        )

    def take(self, key: str, fits: Callable[[tuple], bool]) -> tuple | None:
        """The first waiting row of this id that ``fits``, removed; None if none does."""
        found = self.rows.get(key)
        if not found:
            return None
        for position, row in enumerate(found):
            if fits(row):
                del found[position]
                if not found:
                    del self.rows[key]
                self.count -= 1
                return row
        return None

    def drop_oldest(self, older_than: float = math.inf) -> bool:
        """Remove the oldest id's first row if its time is before ``older_than``."""
        if not self.rows:
            return False
        key = next(iter(self.rows))
        found = self.rows[key]
        if not found[0][0] < older_than:
            return False
        del found[0]
        del self.rows[key]  # what is left of it goes behind: its next row is newer
        if found:
            self.rows[key] = found
        self.count -= 1
        return True

    def replace(self, change: Callable[[tuple], tuple]) -> None:
        for found in self.rows.values():
            found[:] = [change(row) for row in found]

    @classmethod
    def restored(
        cls, ids: list[str], rows: Any, width: int, row: Callable[[list], tuple] = tuple
    ) -> _Waiting:
        """The table whose `flat` gave ``ids`` and ``rows`` (an array of ``width`` columns);
        ``row`` makes a row's tuple from its fields."""
        table = cls()
        for key, fields in zip(
            ids, np.asarray(rows, dtype=np.float64).reshape(-1, width).tolist(), strict=True
        ):
            table.add(key, row(fields))
        return table

    def flat(self) -> tuple[list[str], list[tuple]]:
        keys, rows = [], []
        for key, found in self.rows.items():
            keys.extend([key] * len(found))
            rows.extend(found)
        return keys, rows


def _within(delay: float, outcome_time: float, prediction_time: float) -> bool:
    """Whether an outcome can answer a prediction: stamped no more than max_delay after it
    (nor before it); an outcome without a time (NaN) can answer any."""
    return not abs(outcome_time - prediction_time) > delay


class EventTimeJoin:
    def __init__(self, max_delay: float, max_pending: int) -> None:
        self.max_delay = max_delay
        self.max_pending = max_pending
        # id -> [(prediction time, version index, prediction value), ...]
        self.predictions = _Waiting()
        # id -> [(outcome time, actual value), ...]
        self.outcomes = _Waiting()
        # id -> [(arrival on the prediction watermark, actual), ...]: rows without a time
        self.untimed_outcomes = _Waiting()
        self.untimed_seen = False  # the outcome log has rows without a timestamp
        self.prediction_time = -math.inf  # the prediction watermark
        self.outcome_time = -math.inf  # the outcome stream's event time
        self.expired_total = 0
        self.unmatched_total = 0

    @property
    def waiting_outcomes(self) -> int:
        return len(self.outcomes) + len(self.untimed_outcomes)

    # --- the two streams -----------------------------------------------------------
    def waiting_prediction_rows(self, ids: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
        """Which of these predictions already wait, same id and same time (a duplicate)."""
        return self.predictions.holding(ids, timestamps)

    def waiting_outcome_rows(self, ids: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
        """Which of these timed outcomes already wait, same id and same time."""
        return self.outcomes.holding(ids, timestamps)

    def add_predictions(
        self,
        ids: np.ndarray,
        timestamps: np.ndarray,
        versions: np.ndarray,
        values: np.ndarray,
        watermark: float,
    ) -> Matches:
        """Predictions without an outcome in their row: those whose outcome is waiting are
        joined and returned; the rest wait."""
        rows: list[tuple[float, int, float]] = []
        actual: list[float] = []
        timed, untimed = self.outcomes, self.untimed_outcomes
        delay = self.max_delay
        for key, ts, version, value in zip(
            ids.tolist(), timestamps.tolist(), versions.tolist(), values.tolist(), strict=True
        ):
            found = None
            if key in timed:
                found = timed.take(key, lambda row, ts=ts: _within(delay, row[0], ts))
            if found is None and key in untimed:
                found = untimed.take(key, lambda row: True)
            if found is None:
                self.predictions.add(key, (ts, version, value))
                continue
            rows.append((ts, version, value))
            actual.append(found[1])
        if self.prediction_time == -math.inf and len(untimed):
            # outcomes read before any prediction: they arrived, as far as we can tell, now
            untimed.replace(lambda row: (watermark, row[1]))
        self.prediction_time = max(self.prediction_time, watermark)
        self._expire()
        return _matches(rows, actual)

    def add_outcomes(self, ids: np.ndarray, timestamps: np.ndarray, actual: np.ndarray) -> Matches:
        """Outcomes (timestamps NaN where the row has none): those whose prediction is
        waiting are joined and returned; the rest wait."""
        rows: list[tuple[float, int, float]] = []
        joined: list[float] = []
        predictions = self.predictions
        delay = self.max_delay
        for key, ts, value in zip(ids.tolist(), timestamps.tolist(), actual.tolist(), strict=True):
            found = None
            if key in predictions:
                found = predictions.take(key, lambda row, ts=ts: _within(delay, ts, row[0]))
            if found is None:
                if math.isfinite(ts):
                    self.outcomes.add(key, (ts, value))
                else:
                    self.untimed_outcomes.add(key, (self.prediction_time, value))
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
        The scan stops at the first row still in time (arrival order ~ event time)."""
        while self.predictions.drop_oldest(self.outcome_time - self.max_delay):
            self.expired_total += 1
        while self.outcomes.drop_oldest(self.prediction_time - self.max_delay):
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
        if not predictions_behind:
            horizon = self.prediction_time - self.max_delay
            while self.untimed_outcomes.drop_oldest(horizon):
                self.unmatched_total += 1
        while len(self.predictions) > self.max_pending and not outcomes_behind:
            self.predictions.drop_oldest()
            self.expired_total += 1
        for table in (self.outcomes, self.untimed_outcomes):
            while len(table) > self.max_pending and not predictions_behind:
                table.drop_oldest()
                self.unmatched_total += 1

    # --- versions ------------------------------------------------------------------
    def fold_versions(self, folded: Mapping[int, int]) -> None:
        """Waiting predictions of a version whose label slot was given up move to ``folded[v]``."""
        self.predictions.replace(lambda row: (row[0], folded.get(row[1], row[1]), row[2]))

    # --- checkpoint ------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        prediction_ids, predictions = self.predictions.flat()
        outcome_ids, outcomes = self.outcomes.flat()
        untimed_ids, untimed = self.untimed_outcomes.flat()
        return {
            "prediction_ids": prediction_ids,
            "predictions": np.array(predictions, dtype=np.float64).reshape(-1, 3),
            "outcome_ids": outcome_ids,
            "outcomes": np.array(outcomes, dtype=np.float64).reshape(-1, 2),
            "untimed_outcome_ids": untimed_ids,
            "untimed_outcomes": np.array(untimed, dtype=np.float64).reshape(-1, 2),
            "untimed_seen": self.untimed_seen,
            "prediction_time": self.prediction_time,
            "outcome_time": self.outcome_time,
            "expired_total": self.expired_total,
            "unmatched_total": self.unmatched_total,
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.predictions = _Waiting.restored(
            state["prediction_ids"],
            state["predictions"],
            3,
            lambda fields: (fields[0], int(fields[1]), fields[2]),  # time, version, value
        )
        self.outcomes = _Waiting.restored(state["outcome_ids"], state["outcomes"], 2)
        self.untimed_outcomes = _Waiting.restored(
            state["untimed_outcome_ids"], state["untimed_outcomes"], 2
        )
        self.untimed_seen = bool(state["untimed_seen"])
        self.prediction_time = float(state["prediction_time"])
        self.outcome_time = float(state["outcome_time"])
        self.expired_total = int(state["expired_total"])
        self.unmatched_total = int(state["unmatched_total"])
