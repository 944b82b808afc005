"""The demo's two models as the exporter sees them, and the config that points at their logs.

A binary classifier, :data:`CLASSIFIER`, whose outcomes arrive late in a log of their own,
and a regression, :data:`REGRESSION`, with the outcome (``actual``) in the prediction row, so
the demo shows both ways of joining outcomes. The config is what a user would write in YAML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

MODEL_VERSION = "1"
ID_COLUMN = "request_id"
WINDOWS: tuple[str, ...] = ("5m", "1h")
DEFAULT_DRIFT_AFTER = 120.0  # seconds of traffic before the inputs drift (``--drift-after``)
REFERENCE_ROWS = 5000
"""Rows in each model's reference, drawn as the pre-drift traffic is. More than
``exporter.stats.drift.AUTO_REFERENCE_ROWS`` (1000), so ``drift.method: auto`` decides by normed
Wasserstein >= 0.1 (numeric) and Jensen-Shannon >= 0.1 (categorical), as Evidently does, not
by p-values, which flag a feature that does not drift in about one window in twenty."""


@dataclass(frozen=True)
class Streams:
    """Keys of the random streams one model draws from, each part of the demo from its own, so
    that the story's estimates never change what the logs hold. Each pair is (the rows' noise,
    the order they take the pool rows in). ``pool`` and ``reference`` are keyed with the split
    seed (the same for every ``seed``), the others with ``seed``."""

    pool: int
    reference: tuple[int, int]
    traffic: tuple[int, int]
    expected: tuple[int, int]


@dataclass(frozen=True)
class DemoModel:
    """One simulated model: what it logs, where, and the thresholds it is judged by."""

    name: str
    """The ``model`` label of every metric."""
    task: str
    features: tuple[str, ...]
    """The numeric inputs, in log column order."""
    categorical: str
    """A categorical input the model ignores; its values keep their shares throughout."""
    categories: Mapping[str, float]
    """The categorical's values and their shares."""
    drift_shift: Mapping[str, float]
    """Drifting features and their shift after ``drift_after``, in reference standard deviations."""
    drift_min_rows: int
    """``drift.min_rows``: no drift figure for a window of fewer rows (see the instances)."""
    thresholds: Mapping[str, Any]
    files: str
    """The prefix of the model's file names."""
    delayed_outcomes: bool
    """Outcomes go to a log of their own, late; otherwise ``actual`` is in the prediction row."""
    id_prefix: str
    prediction_decimals: int
    streams: Streams
    rate_share: float = 1.0
    """The model logs at this share of the demo's ``rate``."""
    threshold: float | None = None
    """The decision threshold of a binary classifier."""

    @property
    def predictions_file(self) -> str:
        return f"{self.files}predictions.csv"

    @property
    def reference_file(self) -> str:
        return f"{self.files}reference.csv"

    @property
    def outcomes_file(self) -> str | None:
        return f"{self.files}outcomes.jsonl" if self.delayed_outcomes else None

    @property
    def log_columns(self) -> tuple[str, ...]:
        actual = () if self.delayed_outcomes else ("actual",)
        head = ("timestamp", ID_COLUMN, "model_version", *self.features, self.categorical)
        return (*head, "prediction", *actual)

    @property
    def reference_columns(self) -> tuple[str, ...]:
        return (*self.features, self.categorical, "prediction", "actual")

    @property
    def drifting_features(self) -> tuple[str, ...]:
        return tuple(name for name in self.features if name in self.drift_shift)

    def request_id(self, k: int) -> str:
        return f"{self.id_prefix}-{k:08d}"

    def config(self, log_dir: Path) -> dict[str, Any]:
        """This model's entry in the demo config, its files in ``log_dir``."""
        entry: dict[str, Any] = {"name": self.name, "task": self.task}
        if self.threshold is not None:
            entry |= {"threshold": self.threshold, "positive_class": 1}
        entry["predictions"] = {"path": str(log_dir / self.predictions_file), "format": "csv"}
        if self.outcomes_file:
            entry["outcomes"] = {
                "path": str(log_dir / self.outcomes_file),
                "format": "jsonl",
                "max_delay": "1h",
            }
        features: dict[str, str] = dict.fromkeys(self.features, "numeric")
        features[self.categorical] = "categorical"
        return entry | {
            "columns": {"id": ID_COLUMN},
            "features": features,
            "reference": {"path": str(log_dir / self.reference_file)},
            "windows": list(WINDOWS),
            "drift": {"method": "auto", "min_rows": self.drift_min_rows},
            "thresholds": dict(self.thresholds),
        }


_SHARED_THRESHOLDS: dict[str, Any] = {
    "min_outcomes": 50,
    "stale_after": "5m",
    "drifted_features_ratio": 0.3,
    "missing_ratio": 0.05,
}

CLASSIFIER = DemoModel(
    name="breast-cancer",
    task="binary",
    threshold=0.5,
    features=(
        "mean_radius",
        "mean_texture",
        "mean_concave_points",
        "worst_area",
        "worst_smoothness",
    ),
    categorical="channel",
    categories=MappingProxyType({"web": 0.55, "app": 0.35, "branch": 0.10}),
    drift_shift=MappingProxyType({"mean_texture": 1.5, "mean_concave_points": 1.5}),
    # Windows of 100-200 undrifted rows reach a normed Wasserstein distance of 0.1-0.2 by chance
    # alone; from 250 rows (most of one pass over the 285 held-out rows) they stay under 0.075
    # (measured over 30 seeds). At the default rate the 5m window has 250 rows after 50 s.
    drift_min_rows=250,
    thresholds=MappingProxyType(
        {"accuracy": 0.9, "precision": 0.85, "recall": 0.85, **_SHARED_THRESHOLDS}
    ),
    files="",
    delayed_outcomes=True,
    id_prefix="req",
    prediction_decimals=6,
    streams=Streams(pool=1, reference=(7, 11), traffic=(2, 9), expected=(3, 13)),
)
"""The binary classifier (1 = malignant); the demo config lists it first."""

REGRESSION = DemoModel(
    name="diabetes-progression",
    task="regression",
    features=("age", "bmi", "blood_pressure", "hdl", "ltg"),
    categorical="clinic",
    categories=MappingProxyType({"north": 0.5, "south": 0.3, "east": 0.2}),
    drift_shift=MappingProxyType({"bmi": 1.5, "ltg": 1.5}),
    # 221 held-out rows; chance distances stay under 0.075 from 200 rows, 80 s after the start
    # at this model's rate.
    drift_min_rows=200,
    # Expected before the drift: MAE ~46, RMSE ~56, MAPE ~0.40; after it ~88, ~102, ~0.91.
    thresholds=MappingProxyType({"mae": 60.0, "rmse": 75.0, "mape": 0.65, **_SHARED_THRESHOLDS}),
    files="regression_",
    delayed_outcomes=False,
    id_prefix="dia",
    prediction_decimals=2,
    rate_share=0.5,
    streams=Streams(pool=4, reference=(8, 12), traffic=(5, 10), expected=(6, 14)),
)
"""The regression (disease progression a year ahead), listed after :data:`CLASSIFIER`."""

MODELS: tuple[DemoModel, ...] = (CLASSIFIER, REGRESSION)


def demo_config(log_dir: Path) -> dict[str, Any]:
    """The config a user would write in YAML, pointing at the demo's files in ``log_dir``."""
    log_dir = Path(log_dir)
    return {
        "state_dir": str(log_dir / "state"),
        "models": [model.config(log_dir) for model in MODELS],
    }
