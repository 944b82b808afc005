"""The simulation behind ``ml-model-exporter demo``: both demo models on one clock.

The classifier (:data:`~exporter.demo.config.CLASSIFIER`) scores a row every ``1 / rate``
seconds of clock time and its labels arrive 1-1.5 x ``outcome_delay`` later in their own log;
the regression (:data:`~exporter.demo.config.REGRESSION`) logs at half that rate with the
outcome in the row. After ``drift_after`` seconds two inputs of each model read 1.5 reference
standard deviations higher: the classifier flags many benign cases as malignant and its
accuracy and precision drop under their thresholds; the regression's predictions rise while
its outcomes do not, and its MAE, RMSE and MAPE go over theirs. The other features, the
categoricals and the outcomes keep their distribution.

The trained models and the references are fixed; the traffic is deterministic given ``seed``
and the injected clock: row ``k`` is due at ``t0 + (k + 1) / rate`` (``t0`` = the clock at
construction), however often :meth:`DemoSimulator.step` is called.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from exporter.demo.config import CLASSIFIER, DEFAULT_DRIFT_AFTER, REGRESSION
from exporter.demo.outlook import ClassifierOutlook, RegressionOutlook
from exporter.demo.serving import ModelServer
from exporter.demo.story import tell


class DemoSimulator:
    """The demo's two models writing their logs in ``log_dir`` as the clock advances.

    Files (created or overwritten at construction): each model's reference (pre-drift traffic
    with ``prediction`` and ``actual``, the same for every ``seed``) and prediction log (header
    at construction, rows on :meth:`step`), and the classifier's outcome log.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        rate: float = 5.0,
        drift_after: float = DEFAULT_DRIFT_AFTER,
        outcome_delay: float = 20.0,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if drift_after < 0 or outcome_delay < 0:
            raise ValueError("drift_after and outcome_delay must be >= 0")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self._clock = clock
        self.classifier, self.regression = (
            ModelServer(
                model,
                log_dir,
                seed=seed,
                rate=float(rate) * model.rate_share,
                drift_after=float(drift_after),
                outcome_delay=float(outcome_delay),
            )
            for model in (CLASSIFIER, REGRESSION)
        )
        self.classifier_outlook = ClassifierOutlook(self.classifier)
        self.regression_outlook = RegressionOutlook(self.regression)
        t0 = float(clock())
        self.classifier.start(t0)
        self.regression.start(t0)

    def step(self) -> int:
        """Append the rows due by now and the outcomes arrived by now, for both models;
        returns the number of prediction rows written for the classifier."""
        now = float(self._clock())
        self.regression.step(now)
        return self.classifier.step(now)

    def story(self) -> list[str]:
        """Lines for the terminal: what to open, then a timeline of what will happen when."""
        return tell(self.classifier_outlook, self.regression_outlook)
