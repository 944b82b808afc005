"""Which parsed rows a model counts, and the reason each other row is rejected for:
``timestamp`` (too far in the future), ``late`` (before every window), ``duplicate`` (the
same id at the same time again), ``schema`` (an outcome row without an outcome)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from exporter.state.join import EventTimeJoin


class Verdict:
    """The rows kept so far, and how many were rejected for each reason, in the order
    the rules ran."""

    def __init__(self, keep: np.ndarray) -> None:
        self.keep = keep
        self.rejected: dict[str, int] = {}

    def reject(self, reason: str, rows: np.ndarray) -> None:
        """Reject those of ``rows`` (a mask) still kept, for ``reason``."""
        rows = self.keep & rows
        if rows.any():
            self.rejected[reason] = int(rows.sum())
            self.keep = self.keep & ~rows


def admit_predictions(
    timestamps: np.ndarray,
    ids: np.ndarray | None,
    *,
    horizon: float,
    watermark: float | None,
    lateness: float,
    join: EventTimeJoin,
) -> Verdict:
    """Predictions stamped after ``horizon`` (now + max_future) are rejected; so is one
    ``lateness`` (the longest window) or more behind the newest prediction before it, and
    with ``ids`` one whose id and time came before."""
    verdict = Verdict(np.ones(len(timestamps), dtype=bool))
    verdict.reject("timestamp", ~(timestamps <= horizon))
    newest_before = np.maximum.accumulate(
        np.concatenate(
            (
                [watermark if watermark is not None else -np.inf],
                np.where(verdict.keep, timestamps, -np.inf),
            )
        )
    )[:-1]
    verdict.reject("late", timestamps <= newest_before - lateness)
    if ids is not None:
        # the same id at the same time again is the same line written twice; an id used
        # again later (a daily request id) is a new prediction
        verdict.reject(
            "duplicate", _repeated(ids, timestamps) | join.waiting_prediction_rows(ids, timestamps)
        )
    return verdict


def admit_outcomes(
    ids: np.ndarray,
    actual: np.ndarray,
    timestamps: np.ndarray,
    *,
    horizon: float,
    join: EventTimeJoin,
) -> Verdict:
    """Outcome rows need an outcome and no timestamp after ``horizon``; a timed one whose
    id and time came before is a duplicate (NaN timestamps: rows without a time)."""
    verdict = Verdict(np.ones(len(actual), dtype=bool))
    verdict.reject("schema", ~np.isfinite(actual))
    verdict.reject("timestamp", timestamps > horizon)
    timed = np.isfinite(timestamps)
    verdict.reject(
        "duplicate",
        timed & (_repeated(ids, timestamps) | join.waiting_outcome_rows(ids, timestamps)),
    )
    return verdict


def _repeated(ids: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Rows whose (id, time) pair came earlier in the same chunk."""
    return pd.DataFrame({"id": ids, "time": timestamps}).duplicated().to_numpy()
