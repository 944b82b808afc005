"""The simulated model behind ``ml-model-exporter demo``.

A scikit-learn classifier (StandardScaler + LogisticRegression) is trained on the breast
cancer data that scikit-learn ships, and then "serves" traffic: every ``1 / rate`` seconds of
clock time it scores a row drawn from its held-out validation set (with a little noise; see
:func:`_pool_order`) and appends it to ``predictions.csv``; the true label of each row
arrives 1-1.5 x ``outcome_delay`` later in ``outcomes.jsonl``. After ``drift_after`` seconds
two inputs drift (as if the imaging device had been recalibrated: ``mean_texture`` and
``mean_concave_points`` read 1.5 reference standard deviations higher), the model flags many
benign cases as malignant and its accuracy and precision drop well under the configured
thresholds, while the other features, the ``channel`` categorical and the labels keep their
distribution.

Each model's reference is :data:`REFERENCE_ROWS` rows drawn exactly as the pre-drift traffic
is (same pool, noise, categorical shares and missing values, with the prediction and the
actual), so that ``drift.method: auto`` uses normed Wasserstein and Jensen-Shannon (the
reference has more than 1000 rows) and flags the drifting features and only those. The
classifier's shift also lifts its multivariate reconstruction error over the threshold once
most of the short window has drifted; the regression's stays under it (the story says both).

The trained model and the reference are fixed; the traffic is deterministic given ``seed``
and the injected clock: row ``k`` is due at
``t0 + (k + 1) / rate`` (``t0`` = the clock at construction) and its content depends only on
``seed`` and ``k``, however often :meth:`DemoSimulator.step` is called.

A second, smaller model exercises the regression side (``MLModelRegressionErrorHigh`` and the
dashboard's regression panel): :class:`RegressionSimulator`, a Ridge regression on five inputs
of scikit-learn's diabetes data predicting disease progression a year ahead. It writes
``regression_predictions.csv`` at half the rate, with the outcome (``actual``) in the same row,
so the demo shows both ways of joining outcomes. At the same ``drift_after`` the lab changes
two measurements (``bmi`` and ``ltg`` read 1.5 reference standard deviations higher): the
predictions rise while the outcomes do not, and MAE, RMSE and MAPE go well above their
thresholds.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import math
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from exporter.stats.drift import DEFAULT_THRESHOLDS as DRIFT_THRESHOLDS
from exporter.stats.reference import fit_multivariate, reconstruction_errors

DEMO_MODEL = "breast-cancer"
"""The model name in the demo config (the ``model`` label of every metric)."""

MODEL_VERSION = "1"
ID_COLUMN = "request_id"
PREDICTIONS_FILE = "predictions.csv"
OUTCOMES_FILE = "outcomes.jsonl"
REFERENCE_FILE = "reference.csv"

# scikit-learn's column name -> the column name in the logs
_SOURCE_FEATURES = {
    "mean radius": "mean_radius",
    "mean texture": "mean_texture",
    "mean concave points": "mean_concave_points",
    "worst area": "worst_area",
    "worst smoothness": "worst_smoothness",
}
NUMERIC_FEATURES: tuple[str, ...] = tuple(_SOURCE_FEATURES.values())
CATEGORICAL_FEATURE = "channel"
CHANNELS: tuple[str, ...] = ("web", "app", "branch")
CHANNEL_PROBABILITIES: tuple[float, ...] = (0.55, 0.35, 0.10)

DRIFT_SHIFT: dict[str, float] = {"mean_texture": 1.5, "mean_concave_points": 1.5}
"""Drifting features and their shift after ``drift_after``, in reference standard deviations."""

LOG_COLUMNS: tuple[str, ...] = (
    "timestamp",
    ID_COLUMN,
    "model_version",
    *NUMERIC_FEATURES,
    CATEGORICAL_FEATURE,
    "prediction",
)
REFERENCE_COLUMNS: tuple[str, ...] = (
    *NUMERIC_FEATURES,
    CATEGORICAL_FEATURE,
    "prediction",
    "actual",
)

WINDOWS: tuple[str, ...] = ("5m", "1h")
_WINDOW_SECONDS = {"5m": 300.0, "1h": 3600.0}
THRESHOLD = 0.5
THRESHOLDS: dict[str, Any] = {
    "accuracy": 0.9,
    "precision": 0.85,
    "recall": 0.85,
    "min_outcomes": 50,
    "stale_after": "5m",
    "drifted_features_ratio": 0.3,
    "missing_ratio": 0.05,
}

DEMO_REGRESSION_MODEL = "diabetes-progression"
"""The demo's second model: a regression (``task: regression``), listed after :data:`DEMO_MODEL`."""
REGRESSION_PREDICTIONS_FILE = "regression_predictions.csv"
REGRESSION_REFERENCE_FILE = "regression_reference.csv"
REGRESSION_ID_PREFIX = "dia"
# scikit-learn's column name (load_diabetes(scaled=False)) -> the column name in the log
_REGRESSION_SOURCE_FEATURES = {
    "age": "age",
    "bmi": "bmi",
    "bp": "blood_pressure",
    "s3": "hdl",
    "s5": "ltg",
}
REGRESSION_NUMERIC_FEATURES: tuple[str, ...] = tuple(_REGRESSION_SOURCE_FEATURES.values())
REGRESSION_CATEGORICAL_FEATURE = "clinic"
CLINICS: tuple[str, ...] = ("north", "south", "east")
CLINIC_PROBABILITIES: tuple[float, ...] = (0.5, 0.3, 0.2)
REGRESSION_DRIFT_SHIFT: dict[str, float] = {"bmi": 1.5, "ltg": 1.5}
"""The regression model's drifting inputs and their shift, in reference standard deviations."""
REGRESSION_RATE_SHARE = 0.5
"""The regression model logs at this share of the classifier's ``rate``."""
REGRESSION_LOG_COLUMNS: tuple[str, ...] = (
    "timestamp",
    ID_COLUMN,
    "model_version",
    *REGRESSION_NUMERIC_FEATURES,
    REGRESSION_CATEGORICAL_FEATURE,
    "prediction",
    "actual",
)
REGRESSION_REFERENCE_COLUMNS: tuple[str, ...] = (
    *REGRESSION_NUMERIC_FEATURES,
    REGRESSION_CATEGORICAL_FEATURE,
    "prediction",
    "actual",
)
REGRESSION_THRESHOLDS: dict[str, Any] = {
    "mae": 60.0,
    "rmse": 75.0,
    "mape": 0.65,
    "min_outcomes": 50,
    "stale_after": "5m",
    "drifted_features_ratio": 0.3,
    "missing_ratio": 0.05,
}
"""Before the drift MAE ~46, RMSE ~57, MAPE ~0.41; after it ~88, ~102, ~0.9."""

NOISE_STD = 0.05
"""Noise added to each drawn row, in standard deviations of the held-out rows."""
MISSING_RATE = 0.01
"""Share of live rows with one numeric feature left empty."""
OUTCOME_JITTER = 0.5
"""Outcomes arrive ``outcome_delay * (1 + OUTCOME_JITTER * u)`` after the prediction, u ~ U[0,1)."""
REFERENCE_ROWS = 5000
"""Rows in each model's reference, drawn as the pre-drift traffic is. More than
``exporter.stats.drift.AUTO_REFERENCE_ROWS`` (1000), so ``drift.method: auto`` decides by normed
Wasserstein >= 0.1 (numeric) and Jensen-Shannon >= 0.1 (categorical), as Evidently does, not
by p-values, which flag a feature that does not drift in about one window in twenty."""
DRIFT_MIN_ROWS = 250
"""``drift.min_rows`` of the classifier: no drift figure for a window of fewer rows. Windows
of 100-200 undrifted rows reach a normed Wasserstein distance of 0.1-0.2 by chance alone;
from 250 rows (most of one pass over the 285 held-out rows) they stay under 0.075 (measured
over 30 seeds). At the default rate the 5m window has 250 rows 50 s after the start."""
REGRESSION_DRIFT_MIN_ROWS = 200
"""``drift.min_rows`` of the regression model (221 held-out rows; under 0.075 from 200 rows,
80 s after the start at its rate)."""
_BLOCK = 256
_VALIDATION_SHARE = 0.5
_SPLIT_SEED = 0
"""The model and the reference are the same for every ``seed``; ``seed`` drives the traffic."""


def demo_config(log_dir: Path) -> dict[str, Any]:
    """The config a user would write in YAML, pointing at the demo's files in ``log_dir``.

    Two models: the classifier :data:`DEMO_MODEL` first (outcomes in a separate, delayed log),
    then the regression :data:`DEMO_REGRESSION_MODEL` (outcome in the prediction row).
    """
    log_dir = Path(log_dir)
    features: dict[str, str] = dict.fromkeys(NUMERIC_FEATURES, "numeric")
    features[CATEGORICAL_FEATURE] = "categorical"
    regression_features: dict[str, str] = dict.fromkeys(REGRESSION_NUMERIC_FEATURES, "numeric")
    regression_features[REGRESSION_CATEGORICAL_FEATURE] = "categorical"
    return {
        "state_dir": str(log_dir / "state"),
        "models": [
            {
                "name": DEMO_MODEL,
                "task": "binary",
                "threshold": THRESHOLD,
                "positive_class": 1,
                "predictions": {"path": str(log_dir / PREDICTIONS_FILE), "format": "csv"},
                "outcomes": {
                    "path": str(log_dir / OUTCOMES_FILE),
                    "format": "jsonl",
                    "max_delay": "1h",
                },
                "columns": {"id": ID_COLUMN},
                "features": features,
                "reference": {"path": str(log_dir / REFERENCE_FILE)},
                "windows": list(WINDOWS),
                "drift": {"method": "auto", "min_rows": DRIFT_MIN_ROWS},
                "thresholds": dict(THRESHOLDS),
            },
            {
                "name": DEMO_REGRESSION_MODEL,
                "task": "regression",
                "predictions": {
                    "path": str(log_dir / REGRESSION_PREDICTIONS_FILE),
                    "format": "csv",
                },
                "columns": {"id": ID_COLUMN},
                "features": regression_features,
                "reference": {"path": str(log_dir / REGRESSION_REFERENCE_FILE)},
                "windows": list(WINDOWS),
                "drift": {"method": "auto", "min_rows": REGRESSION_DRIFT_MIN_ROWS},
                "thresholds": dict(REGRESSION_THRESHOLDS),
            },
        ],
    }


def _iso(t: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds and ``Z``."""
    stamp = datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _duration(seconds: float) -> str:
    """``135`` -> ``2m15s``; ``120`` -> ``2m``; ``3600`` -> ``1h``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{unit}" for v, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return "".join(parts) or "0s"


def _fmt(value: float) -> str:
    """Four significant digits, like the source data, never in exponent notation."""
    return np.format_float_positional(value, precision=4, unique=False, fractional=False, trim="-")


class DemoSimulator:
    """A scikit-learn model writing a prediction log and a delayed outcome log, with drift.

    Files in ``log_dir`` (created or overwritten at construction): ``reference.csv``
    (:data:`REFERENCE_ROWS` rows of pre-drift traffic with ``prediction`` and ``actual``, the
    same for every ``seed``), ``predictions.csv`` (header at
    construction, rows on :meth:`step`) and ``outcomes.jsonl``; plus the files of
    :attr:`regression`, the second model, which :meth:`step` writes too.
    """

    def __init__(
        self,
        log_dir: Path,
        *,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        rate: float = 5.0,
        drift_after: float = 120.0,
        outcome_delay: float = 20.0,
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        if drift_after < 0 or outcome_delay < 0:
            raise ValueError("drift_after and outcome_delay must be >= 0")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self._clock = clock
        self._seed = seed
        self._rate = float(rate)
        self._drift_after = float(drift_after)
        self._outcome_delay = float(outcome_delay)
        self.log_dir = Path(log_dir)

        data = load_breast_cancer(as_frame=True)
        features = data.frame[list(_SOURCE_FEATURES)].to_numpy(dtype=float)
        malignant = 1 - data.target.to_numpy()  # positive class 1 = malignant
        x_train, x_val, y_train, y_val = train_test_split(
            features,
            malignant,
            test_size=_VALIDATION_SHARE,
            random_state=_SPLIT_SEED,
            stratify=malignant,
        )
        self.model: Pipeline = make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression()
        )
        self.model.fit(x_train, y_train)

        rng = np.random.default_rng([_SPLIT_SEED, 1])
        # the held-out validation rows: the pool that the reference and the traffic draw from
        self._pool_x = x_val
        self._pool_y = y_val.astype(int)
        self._pool_channel = rng.choice(
            np.array(CHANNELS), size=len(x_val), p=CHANNEL_PROBABILITIES
        )
        self._pool_std = x_val.std(axis=0, ddof=1)
        self._pool_min = x_val.min(axis=0)
        self._pool_max = x_val.max(axis=0)
        self._shift = np.array([DRIFT_SHIFT.get(name, 0.0) for name in NUMERIC_FEATURES])

        self._written = 0  # prediction rows written so far
        self._block_index = -1
        self._block: dict[str, np.ndarray] = {}
        self._pending: list[tuple[float, int, int]] = []  # (arrival, k, actual)
        self._expected: dict[str, dict[str, float]] | None = None

        self.log_dir.mkdir(parents=True, exist_ok=True)
        # the reference: pre-drift traffic from its own stream (the same for every seed)
        rows = self._sample(
            np.random.default_rng([_SPLIT_SEED, 7]),
            np.zeros(REFERENCE_ROWS, bool),
            _pool_order([_SPLIT_SEED, 11], np.arange(REFERENCE_ROWS), len(self._pool_y)),
        )
        self._ref_std = np.nanstd(rows["x"], axis=0, ddof=1)
        self._reference_x = rows["x"]
        self._reconstruction: dict[str, float] | None = None
        _write_reference(
            self.reference_path,
            REFERENCE_COLUMNS,
            text=rows["text"],
            category=rows[CATEGORICAL_FEATURE],
            prediction=[f"{p:.6f}" for p in rows["prediction"]],
            actual=rows["actual"],
        )
        with self.predictions_path.open("w", encoding="utf-8", newline="") as f:
            f.write(",".join(LOG_COLUMNS) + "\n")
        self.outcomes_path.write_text("", encoding="utf-8")
        self.regression = RegressionSimulator(
            self.log_dir,
            seed=seed,
            rate=self._rate * REGRESSION_RATE_SHARE,
            drift_after=self._drift_after,
        )
        """The second model (:data:`DEMO_REGRESSION_MODEL`), on the same clock and drift time."""
        self._t0 = float(clock())
        self.regression.start(self._t0)

    # -- paths and facts -------------------------------------------------------------------

    @property
    def predictions_path(self) -> Path:
        return self.log_dir / PREDICTIONS_FILE

    @property
    def outcomes_path(self) -> Path:
        return self.log_dir / OUTCOMES_FILE

    @property
    def reference_path(self) -> Path:
        return self.log_dir / REFERENCE_FILE

    @property
    def start_time(self) -> float:
        """Time 0 of the story (clock seconds)."""
        return self._t0

    @property
    def drift_time(self) -> float:
        """Clock time from which rows drift (``start_time + drift_after``)."""
        return self._t0 + self._drift_after

    @property
    def drifting_features(self) -> tuple[str, ...]:
        return tuple(name for name in NUMERIC_FEATURES if name in DRIFT_SHIFT)

    @property
    def reference_std(self) -> dict[str, float]:
        return dict(zip(NUMERIC_FEATURES, self._pool_std.tolist(), strict=True))

    # -- the simulation --------------------------------------------------------------------

    def _row_time(self, k: int) -> float:
        return self._t0 + (k + 1) / self._rate

    def _sample(
        self, rng: np.random.Generator, drifted: np.ndarray, idx: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Live rows from the pool rows ``idx`` (see :func:`_pool_order`): + noise (+ shift
        where ``drifted``), scored."""
        n = len(drifted)
        width = len(NUMERIC_FEATURES)
        noise = rng.normal(0.0, NOISE_STD, (n, width)) * self._pool_std
        missing = rng.random(n) < MISSING_RATE
        missing_col = rng.integers(0, width, n)
        jitter = rng.random(n)

        x = np.clip(self._pool_x[idx] + noise, self._pool_min, self._pool_max)
        x = x + np.outer(drifted, self._shift * self._pool_std)
        text = np.array([[_fmt(v) for v in row] for row in x], dtype=object)
        x = text.astype(float)  # score exactly what is logged
        rows = np.flatnonzero(missing)
        x[rows, missing_col[rows]] = np.nan
        text[rows, missing_col[rows]] = ""
        return {
            "x": x,
            "text": text,
            CATEGORICAL_FEATURE: self._pool_channel[idx],
            "actual": self._pool_y[idx],
            "prediction": self.model.predict_proba(x)[:, 1],
            "jitter": jitter,
        }

    def _rows(self, b: int) -> dict[str, np.ndarray]:
        if b != self._block_index:
            ks = np.arange(b * _BLOCK, (b + 1) * _BLOCK)
            drifted = (ks + 1) / self._rate >= self._drift_after
            idx = _pool_order([self._seed, 9], ks, len(self._pool_y))
            self._block = self._sample(np.random.default_rng([self._seed, 2, b]), drifted, idx)
            self._block_index = b
        return self._block

    @staticmethod
    def request_id(k: int) -> str:
        return f"req-{k:08d}"

    def step(self) -> int:
        """Append the predictions due by now and the outcomes that have arrived by now, for
        both models.

        Returns the number of prediction rows written for the classifier (:data:`DEMO_MODEL`).
        """
        now = float(self._clock())
        self.regression.step(now)
        due = max(0, math.floor((now - self._t0) * self._rate + 1e-9))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for k in range(self._written, due):
            block = self._rows(k // _BLOCK)
            i = k % _BLOCK
            t = self._row_time(k)
            writer.writerow(
                [
                    _iso(t),
                    self.request_id(k),
                    MODEL_VERSION,
                    *block["text"][i],
                    block[CATEGORICAL_FEATURE][i],
                    f"{block['prediction'][i]:.6f}",
                ]
            )
            delay = self._outcome_delay * (1.0 + OUTCOME_JITTER * float(block["jitter"][i]))
            heapq.heappush(self._pending, (t + delay, k, int(block["actual"][i])))
        written = max(0, due - self._written)
        if written:
            self._append(self.predictions_path, buf.getvalue())
            self._written = due

        lines = []
        while self._pending and self._pending[0][0] <= now:
            arrival, k, actual = heapq.heappop(self._pending)
            record = {ID_COLUMN: self.request_id(k), "actual": actual, "timestamp": _iso(arrival)}
            lines.append(json.dumps(record) + "\n")
        if lines:
            self._append(self.outcomes_path, "".join(lines))
        return written

    @staticmethod
    def _append(path: Path, text: str) -> None:
        """Append complete lines in one write and flush them."""
        with path.open("a", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()

    # -- what the terminal says ------------------------------------------------------------

    @property
    def expected_quality(self) -> dict[str, dict[str, float]]:
        """Accuracy, precision and recall the model is expected to show before and after drift.

        Measured on 4000 simulated rows of each regime (a separate random stream, so the logs
        are not affected); also the per-row confusion rates behind the story's timings.
        """
        if self._expected is None:
            result: dict[str, dict[str, float]] = {}
            rng = np.random.default_rng([self._seed, 3])
            for regime, flag in (("before", False), ("after", True)):
                idx = _pool_order([self._seed, 13], np.arange(4000), len(self._pool_y))
                rows = self._sample(rng, np.full(4000, flag), idx)
                predicted = rows["prediction"] >= THRESHOLD
                actual = rows["actual"] == 1
                tp = float(np.mean(predicted & actual))
                fp = float(np.mean(predicted & ~actual))
                fn = float(np.mean(~predicted & actual))
                tn = float(np.mean(~predicted & ~actual))
                result[regime] = {"tp": tp, "fp": fp, "fn": fn, "tn": tn, **_ratios(tp, fp, fn, tn)}
            self._expected = result
        return self._expected

    @property
    def expected_reconstruction(self) -> dict[str, float]:
        """The multivariate threshold and mean reconstruction error before and after the
        drift (see :func:`_expected_reconstruction`)."""
        if self._reconstruction is None:
            self._reconstruction = _expected_reconstruction(
                self._reference_x, NUMERIC_FEATURES, self._sample, len(self._pool_y), self._seed
            )
        return self._reconstruction

    def _known(self, age: np.ndarray) -> np.ndarray:
        """Probability that a prediction ``age`` seconds old has its outcome logged."""
        d = self._outcome_delay
        if d == 0:
            return (age >= 0).astype(float)
        return np.clip((age - d) / (OUTCOME_JITTER * d), 0.0, 1.0)

    def _window_quality(self, t: float, window: float) -> tuple[float, dict[str, float]]:
        """Expected (outcomes, ratios) of a window at story time ``t``."""
        lo = max(0.0, t - window)
        n = 2000
        edges = np.linspace(lo, t, n + 1)
        mid = (edges[:-1] + edges[1:]) / 2
        weight = self._known(t - mid) * self._rate * (t - lo) / n
        drifted = mid >= self._drift_after
        expected = self.expected_quality
        before, after = expected["before"], expected["after"]
        counts = {
            key: float(np.sum(weight * np.where(drifted, after[key], before[key])))
            for key in ("tp", "fp", "fn", "tn")
        }
        return float(weight.sum()), _ratios(counts["tp"], counts["fp"], counts["fn"], counts["tn"])

    def _first_time(self, start: float, stop: float, test: Callable[[float], bool]) -> float | None:
        t = max(start, 1.0)
        while t <= stop:
            if test(t):
                return t
            t += 1.0
        return None

    def story(self) -> list[str]:
        """Lines for the terminal: what to open, then a timeline of what will happen when.

        The times are estimates from the expected quality before and after the drift and the
        outcome delays (see :attr:`expected_quality`); alerts also wait for their ``for:``.
        """
        before, after = self.expected_quality["before"], self.expected_quality["after"]
        short, long_ = WINDOWS
        delay_hi = self._outcome_delay * (1 + OUTCOME_JITTER)
        drift = self._drift_after

        def crossing(metric: str, window: str) -> float | None:
            seconds, limit = _WINDOW_SECONDS[window], THRESHOLDS[metric]
            return self._first_time(
                drift,
                drift + seconds + delay_hi + 60,
                lambda t: self._window_quality(t, seconds)[1][metric] < limit,
            )

        def settled(metric: str) -> str:
            return f"{metric} ~{after[metric]:.2f}"

        ready = self._first_time(
            0.0,
            drift + _WINDOW_SECONDS[short] + delay_hi,
            lambda t: (
                self._window_quality(t, _WINDOW_SECONDS[short])[0] >= THRESHOLDS["min_outcomes"]
            ),
        )
        accuracy_short, accuracy_long = crossing("accuracy", short), crossing("accuracy", long_)
        also_long = f" (and the {long_} window)" if accuracy_long == accuracy_short else ""
        ratio = len(self.drifting_features) / (len(NUMERIC_FEATURES) + 1)
        shifts = ", ".join(f"{f} +{DRIFT_SHIFT[f]:g}" for f in self.drifting_features)
        events: list[tuple[float | None, str]] = [
            (
                0.0,
                f"predictions start at {self._rate:g}/s; labels follow after "
                f"{_duration(self._outcome_delay)}-{_duration(delay_hi)}",
            ),
            (
                ready,
                f"the {short} window has {THRESHOLDS['min_outcomes']} outcomes: accuracy "
                f"~{before['accuracy']:.2f} (threshold {THRESHOLDS['accuracy']:g}), precision "
                f"~{before['precision']:.2f}, recall ~{before['recall']:.2f}",
            ),
            (
                drift,
                f"the imaging device is recalibrated: {shifts} reference std; the other "
                "features, channel and the labels stay as they were",
            ),
            (
                self._drift_detection_time(_WINDOW_SECONDS[short]),
                f"the drift shows in the {short} window (normed Wasserstein >= "
                f"{DRIFT_THRESHOLDS['wasserstein']:g}); drifted_features_ratio "
                f"{ratio:.2f} > {THRESHOLDS['drifted_features_ratio']:g}: MLModelDataDrift would "
                "fire, and MLModelPredictionDrift as the scores rise",
            ),
            self._multivariate_event("", self.expected_reconstruction, self._rate, DRIFT_MIN_ROWS),
            (
                crossing("precision", short),
                f"the {short} precision falls under {THRESHOLDS['precision']:g} (benign cases "
                "flagged malignant): MLModelPrecisionLow would fire",
            ),
            (
                accuracy_short,
                f"the {short} accuracy{also_long} falls under {THRESHOLDS['accuracy']:g}: "
                "MLModelAccuracyLow would fire",
            ),
            (
                drift + _WINDOW_SECONDS[short] + delay_hi,
                f"the {short} window holds only drifted rows: {settled('accuracy')}, "
                f"{settled('precision')}, {settled('recall')}",
            ),
        ]
        figures = DRIFT_MIN_ROWS / self._rate  # while the window still holds every row
        if figures < min(drift, _WINDOW_SECONDS[short]):
            events.append(
                (
                    figures,
                    f"the {short} window has {DRIFT_MIN_ROWS} rows (drift.min_rows): drift "
                    "figures appear, no feature drifted",
                )
            )
        if not also_long:
            events.append(
                (accuracy_long, f"the {long_} accuracy falls under {THRESHOLDS['accuracy']:g}")
            )
        events += self._regression_events()
        timeline = sorted(
            ((t, text) for t, text in events if t is not None), key=lambda event: event[0]
        )
        width = max(len(_duration(t)) for t, _ in timeline) + 1
        return [
            f"Simulated model {DEMO_MODEL!r}: scikit-learn LogisticRegression on "
            f"{len(NUMERIC_FEATURES)} features of the breast cancer data (1 = malignant), "
            "a 'channel' categorical, model_version 1.",
            f"It writes {self.predictions_path} and {self.outcomes_path}; "
            f"its reference is {self.reference_path} ({REFERENCE_ROWS} rows drawn as the "
            f"pre-drift traffic is, from {len(self._pool_y)} held-out validation rows).",
            "Watch mlmodel_accuracy_ratio, mlmodel_precision_ratio, "
            "mlmodel_feature_drift_score, mlmodel_drifted_features_ratio and "
            "mlmodel_reconstruction_error on /metrics "
            f"(windows {', '.join(WINDOWS)}).",
            f"Second model {DEMO_REGRESSION_MODEL!r}: scikit-learn Ridge regression on "
            f"{len(REGRESSION_NUMERIC_FEATURES)} inputs of the diabetes data (disease progression "
            f"a year later), a 'clinic' categorical; it writes {self.regression.predictions_path} "
            f"with the outcome in each row at {self.regression.rate:g}/s. Watch mlmodel_mae, "
            "mlmodel_rmse and mlmodel_mape_ratio.",
            "Timeline:",
            *(f"  {'+' + _duration(t):>{width}}  {text}" for t, text in timeline),
        ]

    def _regression_events(self) -> list[tuple[float | None, str]]:
        """The regression model's moments for :meth:`story`."""
        reg = self.regression
        before, after = reg.expected_error["before"], reg.expected_error["after"]
        seconds = _WINDOW_SECONDS[WINDOWS[0]]
        limits = REGRESSION_THRESHOLDS
        drift = self._drift_after
        ready = self._first_time(
            0.0,
            drift + seconds,
            lambda t: reg.window_error(t, seconds)[0] >= limits["min_outcomes"],
        )
        crossing = self._first_time(
            drift, drift + seconds, lambda t: reg.window_error(t, seconds)[1]["mae"] > limits["mae"]
        )
        shifts = ", ".join(f"{f} +{REGRESSION_DRIFT_SHIFT[f]:g}" for f in reg.drifting_features)
        figures = REGRESSION_DRIFT_MIN_ROWS / reg.rate
        events: list[tuple[float | None, str]] = []
        if figures < min(drift, seconds):
            events.append(
                (
                    figures,
                    f"{DEMO_REGRESSION_MODEL}: the {WINDOWS[0]} window has "
                    f"{REGRESSION_DRIFT_MIN_ROWS} rows: drift figures appear, no input drifted",
                )
            )
        events += [
            (
                ready,
                f"{DEMO_REGRESSION_MODEL}: the {WINDOWS[0]} window has {limits['min_outcomes']} "
                f"outcomes: MAE ~{before['mae']:.0f} (threshold {limits['mae']:g}), RMSE "
                f"~{before['rmse']:.0f} ({limits['rmse']:g}), MAPE ~{before['mape']:.2f} "
                f"({limits['mape']:g})",
            ),
            (
                drift,
                f"{DEMO_REGRESSION_MODEL}: the lab recalibrates {shifts} reference std; the "
                "outcomes stay as they were",
            ),
            (
                crossing,
                f"{DEMO_REGRESSION_MODEL}: the {WINDOWS[0]} MAE rises above {limits['mae']:g} "
                f"(towards ~{after['mae']:.0f}): MLModelRegressionErrorHigh would fire",
            ),
            self._multivariate_event(
                f"{DEMO_REGRESSION_MODEL}: ",
                reg.expected_reconstruction,
                reg.rate,
                REGRESSION_DRIFT_MIN_ROWS,
            ),
        ]
        return events

    def _multivariate_event(
        self, prefix: str, expected: dict[str, float], rate: float, min_rows: int
    ) -> tuple[float, str]:
        """When the short window's mean reconstruction error passes the model's
        multivariate threshold (a share ``s`` of drifted rows puts it at
        ``(1 - s) * before + s * after``), or, if it never does, what it settles at."""
        window = WINDOWS[0]
        seconds, drift = _WINDOW_SECONDS[window], self._drift_after
        before, after, limit = expected["before"], expected["after"], expected["threshold"]

        def drifted(t: float) -> bool:
            lo = max(0.0, t - seconds)
            rows = rate * (t - lo)
            share = rate * max(0.0, t - max(lo, drift)) / rows
            return rows >= min_rows and (1 - share) * before + share * after > limit

        crossing = self._first_time(drift, drift + seconds, drifted)
        if crossing is not None:
            return (
                crossing,
                f"{prefix}the {window} window's mean reconstruction error passes {limit:.2f} "
                f"(the reference's mean + 3 std; ~{before:.2f} before the drift, ~{after:.2f} "
                "after): mlmodel_multivariate_drifted 1, MLModelMultivariateDrift would fire",
            )
        return (
            drift + seconds,
            f"{prefix}the {window} reconstruction error has risen from ~{before:.2f} to "
            f"~{after:.2f}, still under its threshold {limit:.2f} (the reference's mean + 3 "
            "std): mlmodel_multivariate_drifted stays 0; this shift is caught per feature",
        )

    def _drift_detection_time(self, window: float) -> float | None:
        """Rough first time ``drift.method: auto`` flags the drifting features in a ``window``
        window: with :data:`REFERENCE_ROWS` > ``AUTO_REFERENCE_ROWS`` that is normed
        Wasserstein >= its threshold. A share ``s`` of rows shifted by ``d`` reference std
        puts the window's normed Wasserstein distance at ``s * d``; the window also needs
        :data:`DRIFT_MIN_ROWS` rows."""
        distance = min(
            shift * pool / ref
            for shift, pool, ref in zip(self._shift, self._pool_std, self._ref_std, strict=True)
            if shift
        )

        def flags(t: float) -> bool:
            lo = max(0.0, t - window)
            m = self._rate * (t - lo)
            share = self._rate * (t - max(lo, self._drift_after)) / m
            return m >= DRIFT_MIN_ROWS and share * distance >= DRIFT_THRESHOLDS["wasserstein"]

        return self._first_time(self._drift_after, self._drift_after + window, flags)


def _expected_reconstruction(
    reference_x: np.ndarray,
    features: tuple[str, ...],
    sample: Callable[[np.random.Generator, np.ndarray, np.ndarray], dict[str, np.ndarray]],
    pool_size: int,
    seed: int,
) -> dict[str, float]:
    """The multivariate threshold the exporter fits on a model's reference and the mean
    reconstruction error of 4000 simulated rows of each regime (a separate random stream,
    so the logs are not affected)."""
    fitted = fit_multivariate(pd.DataFrame(reference_x, columns=list(features)))
    rng = np.random.default_rng([seed, 15])
    idx = _pool_order([seed, 16], np.arange(4000), pool_size)
    expected = {"threshold": fitted.threshold}
    for regime, flag in (("before", False), ("after", True)):
        rows = sample(rng, np.full(4000, flag), idx)
        expected[regime] = float(reconstruction_errors(fitted, rows["x"]).mean())
    return expected


def _pool_order(key: list[int], positions: np.ndarray, size: int) -> np.ndarray:
    """The pool row at each stream position: the stream goes through the pool in passes,
    every row once per pass, in a new random order each pass (pass ``p``'s order depends
    only on ``key`` and ``p``)."""
    passes = positions // size
    idx = np.empty(len(positions), dtype=np.int64)
    for p in np.unique(passes):
        order = np.random.default_rng([*key, int(p)]).permutation(size)
        here = passes == p
        idx[here] = order[positions[here] % size]
    return idx


def _write_reference(
    path: Path,
    columns: tuple[str, ...],
    *,
    text: np.ndarray,
    category: np.ndarray,
    prediction: list[str],
    actual: np.ndarray,
) -> None:
    """Write a reference CSV whose rows read exactly as the prediction log's would."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for values, cat, pred, act in zip(text, category, prediction, actual, strict=True):
        writer.writerow([*values, cat, pred, int(act)])
    path.write_text(buf.getvalue(), encoding="utf-8")


def _ratios(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    total = tp + fp + fn + tn
    return {
        "accuracy": (tp + tn) / total if total else math.nan,
        "precision": tp / (tp + fp) if tp + fp else math.nan,
        "recall": tp / (tp + fn) if tp + fn else math.nan,
    }


def _errors(prediction: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    error = prediction - actual
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error * error))),
        "mape": float(np.mean(np.abs(error) / np.abs(actual))),
    }


class RegressionSimulator:
    """The demo's regression model: one prediction log with the outcome in each row.

    A Ridge regression (median imputer + scaler) trained on half of scikit-learn's diabetes
    data (``load_diabetes(scaled=False)``: the raw measurements) predicts disease progression
    one year ahead (25-346) from :data:`REGRESSION_NUMERIC_FEATURES`; ``clinic`` is a
    categorical input the model ignores. Row ``j`` is due at ``start_time + (j + 1) / rate``
    and depends only on ``seed`` and ``j``; its outcome is the drawn patient's true
    progression, which the drift does not change.

    Files in ``log_dir`` (created or overwritten at construction):
    ``regression_reference.csv`` (:data:`REFERENCE_ROWS` rows of pre-drift traffic with
    ``prediction`` and ``actual``) and
    ``regression_predictions.csv`` (header at construction, rows on :meth:`step`).
    :class:`DemoSimulator` owns one and steps it; the clock starts with :meth:`start`.
    """

    def __init__(
        self, log_dir: Path, *, seed: int = 0, rate: float = 2.5, drift_after: float = 120.0
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be > 0, got {rate}")
        self.log_dir = Path(log_dir)
        self._seed = seed
        self._rate = float(rate)
        self._drift_after = float(drift_after)

        data = load_diabetes(as_frame=True, scaled=False)
        features = data.frame[list(_REGRESSION_SOURCE_FEATURES)].to_numpy(dtype=float)
        target = data.target.to_numpy(dtype=float)
        x_train, x_val, y_train, y_val = train_test_split(
            features, target, test_size=_VALIDATION_SHARE, random_state=_SPLIT_SEED
        )
        self.model: Pipeline = make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler(), Ridge(alpha=1.0)
        )
        self.model.fit(x_train, y_train)

        rng = np.random.default_rng([_SPLIT_SEED, 4])
        # the held-out validation rows: the pool that the reference and the traffic draw from
        self._pool_x = x_val
        self._pool_y = y_val.round().astype(int)
        self._pool_clinic = rng.choice(np.array(CLINICS), size=len(x_val), p=CLINIC_PROBABILITIES)
        self._pool_std = x_val.std(axis=0, ddof=1)
        self._pool_min = x_val.min(axis=0)
        self._pool_max = x_val.max(axis=0)
        self._shift = np.array(
            [REGRESSION_DRIFT_SHIFT.get(name, 0.0) for name in REGRESSION_NUMERIC_FEATURES]
        )

        self._t0: float | None = None
        self._written = 0
        self._block_index = -1
        self._block: dict[str, np.ndarray] = {}
        self._expected: dict[str, dict[str, float]] | None = None

        self.log_dir.mkdir(parents=True, exist_ok=True)
        # the reference: pre-drift traffic from its own stream (the same for every seed)
        rows = self._sample(
            np.random.default_rng([_SPLIT_SEED, 8]),
            np.zeros(REFERENCE_ROWS, bool),
            _pool_order([_SPLIT_SEED, 12], np.arange(REFERENCE_ROWS), len(self._pool_y)),
        )
        self._reference_x = rows["x"]
        self._reconstruction: dict[str, float] | None = None
        _write_reference(
            self.reference_path,
            REGRESSION_REFERENCE_COLUMNS,
            text=rows["text"],
            category=rows["clinic"],
            prediction=[f"{p:.2f}" for p in rows["prediction"]],
            actual=rows["actual"],
        )
        with self.predictions_path.open("w", encoding="utf-8", newline="") as f:
            f.write(",".join(REGRESSION_LOG_COLUMNS) + "\n")

    # -- paths and facts -------------------------------------------------------------------

    @property
    def predictions_path(self) -> Path:
        return self.log_dir / REGRESSION_PREDICTIONS_FILE

    @property
    def reference_path(self) -> Path:
        return self.log_dir / REGRESSION_REFERENCE_FILE

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def reference_rows(self) -> int:
        return REFERENCE_ROWS

    @property
    def drifting_features(self) -> tuple[str, ...]:
        return tuple(name for name in REGRESSION_NUMERIC_FEATURES if name in REGRESSION_DRIFT_SHIFT)

    @property
    def reference_std(self) -> dict[str, float]:
        return dict(zip(REGRESSION_NUMERIC_FEATURES, self._pool_std.tolist(), strict=True))

    @staticmethod
    def request_id(j: int) -> str:
        return f"{REGRESSION_ID_PREFIX}-{j:08d}"

    # -- the simulation --------------------------------------------------------------------

    def start(self, t0: float) -> None:
        """Set time 0 of the story (clock seconds); rows are due from then on."""
        self._t0 = float(t0)

    def _sample(
        self, rng: np.random.Generator, drifted: np.ndarray, idx: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Live rows from the pool rows ``idx`` (see :func:`_pool_order`): + noise (+ shift
        where ``drifted``), scored."""
        n = len(drifted)
        width = len(REGRESSION_NUMERIC_FEATURES)
        noise = rng.normal(0.0, NOISE_STD, (n, width)) * self._pool_std
        missing = rng.random(n) < MISSING_RATE
        missing_col = rng.integers(0, width, n)

        x = np.clip(self._pool_x[idx] + noise, self._pool_min, self._pool_max)
        x = x + np.outer(drifted, self._shift * self._pool_std)
        text = np.array([[_fmt(v) for v in row] for row in x], dtype=object)
        x = text.astype(float)  # score exactly what is logged
        rows = np.flatnonzero(missing)
        x[rows, missing_col[rows]] = np.nan
        text[rows, missing_col[rows]] = ""
        return {
            "x": x,
            "text": text,
            "clinic": self._pool_clinic[idx],
            "actual": self._pool_y[idx],
            "prediction": self.model.predict(x).round(2),
        }

    def _rows(self, b: int) -> dict[str, np.ndarray]:
        if b != self._block_index:
            js = np.arange(b * _BLOCK, (b + 1) * _BLOCK)
            drifted = (js + 1) / self._rate >= self._drift_after
            idx = _pool_order([self._seed, 10], js, len(self._pool_y))
            self._block = self._sample(np.random.default_rng([self._seed, 5, b]), drifted, idx)
            self._block_index = b
        return self._block

    def step(self, now: float) -> int:
        """Append the rows due by ``now`` (clock seconds); returns how many were written."""
        if self._t0 is None:
            raise RuntimeError("RegressionSimulator.start() was not called")
        due = max(0, math.floor((now - self._t0) * self._rate + 1e-9))
        if due <= self._written:
            return 0
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        for j in range(self._written, due):
            block = self._rows(j // _BLOCK)
            i = j % _BLOCK
            writer.writerow(
                [
                    _iso(self._t0 + (j + 1) / self._rate),
                    self.request_id(j),
                    MODEL_VERSION,
                    *block["text"][i],
                    block["clinic"][i],
                    f"{block['prediction'][i]:.2f}",
                    int(block["actual"][i]),
                ]
            )
        DemoSimulator._append(self.predictions_path, buf.getvalue())
        written, self._written = due - self._written, due
        return written

    # -- what the terminal says ------------------------------------------------------------

    @property
    def expected_error(self) -> dict[str, dict[str, float]]:
        """MAE, RMSE and MAPE expected before and after the drift (4000 simulated rows each,
        from a separate random stream, so the log is not affected)."""
        if self._expected is None:
            rng = np.random.default_rng([self._seed, 6])
            idx = _pool_order([self._seed, 14], np.arange(4000), len(self._pool_y))
            self._expected = {
                regime: _errors(rows["prediction"], rows["actual"].astype(float))
                for regime, flag in (("before", False), ("after", True))
                for rows in (self._sample(rng, np.full(4000, flag), idx),)
            }
        return self._expected

    @property
    def expected_reconstruction(self) -> dict[str, float]:
        """The multivariate threshold and mean reconstruction error before and after the
        drift (see :func:`_expected_reconstruction`)."""
        if self._reconstruction is None:
            self._reconstruction = _expected_reconstruction(
                self._reference_x,
                REGRESSION_NUMERIC_FEATURES,
                self._sample,
                len(self._pool_y),
                self._seed,
            )
        return self._reconstruction

    def window_error(self, t: float, window: float) -> tuple[float, dict[str, float]]:
        """Expected (rows, MAE/RMSE/MAPE) of a window at story time ``t`` (outcomes are in-row)."""
        lo = max(0.0, t - window)
        rows = self._rate * (t - lo)
        if rows <= 0:
            return 0.0, {}
        share = self._rate * max(0.0, t - max(lo, self._drift_after)) / rows
        before, after = self.expected_error["before"], self.expected_error["after"]
        mixed = {key: (1 - share) * before[key] + share * after[key] for key in ("mae", "mape")}
        mixed["rmse"] = math.sqrt((1 - share) * before["rmse"] ** 2 + share * after["rmse"] ** 2)
        return rows, mixed
