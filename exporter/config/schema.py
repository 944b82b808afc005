"""What a user configures: the frozen dataclasses a config becomes, their defaults, and the
names each choice may take. The default of every configuration key lives here, once; the
validator and the stages that take these settings fall back on these, never on a literal
of their own."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

TASKS = ("binary", "multiclass", "regression")
FORMATS = ("csv", "jsonl")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")  # a source without a format; others are csv
FEATURE_TYPES = ("numeric", "categorical")
DRIFT_METHODS = ("auto", "psi", "ks", "wasserstein", "jensenshannon", "chisquare")
COLUMN_KEYS = ("timestamp", "id", "prediction", "actual", "model_version")

DEFAULT_STATE_DIR = "./state"  # relative to the config file's folder
DEFAULT_WINDOWS = ("1h", "1d", "7d")
DEFAULT_DRIFT_BINS = 10
DEFAULT_DRIFT_MIN_ROWS = 100  # no drift figure for a window with fewer rows
DEFAULT_DRIFT_THRESHOLDS = {
    "psi": 0.2,
    "ks": 0.05,  # p-value
    "wasserstein": 0.1,
    "jensenshannon": 0.1,
    "chisquare": 0.05,  # p-value
}
# Lower bounds: an alert fires when the metric falls below. Upper bounds: when it rises above.
LOWER_BOUND_THRESHOLDS = ("accuracy", "precision", "recall", "f1", "roc_auc")
UPPER_BOUND_THRESHOLDS = ("mae", "rmse", "mape")
RATIO_THRESHOLDS = ("drifted_features_ratio", "missing_ratio")
DURATION_THRESHOLDS = ("stale_after", "outcomes_stale_after")
COUNT_THRESHOLDS = ("min_outcomes",)
DEFAULT_THRESHOLDS: dict[str, float] = {
    "drifted_features_ratio": 0.3,
    "missing_ratio": 0.05,
    "stale_after": 3600.0,
    "outcomes_stale_after": 86400.0,
    "min_outcomes": 100.0,
}
# A prediction stamped further ahead of the wall clock than this is a clock or parsing
# error, rejected (``timestamp``) before it can move the watermark and empty the windows.
DEFAULT_MAX_FUTURE = 300.0
DEFAULT_MAX_LINE_BYTES = 1 << 20  # a longer log line is skipped (``too_long``)
DEFAULT_MAX_LABEL_VALUES = 20  # per label: class labels, model versions
DEFAULT_WINDOW_BUCKETS = 60  # time buckets per window


@dataclass(frozen=True)
class Window:
    name: str  # as configured, used as the `window` label
    seconds: float


@dataclass(frozen=True)
class SourceConfig:
    path: str  # absolute path or glob
    format: str
    max_delay: float = 7 * 86400.0  # outcomes only
    max_pending: int = 1_000_000  # outcomes only


@dataclass(frozen=True)
class Columns:
    timestamp: str = "timestamp"
    id: str = "id"
    prediction: str = "prediction"
    actual: str = "actual"
    model_version: str = "model_version"


@dataclass(frozen=True)
class FeatureConfig:
    name: str
    type: str | None  # None: inferred from the reference
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class ReferenceConfig:
    path: Path | None = None
    from_stream: int | None = None


@dataclass(frozen=True)
class DriftConfig:
    method: str = "auto"
    bins: int = DEFAULT_DRIFT_BINS
    min_rows: int = DEFAULT_DRIFT_MIN_ROWS
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_DRIFT_THRESHOLDS))


@dataclass(frozen=True)
class ModelConfig:
    name: str
    task: str
    predictions: SourceConfig
    threshold: float = 0.5
    positive_class: str = "1"
    model_version: str | None = None  # static version; None = from the column, if present
    outcomes: SourceConfig | None = None
    columns: Columns = field(default_factory=Columns)
    features: tuple[FeatureConfig, ...] = ()
    reference: ReferenceConfig | None = None
    windows: tuple[Window, ...] = ()
    drift: DriftConfig = field(default_factory=DriftConfig)
    thresholds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    # CSV cell texts that mean "missing" besides the empty cell (a log writing a sentinel)
    na_values: tuple[str, ...] = ()

    @property
    def longest_window(self) -> float:
        return max(w.seconds for w in self.windows)


@dataclass(frozen=True)
class RetrainConfig:
    listen: str = "127.0.0.1:9748"
    token_file: Path | None = None
    alerts: tuple[str, ...] = ("MLModelAccuracyLow", "MLModelDataDrift")
    cooldown: float = 6 * 3600.0
    command: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    models: tuple[ModelConfig, ...]
    state_dir: Path
    base_dir: Path
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_label_values: int = DEFAULT_MAX_LABEL_VALUES
    checkpoint_interval: float = 5.0
    poll_interval: float = 0.25
    window_buckets: int = DEFAULT_WINDOW_BUCKETS
    max_future: float = DEFAULT_MAX_FUTURE
    retrain: RetrainConfig | None = None
