"""YAML config into frozen, validated dataclasses.

Every problem is collected with its key path (``models[0].features.age: unknown type
"nmeric"``) and reported at once; unknown keys are errors because they are usually typos.
Relative paths resolve against the config file's folder.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.labels import canonical_label

TASKS = ("binary", "multiclass", "regression")
FORMATS = ("csv", "jsonl")
FEATURE_TYPES = ("numeric", "categorical")
DRIFT_METHODS = ("auto", "psi", "ks", "wasserstein", "jensenshannon", "chisquare")
DEFAULT_WINDOWS = ("1h", "1d", "7d")
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
DEFAULT_THRESHOLDS: dict[str, float] = {
    "drifted_features_ratio": 0.3,
    "missing_ratio": 0.05,
    "stale_after": 3600.0,
    "outcomes_stale_after": 86400.0,
    "min_outcomes": 100.0,
}
COLUMN_KEYS = ("timestamp", "id", "prediction", "actual", "model_version")

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION_RE = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")
_DURATION_PART_RE = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


class ConfigError(Exception):
    """Raised with every problem found, each naming its key path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def parse_duration(value: object) -> float:
    """Prometheus-style duration (``90s``, ``1h30m``, ``7d``) or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 1h or 7d, got {value!r}")
    if isinstance(value, int | float):
        if value <= 0 or not math.isfinite(value):
            raise ValueError(f"must be a positive duration, got {value!r}")
        return float(value)
    if not isinstance(value, str) or not _DURATION_RE.match(value.strip()):
        raise ValueError(f"expected a duration like 1h or 7d, got {value!r}")
    seconds = sum(int(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART_RE.findall(value))
    if seconds <= 0:
        raise ValueError(f"must be a positive duration, got {value!r}")
    return float(seconds)


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
    bins: int = 10
    min_rows: int = 100
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
    max_line_bytes: int = 1 << 20
    max_label_values: int = 20
    checkpoint_interval: float = 5.0
    poll_interval: float = 0.25
    window_buckets: int = 60
    # A prediction stamped further ahead of the wall clock than this is a clock or parsing
    # error, rejected (``timestamp``) before it can move the watermark and empty the windows.
    max_future: float = 300.0
    retrain: RetrainConfig | None = None


def load_config(path: Path | str) -> Config:
    """Read and validate a YAML config file; raise ConfigError naming every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([f"{path}: cannot read config file: {err}"]) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: invalid YAML: {err}".replace("\n", " ")]) from None
    return config_from_mapping(raw, base_dir=path.resolve().parent)


def config_from_mapping(raw: object, *, base_dir: Path) -> Config:
    """Validate an already-parsed config mapping (the demo builds one in code)."""
    return _Validator(base_dir).config(raw)


class _Validator:
    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.problems: list[str] = []

    def error(self, key_path: str, message: str) -> None:
        self.problems.append(f"{key_path}: {message}")

    # --- generic helpers -------------------------------------------------
    def mapping(self, value: object, key_path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(key_path, f"expected a mapping, got {_kind(value)}")
            return {}
        for key in value:
            if key not in allowed:
                hint = _closest(str(key), allowed)
                suffix = f' (did you mean "{hint}"?)' if hint else ""
                self.error(_join(key_path, str(key)), f"unknown key{suffix}")
        return {k: v for k, v in value.items() if k in allowed}

    def number(
        self,
        value: object,
        key_path: str,
        *,
        low: float | None = None,
        high: float | None = None,
        integer: bool = False,
    ) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(key_path, f"expected a number, got {_kind(value)}")
            return None
        if integer and not float(value).is_integer():
            self.error(key_path, f"expected a whole number, got {value!r}")
            return None
        if not math.isfinite(value):
            self.error(key_path, f"expected a finite number, got {value!r}")
            return None
        if low is not None and value < low:
            self.error(key_path, f"must be >= {low:g}, got {value!r}")
            return None
        if high is not None and value > high:
            self.error(key_path, f"must be <= {high:g}, got {value!r}")
            return None
        return float(value)

    def duration(self, value: object, key_path: str) -> float | None:
        try:
            return parse_duration(value)
        except ValueError as err:
            self.error(key_path, str(err))
            return None

    def string(self, value: object, key_path: str) -> str | None:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(key_path, f"expected a string, got {_kind(value)}")
            return None
        text = str(value).strip()
        if not text:
            self.error(key_path, "must not be empty")
            return None
        return text

    def path(self, value: object, key_path: str) -> Path | None:
        text = self.string(value, key_path)
        return None if text is None else (self.base_dir / Path(text).expanduser())

    # --- sections --------------------------------------------------------
    def config(self, raw: object) -> Config:
        top = self.mapping(
            raw,
            "",
            (
                "state_dir",
                "models",
                "retrain",
                "max_line_bytes",
                "max_label_values",
                "checkpoint_interval",
                "poll_interval",
                "window_buckets",
                "max_future",
            ),
        )
        if raw is None:
            self.error("models", "required: the config file is empty")
        state_dir = self.path(top.get("state_dir", "./state"), "state_dir") or self.base_dir
        options: dict[str, Any] = {}
        for key, low, is_int in (
            ("max_line_bytes", 64, True),
            ("max_label_values", 1, True),
            ("window_buckets", 1, True),
        ):
            if key in top:
                number = self.number(top[key], key, low=low, integer=is_int)
                if number is not None:
                    options[key] = int(number)
        for key in ("checkpoint_interval", "poll_interval", "max_future"):
            if key in top:
                seconds = self.duration(top[key], key)
                if seconds is not None:
                    options[key] = seconds

        models: list[ModelConfig] = []
        raw_models = top.get("models")
        if raw is not None and raw_models is None:
            self.error("models", "required: a list with at least one model")
        elif raw_models is not None and (not isinstance(raw_models, list) or not raw_models):
            self.error("models", "expected a non-empty list of models")
        else:
            seen: dict[str, int] = {}
            for index, raw_model in enumerate(raw_models or []):
                model = self.model(raw_model, f"models[{index}]")
                if model is None:
                    continue
                if model.name in seen:
                    self.error(
                        f"models[{index}].name",
                        f'duplicate model name "{model.name}" (also models[{seen[model.name]}])',
                    )
                seen[model.name] = index
                models.append(model)
        retrain = self.retrain(top["retrain"]) if "retrain" in top else None
        if self.problems:
            raise ConfigError(self.problems)
        return Config(
            models=tuple(models),
            state_dir=state_dir,
            base_dir=self.base_dir,
            retrain=retrain,
            **options,
        )

    def model(self, raw: object, at: str) -> ModelConfig | None:
        before = len(self.problems)
        m = self.mapping(
            raw,
            at,
            (
                "name",
                "task",
                "threshold",
                "positive_class",
                "model_version",
                "predictions",
                "outcomes",
                "columns",
                "features",
                "reference",
                "windows",
                "drift",
                "thresholds",
                "na_values",
            ),
        )
        if not isinstance(raw, dict):
            return None
        name = self.string(m.get("name"), f"{at}.name") if "name" in m else None
        if "name" not in m:
            self.error(f"{at}.name", "required")
        task = m.get("task")
        if task is None:
            self.error(f"{at}.task", f"required: one of {', '.join(TASKS)}")
        elif task not in TASKS:
            self.error(f"{at}.task", f'unknown task "{task}" (expected one of {", ".join(TASKS)})')
        threshold = 0.5
        if "threshold" in m:
            threshold = self.number(m["threshold"], f"{at}.threshold") or 0.0
            if task != "binary":
                self.error(f"{at}.threshold", "only applies to task: binary")
        positive_class = "1"
        if "positive_class" in m:
            positive_class = self.string(m["positive_class"], f"{at}.positive_class") or "1"
            positive_class = canonical_label(positive_class)
            if task != "binary":
                self.error(f"{at}.positive_class", "only applies to task: binary")
        version = (
            self.string(m["model_version"], f"{at}.model_version") if "model_version" in m else None
        )
        if "predictions" not in m:
            self.error(f"{at}.predictions", "required: {path: ..., format: csv|jsonl}")
            predictions = None
        else:
            predictions = self.source(m["predictions"], f"{at}.predictions", outcomes=False)
        outcomes = (
            self.source(m["outcomes"], f"{at}.outcomes", outcomes=True) if "outcomes" in m else None
        )
        columns = self.columns(m.get("columns"), f"{at}.columns")
        features = self.features(m.get("features"), f"{at}.features")
        reference = self.reference(m["reference"], f"{at}.reference") if "reference" in m else None
        windows = self.windows(m.get("windows", list(DEFAULT_WINDOWS)), f"{at}.windows")
        drift = self.drift(m.get("drift"), f"{at}.drift")
        thresholds = self.thresholds(m.get("thresholds"), f"{at}.thresholds", task)
        na_values = self.na_values(m.get("na_values"), f"{at}.na_values")
        if len(self.problems) > before or predictions is None or name is None:
            return None
        return ModelConfig(
            name=name,
            task=str(task),
            predictions=predictions,
            threshold=threshold,
            positive_class=positive_class,
            model_version=version,
            outcomes=outcomes,
            columns=columns,
            features=features,
            reference=reference,
            windows=windows,
            drift=drift,
            thresholds=thresholds,
            na_values=na_values,
        )

    def na_values(self, raw: object, at: str) -> tuple[str, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list):
            self.error(at, 'expected a list of strings, e.g. [NA, "-"]')
            return ()
        values = []
        for index, value in enumerate(raw):
            text = self.string(value, f"{at}[{index}]")
            if text is None:
                continue
            if text == "":
                self.error(f"{at}[{index}]", "the empty cell is always missing; list other texts")
                continue
            values.append(text)
        return tuple(values)

    def source(self, raw: object, at: str, *, outcomes: bool) -> SourceConfig | None:
        allowed = ("path", "format", "max_delay", "max_pending") if outcomes else ("path", "format")
        if isinstance(raw, str):
            raw = {"path": raw}
        s = self.mapping(raw, at, allowed)
        if not isinstance(raw, dict):
            return None
        if "path" not in s:
            self.error(f"{at}.path", "required: a file path or glob")
            return None
        path = self.path(s["path"], f"{at}.path")
        fmt = s.get("format")
        if fmt is None and path is not None:
            fmt = "jsonl" if path.name.endswith((".jsonl", ".ndjson", ".json")) else "csv"
        if fmt not in FORMATS:
            self.error(f"{at}.format", f'unknown format "{fmt}" (expected csv or jsonl)')
            return None
        max_delay = 7 * 86400.0
        if "max_delay" in s:
            max_delay = self.duration(s["max_delay"], f"{at}.max_delay") or max_delay
        max_pending = 1_000_000
        if "max_pending" in s:
            number = self.number(s["max_pending"], f"{at}.max_pending", low=1, integer=True)
            max_pending = int(number) if number is not None else max_pending
        if path is None:
            return None
        return SourceConfig(str(path), str(fmt), max_delay, max_pending)

    def columns(self, raw: object, at: str) -> Columns:
        c = self.mapping(raw, at, COLUMN_KEYS)
        names = {}
        for key, value in c.items():
            text = self.string(value, f"{at}.{key}")
            if text is not None:
                names[key] = text
        return Columns(**names)

    def features(self, raw: object, at: str) -> tuple[FeatureConfig, ...]:
        if raw is None:
            return ()
        if isinstance(raw, list):  # a bare list of names: types inferred from the reference
            raw = {name: None for name in raw if isinstance(name, str)}
        if not isinstance(raw, dict):
            self.error(at, f"expected a mapping of feature name to type, got {_kind(raw)}")
            return ()
        result = []
        for name, spec in raw.items():
            key_path = f"{at}.{name}"
            given = {"type": spec} if isinstance(spec, str) or spec is None else spec
            f = self.mapping(given, key_path, ("type", "min", "max"))
            kind = f.get("type")
            if kind is not None and kind not in FEATURE_TYPES:
                hint = _closest(str(kind), FEATURE_TYPES)
                suffix = f' (did you mean "{hint}"?)' if hint else ""
                self.error(key_path, f'unknown type "{kind}"{suffix}')
                continue
            low = self.number(f["min"], f"{key_path}.min") if "min" in f else None
            high = self.number(f["max"], f"{key_path}.max") if "max" in f else None
            if (low is not None or high is not None) and kind == "categorical":
                self.error(key_path, "min/max only apply to numeric features")
            if low is not None and high is not None and low > high:
                self.error(f"{key_path}.min", f"must be <= max ({high:g})")
            result.append(FeatureConfig(str(name), kind, low, high))
        return tuple(result)

    def reference(self, raw: object, at: str) -> ReferenceConfig | None:
        r = self.mapping(raw, at, ("path", "from_stream"))
        if not isinstance(raw, dict):
            return None
        if ("path" in r) == ("from_stream" in r):
            self.error(at, "give exactly one of path or from_stream")
            return None
        if "path" in r:
            return ReferenceConfig(path=self.path(r["path"], f"{at}.path"))
        number = self.number(r["from_stream"], f"{at}.from_stream", low=10, integer=True)
        return ReferenceConfig(from_stream=int(number) if number is not None else None)

    def windows(self, raw: object, at: str) -> tuple[Window, ...]:
        if not isinstance(raw, list) or not raw:
            self.error(at, "expected a non-empty list of durations like [1h, 1d, 7d]")
            return ()
        windows = []
        for index, value in enumerate(raw):
            seconds = self.duration(value, f"{at}[{index}]")
            if seconds is not None:
                windows.append(Window(str(value), seconds))
        names = [w.name for w in windows]
        if len(set(names)) != len(names):
            self.error(at, "windows must be distinct")
        return tuple(windows)

    def drift(self, raw: object, at: str) -> DriftConfig:
        d = self.mapping(raw, at, ("method", "bins", "min_rows", "thresholds"))
        method = d.get("method", "auto")
        if method not in DRIFT_METHODS:
            self.error(
                f"{at}.method",
                f'unknown method "{method}" (expected one of {", ".join(DRIFT_METHODS)})',
            )
            method = "auto"
        bins = self.number(d.get("bins", 10), f"{at}.bins", low=2, high=100, integer=True)
        min_rows = self.number(d.get("min_rows", 100), f"{at}.min_rows", low=1, integer=True)
        thresholds = dict(DEFAULT_DRIFT_THRESHOLDS)
        raw_thresholds = self.mapping(
            d.get("thresholds"), f"{at}.thresholds", tuple(DEFAULT_DRIFT_THRESHOLDS)
        )
        for key, value in raw_thresholds.items():
            number = self.number(value, f"{at}.thresholds.{key}", low=0)
            if number is not None:
                thresholds[key] = number
        return DriftConfig(str(method), int(bins or 10), int(min_rows or 100), thresholds)

    def thresholds(self, raw: object, at: str, task: object) -> dict[str, float]:
        allowed = (
            *LOWER_BOUND_THRESHOLDS,
            *UPPER_BOUND_THRESHOLDS,
            *RATIO_THRESHOLDS,
            *DURATION_THRESHOLDS,
            "min_outcomes",
        )
        t = self.mapping(raw, at, allowed)
        result = dict(DEFAULT_THRESHOLDS)
        checks: dict[str, Callable[[object, str], float | None]] = {}
        for key in (*LOWER_BOUND_THRESHOLDS, *RATIO_THRESHOLDS):
            checks[key] = lambda v, p: self.number(v, p, low=0, high=1)
        for key in UPPER_BOUND_THRESHOLDS:
            checks[key] = lambda v, p: self.number(v, p, low=0)
        for key in DURATION_THRESHOLDS:
            checks[key] = self.duration
        checks["min_outcomes"] = lambda v, p: self.number(v, p, low=0, integer=True)
        for key, value in t.items():
            number = checks[key](value, f"{at}.{key}")
            if number is None:
                continue
            if task == "regression" and key in (*LOWER_BOUND_THRESHOLDS,):
                self.error(f"{at}.{key}", f"{key} applies to classification, not regression")
            elif task in ("binary", "multiclass") and key in UPPER_BOUND_THRESHOLDS:
                self.error(f"{at}.{key}", f"{key} applies to regression, not {task}")
            result[key] = number
        return result

    def retrain(self, raw: object) -> RetrainConfig | None:
        at = "retrain"
        r = self.mapping(raw, at, ("listen", "token_file", "alerts", "cooldown", "command"))
        if not isinstance(raw, dict):
            return None
        listen = self.string(r.get("listen", "127.0.0.1:9748"), f"{at}.listen") or ""
        token_file = self.path(r["token_file"], f"{at}.token_file") if "token_file" in r else None
        if token_file is None and "token_file" not in r:
            self.error(f"{at}.token_file", "required: the hook never runs without a token")
        alerts = r.get("alerts", list(RetrainConfig.alerts))
        if not isinstance(alerts, list) or not all(isinstance(a, str) for a in alerts):
            self.error(f"{at}.alerts", "expected a list of alert names")
            alerts = []
        cooldown = self.duration(r.get("cooldown", "6h"), f"{at}.cooldown") or 0.0
        command = r.get("command")
        if isinstance(command, str):
            self.error(f"{at}.command", "expected a list of arguments (argv), never a shell string")
            command = []
        elif not isinstance(command, list) or not command:
            self.error(f"{at}.command", "required: a non-empty list of arguments")
            command = []
        return RetrainConfig(
            listen=listen,
            token_file=token_file,
            alerts=tuple(alerts),
            cooldown=cooldown,
            command=tuple(str(c) for c in command),
        )


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _closest(word: str, options: tuple[str, ...]) -> str | None:
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return matches[0] if matches else None
