"""What a demo model's metrics are expected to show, and when, for the story the terminal tells.

The figures come from rows simulated as the traffic is, before and after the drift, on random
streams of their own (so the logs are not affected); a window holding a share ``s`` of drifted
rows is taken to show the mix ``(1 - s) * before + s * after``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property

import numpy as np
import pandas as pd

from exporter.config import DEFAULT_DRIFT_THRESHOLDS
from exporter.demo.serving import ModelServer
from exporter.demo.traffic import OUTCOME_JITTER
from exporter.stats.model_quality import (
    absolute_percentage_errors,
    binary_metrics,
    regression_metrics,
)
from exporter.stats.multivariate import fit_multivariate, reconstruction_errors

_RECONSTRUCTION_STREAMS = (15, 16)


def first_time(start: float, stop: float, test: Callable[[float], bool]) -> float | None:
    """The first whole second from ``max(start, 1)`` to ``stop`` at which ``test`` holds."""
    t = max(start, 1.0)
    while t <= stop:
        if test(t):
            return t
        t += 1.0
    return None


class Outlook:
    """The expected figures of one served model."""

    def __init__(self, server: ModelServer) -> None:
        self.server = server
        self.model = server.model
        self.rate = server.rate
        self.drift_after = server.drift_after

    def drifted_share(self, t: float, window: float) -> tuple[float, float]:
        """(rows, share of them drifted) of a ``window`` window at story time ``t``."""
        lo = max(0.0, t - window)
        rows = self.rate * (t - lo)
        if rows <= 0:
            return 0.0, 0.0
        return rows, self.rate * max(0.0, t - max(lo, self.drift_after)) / rows

    @cached_property
    def reconstruction(self) -> dict[str, float]:
        """The multivariate threshold the exporter fits on the reference, and the mean
        reconstruction error before and after the drift."""
        columns = list(self.model.features)
        fitted = fit_multivariate(pd.DataFrame(self.server.reference_x, columns=columns))
        expected = {"threshold": fitted.threshold}
        for regime, rows in self.server.traffic.regimes(_RECONSTRUCTION_STREAMS).items():
            expected[regime] = float(reconstruction_errors(fitted, rows.x).mean())
        return expected

    def multivariate_crossing(self, window: float) -> float | None:
        """When a ``window`` window's mean reconstruction error passes the threshold, if it
        does within a window's time of the drift."""
        before, after = self.reconstruction["before"], self.reconstruction["after"]
        limit = self.reconstruction["threshold"]

        def drifted(t: float) -> bool:
            rows, share = self.drifted_share(t, window)
            return (
                rows >= self.model.drift_min_rows and (1 - share) * before + share * after > limit
            )

        return first_time(self.drift_after, self.drift_after + window, drifted)

    def drift_detection_time(self, window: float) -> float | None:
        """Rough first time ``drift.method: auto`` flags the drifting features in a ``window``
        window: with a reference larger than ``AUTO_REFERENCE_ROWS`` that is normed
        Wasserstein >= its threshold. A share ``s`` of rows shifted by ``d`` reference std
        puts the window's normed Wasserstein distance at ``s * d``; the window also needs
        ``drift.min_rows`` rows."""
        reference_std = np.nanstd(self.server.reference_x, axis=0, ddof=1)
        pool_std = self.server.traffic.trained.std
        distance = min(
            shift * pool / ref
            for shift, pool, ref in zip(
                self.server.traffic.shift, pool_std, reference_std, strict=True
            )
            if shift
        )

        def flags(t: float) -> bool:
            rows, share = self.drifted_share(t, window)
            return (
                rows >= self.model.drift_min_rows
                and share * distance >= DEFAULT_DRIFT_THRESHOLDS["wasserstein"]
            )

        return first_time(self.drift_after, self.drift_after + window, flags)


class ClassifierOutlook(Outlook):
    """Accuracy, precision and recall of a classifier whose outcomes arrive late."""

    @cached_property
    def model_quality(self) -> dict[str, dict[str, float]]:
        """Per regime, the per-row confusion rates and the figures they make."""
        threshold = self.model.threshold
        result: dict[str, dict[str, float]] = {}
        for regime, rows in self.server.traffic.regimes(self.model.streams.expected).items():
            predicted = rows.prediction >= threshold
            actual = rows.actual == 1
            tp = float(np.mean(predicted & actual))
            fp = float(np.mean(predicted & ~actual))
            fn = float(np.mean(~predicted & actual))
            tn = float(np.mean(~predicted & ~actual))
            metrics = binary_metrics(np.array([[tn, fp], [fn, tp]]))
            result[regime] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, **metrics}
        return result

    def _known(self, age: np.ndarray) -> np.ndarray:
        """Probability that a prediction ``age`` seconds old has its outcome logged."""
        d = self.server.outcome_delay
        if d == 0:
            return (age >= 0).astype(float)
        return np.clip((age - d) / (OUTCOME_JITTER * d), 0.0, 1.0)

    def window(self, t: float, window: float) -> tuple[float, dict[str, float]]:
        """Expected (outcomes, figures) of a ``window`` window at story time ``t``; a figure
        is absent while undefined (no outcome yet, no predicted positive)."""
        lo = max(0.0, t - window)
        n = 2000
        edges = np.linspace(lo, t, n + 1)
        mid = (edges[:-1] + edges[1:]) / 2
        weight = self._known(t - mid) * self.rate * (t - lo) / n
        drifted = mid >= self.drift_after
        before, after = self.model_quality["before"], self.model_quality["after"]
        counts = {
            key: float(np.sum(weight * np.where(drifted, after[key], before[key])))
            for key in ("tp", "fp", "fn", "tn")
        }
        confusion = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]])
        return float(weight.sum()), binary_metrics(confusion)


class RegressionOutlook(Outlook):
    """MAE, RMSE and MAPE of a regression with the outcome in the row."""

    @cached_property
    def model_quality(self) -> dict[str, dict[str, float]]:
        """Per regime, MAE, RMSE and MAPE."""
        result: dict[str, dict[str, float]] = {}
        for regime, rows in self.server.traffic.regimes(self.model.streams.expected).items():
            actual = rows.actual.astype(float)
            error = rows.prediction - actual
            result[regime] = regression_metrics(
                count=len(error),
                abs_error_sum=float(np.sum(np.abs(error))),
                squared_error_sum=float(np.sum(error * error)),
                abs_percentage_error_sum=float(
                    np.sum(absolute_percentage_errors(actual, rows.prediction))
                ),
                actual_sum=float(np.sum(actual)),
                actual_squared_sum=float(np.sum(actual * actual)),
            )
        return result

    def window(self, t: float, window: float) -> tuple[float, dict[str, float]]:
        """Expected (outcomes, MAE/RMSE/MAPE) of a ``window`` window at story time ``t``."""
        rows, share = self.drifted_share(t, window)
        if rows <= 0:
            return 0.0, {}
        before, after = self.model_quality["before"], self.model_quality["after"]
        mixed = {key: (1 - share) * before[key] + share * after[key] for key in ("mae", "mape")}
        mixed["rmse"] = math.sqrt((1 - share) * before["rmse"] ** 2 + share * after["rmse"] ** 2)
        return rows, mixed
