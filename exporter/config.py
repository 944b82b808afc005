"""YAML config into frozen, validated dataclasses.

Every problem is collected with its key path (``models[0].features.age: unknown type
"nmeric"``) and reported at once; unknown keys are errors because they are usually typos.
Relative paths resolve against the config file's folder.

Bounded on every side, so that no config, hostile or mistaken, costs more than a moment to
check or makes ``run`` unable to start: the file (``MAX_CONFIG_BYTES``), its YAML (nesting
depth, nodes once aliases are expanded, digits of an integer), every count, length and
value that sizes the exporter's work (the ``MAX_*`` constants below), and every error
message, which quotes at most ``MAX_QUOTED`` characters of a bad value and is built
without ever rendering the value in full. A source glob that could match a file in
``state_dir`` is an error: each checkpoint written there would be read as a rotation.
"""

from __future__ import annotations

import difflib
import fnmatch
import glob
import math
import os
import re
import reprlib
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from exporter.state.labels import canonical_label

TASKS = ("binary", "multiclass", "regression")
FORMATS = ("csv", "jsonl")
FEATURE_TYPES = ("numeric", "categorical")
DRIFT_METHODS = ("auto", "psi", "ks", "wasserstein", "jensenshannon", "chisquare")
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
COLUMN_KEYS = ("timestamp", "id", "prediction", "actual", "model_version")

# --- limits (README "Configuration reference: limits" gives each one's reason) ---------------
MAX_CONFIG_BYTES = 1 << 20  # the config file
MAX_YAML_DEPTH = 50  # nested collections; a real config nests 6 deep
MAX_YAML_NODES = 1_000_000  # values once aliases are expanded; a 1 MiB file holds < 600,000
MAX_INT_DIGITS = 100  # an integer literal; Python refuses to convert past 4,300
MAX_PROBLEMS = 100  # problems listed; the rest are counted in one more line
MAX_QUOTED = 60  # characters of a bad value quoted in a message
MAX_NAME_LENGTH = 128  # names and texts that become label values or match cells (labels.py)
MAX_PATH_LENGTH = 4096  # a path or glob (PATH_MAX on Linux)
MAX_DURATION_LENGTH = 32  # a duration string like 1h30m
MAX_MODELS = 1000
MAX_FEATURES = 1000  # per model; each gives about 8 series per window
MAX_WINDOWS = 10  # per model
MIN_WINDOW = 1.0  # seconds
MAX_WINDOW = 366 * 86400.0  # a leap year
MAX_WINDOW_BUCKETS = 1000
MAX_BUCKETS_PER_MODEL = 3000  # windows x window_buckets: reading time grows with buckets
MAX_LINE_BYTES = 64 << 20
MAX_LABEL_VALUES = 1000
MAX_PENDING = 100_000_000  # about 100 bytes per waiting row
MAX_FROM_STREAM = 1_000_000  # rows buffered (and checkpointed) until the fit
MAX_MIN_ROWS = 1_000_000_000
MAX_NA_VALUES = 100
MAX_ALERTS = 100
MAX_COMMAND_ARGS = 1000
MAX_COMMAND_ARG_LENGTH = 4096
MAX_FUTURE = 7 * 86400.0
MAX_DURATION = 366 * 86400.0  # max_delay, stale_after, outcomes_stale_after, cooldown
CHECKPOINT_INTERVAL_RANGE = (0.1, 86400.0)
POLL_INTERVAL_RANGE = (0.01, 60.0)

_DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION_RE = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")
_DURATION_PART_RE = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


# Unicode categories refused in a name: control (newline, tab), format (zero-width and
# bidirectional marks), surrogates, and line/paragraph separators.
_UNPRINTABLE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


class ConfigError(Exception):
    """Raised with every problem found, each naming its key path."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


def parse_duration(value: object) -> float:
    """Prometheus-style duration (``90s``, ``1h30m``, ``7d``) or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 1h or 7d, got {_shown(value)}")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
        if seconds <= 0 or not math.isfinite(seconds):
            raise ValueError(f"must be a positive duration, got {_shown(value)}")
        return seconds
    if (
        not isinstance(value, str)
        or len(value) > MAX_DURATION_LENGTH
        or not _DURATION_RE.match(value.strip())
    ):
        raise ValueError(f"expected a duration like 1h or 7d, got {_shown(value)}")
    seconds = sum(int(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART_RE.findall(value))
    if seconds <= 0:
        raise ValueError(f"must be a positive duration, got {_shown(value)}")
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
    max_line_bytes: int = 1 << 20
    max_label_values: int = 20
    checkpoint_interval: float = 5.0
    poll_interval: float = 0.25
    window_buckets: int = 60
    max_future: float = DEFAULT_MAX_FUTURE
    retrain: RetrainConfig | None = None


class _BoundedComposer(yaml.composer.Composer):
    """Composes YAML events into nodes, refusing a document nested deeper than
    ``MAX_YAML_DEPTH`` (yaml's own recursion would end in a RecursionError) and one whose
    aliases expand to more than ``MAX_YAML_NODES`` nodes (a "billion laughs" bomb: nine
    aliases of nine aliases of ... nine strings).

    Aliases stay shared objects, so a legitimate ``&defaults`` costs nothing; they are
    counted as the whole tree they name because the validator and its messages may walk
    it. The count is kept while composing: a node's expanded size is the growth of the
    running total while it is composed, remembered per anchor for its aliases."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._expanded = 0
        self._anchor_sizes: dict[str, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            # An alias of a collection still being composed (a recursive alias) counts 1.
            self._count(self._anchor_sizes.get(str(event.anchor), 1), event)
            return node
        if self._depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark
            )
        self._depth += 1
        start = self._expanded
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._count(1, event)
        if event.anchor is not None:
            self._anchor_sizes[event.anchor] = self._expanded - start
        return node

    def _count(self, nodes: int, event: yaml.Event) -> None:
        self._expanded += nodes
        if self._expanded > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"more than {MAX_YAML_NODES:,} values once aliases are expanded",
                event.start_mark,
            )


class _BoundedConstructor(yaml.constructor.SafeConstructor):
    """``SafeConstructor`` (plain data, never code) refusing an integer longer than
    ``MAX_INT_DIGITS`` digits, which Python would refuse to convert past 4,300 digits
    (a ValueError) or to compare with a float past 1e308 (an OverflowError)."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(str(node.value)) > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer longer than {MAX_INT_DIGITS} digits", node.start_mark
            )
        return super().construct_yaml_int(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """A key written twice in one mapping is an error (yaml keeps the last one
        silently; the first was usually meant). Keys brought in by a ``<<`` merge may be
        overridden, as YAML intends."""
        seen: set[str] = set()
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            if key.value in seen:
                shown = key.value if len(key.value) <= 60 else key.value[:60] + "..."
                raise yaml.constructor.ConstructorError(
                    None, None, f'duplicate key "{shown}"', key.start_mark
                )
            seen.add(key.value)
        return super().construct_mapping(node, deep=deep)


_BoundedConstructor.add_constructor("tag:yaml.org,2002:int", _BoundedConstructor.construct_yaml_int)


class _BoundedPyLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _BoundedComposer,
    _BoundedConstructor,
    yaml.resolver.Resolver,
):
    """``yaml.SafeLoader`` with the bounds above, all in Python."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _BoundedConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


_BoundedLoader: type = _BoundedPyLoader
if yaml.__with_libyaml__:  # libyaml's events, composed in Python: 1 MiB in 5 s, not 19 s

    class _BoundedCLoader(
        _BoundedComposer,  # before CParser, whose own composer would skip the bounds
        yaml.cyaml.CParser,
        _BoundedConstructor,
        yaml.resolver.Resolver,
    ):
        """``yaml.CSafeLoader`` with the bounds above."""

        def __init__(self, stream: str) -> None:
            yaml.cyaml.CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            _BoundedConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    _BoundedLoader = _BoundedCLoader


def load_config(path: Path | str) -> Config:
    """Read and validate a YAML config file; raise ConfigError naming every problem."""
    path = Path(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(
                [f"{path}: config file larger than {MAX_CONFIG_BYTES:,} bytes (1 MiB)"]
            )
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([f"{path}: cannot read config file: {err}"]) from None
    try:
        raw = yaml.load(text, Loader=_BoundedLoader)  # plain data only, as safe_load
    except (yaml.YAMLError, RecursionError) as err:
        message = " ".join(str(err).split()).replace(' in "<unicode string>",', " at")
        if len(message) > 300:
            message = message[:300] + "..."
        raise ConfigError([f"{path}: invalid YAML: {message}"]) from None
    return config_from_mapping(raw, base_dir=path.resolve().parent)


def config_from_mapping(raw: object, *, base_dir: Path) -> Config:
    """Validate an already-parsed config mapping (the demo builds one in code)."""
    try:
        return _Validator(base_dir).config(raw)
    except RecursionError:  # a mapping built in code, nested past what YAML would allow
        raise ConfigError([f"config: nested deeper than {MAX_YAML_DEPTH} levels"]) from None


class _Validator:
    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.problems: list[str] = []
        self.unlisted = 0  # problems past MAX_PROBLEMS, counted only

    def error(self, key_path: str, message: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{key_path}: {message}")
        else:
            self.unlisted += 1

    def has_problems_since(self, before: int) -> bool:
        return len(self.problems) > before or self.unlisted > 0

    def raise_problems(self) -> None:
        if self.unlisted:
            self.problems.append(f"... and {self.unlisted} more problem(s) not listed")
        raise ConfigError(self.problems)

    # --- generic helpers -------------------------------------------------
    def mapping(self, value: object, key_path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(key_path, f"expected a mapping, got {_kind(value)}")
            return {}
        for key in value:
            if key not in allowed:
                text = str(key)
                listed = len(self.problems) < MAX_PROBLEMS
                hint = _closest(text, allowed) if listed and len(text) <= MAX_NAME_LENGTH else None
                suffix = f' (did you mean "{hint}"?)' if hint else ""
                self.error(_join(key_path, text), f"unknown key{suffix}")
        return {k: v for k, v in value.items() if k in allowed}

    def sized_list(self, value: list[Any], key_path: str, most: int, what: str) -> bool:
        """Whether ``value`` has at most ``most`` entries (else one error, nothing walked)."""
        if len(value) <= most:
            return True
        self.error(key_path, f"at most {most:,} {what}, got {len(value):,}")
        return False

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
        try:
            number = float(value)
        except OverflowError:  # an int past 1e308 (a mapping built in code)
            number = math.copysign(math.inf, value)
        if not math.isfinite(number):
            self.error(key_path, f"expected a finite number, got {_shown(value)}")
            return None
        if integer and not number.is_integer():
            self.error(key_path, f"expected a whole number, got {_shown(value)}")
            return None
        if low is not None and number < low:
            self.error(key_path, f"must be >= {_number(low)}, got {_shown(value)}")
            return None
        if high is not None and number > high:
            self.error(key_path, f"must be <= {_number(high)}, got {_shown(value)}")
            return None
        return number

    def duration(
        self,
        value: object,
        key_path: str,
        *,
        low: float | None = None,
        high: float | None = None,
    ) -> float | None:
        try:
            seconds = parse_duration(value)
        except ValueError as err:
            self.error(key_path, str(err))
            return None
        if low is not None and seconds < low:
            self.error(key_path, f"must be at least {_seconds(low)}, got {_shown(value)}")
            return None
        if high is not None and seconds > high:
            self.error(key_path, f"must be at most {_seconds(high)}, got {_shown(value)}")
            return None
        return seconds

    def string(self, value: object, key_path: str, *, most: int = MAX_NAME_LENGTH) -> str | None:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(key_path, f"expected a string, got {_kind(value)}")
            return None
        text = str(value).strip()
        if not text:
            self.error(key_path, "must not be empty")
            return None
        if len(text) > most:
            self.error(key_path, f"at most {most:,} characters, got {len(text):,}")
            return None
        return text

    def name(self, value: object, key_path: str) -> str | None:
        """A string that becomes a label value or matches a column: bounded, printable."""
        text = self.string(value, key_path)
        if text is None:
            return None
        bad = next((c for c in text if unicodedata.category(c) in _UNPRINTABLE_CATEGORIES), None)
        if bad is not None:
            self.error(key_path, f"must be printable, got {_shown(text)} (contains {bad!r})")
            return None
        return text

    def path(self, value: object, key_path: str) -> Path | None:
        text = self.string(value, key_path, most=MAX_PATH_LENGTH)
        if text is None:
            return None
        if "\x00" in text:
            self.error(key_path, "must not contain a NUL character")
            return None
        return self.base_dir / Path(text).expanduser()

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
        given_state_dir = self.path(top.get("state_dir", "./state"), "state_dir")
        state_dir = given_state_dir or self.base_dir
        options: dict[str, Any] = {}
        for key, low, high in (
            ("max_line_bytes", 64, MAX_LINE_BYTES),
            ("max_label_values", 1, MAX_LABEL_VALUES),
            ("window_buckets", 1, MAX_WINDOW_BUCKETS),
        ):
            if key in top:
                number = self.number(top[key], key, low=low, high=high, integer=True)
                if number is not None:
                    options[key] = int(number)
        for key, (low, high) in (
            ("checkpoint_interval", CHECKPOINT_INTERVAL_RANGE),
            ("poll_interval", POLL_INTERVAL_RANGE),
            ("max_future", (None, MAX_FUTURE)),
        ):
            if key in top:
                seconds = self.duration(top[key], key, low=low, high=high)
                if seconds is not None:
                    options[key] = seconds
        buckets = options.get("window_buckets", Config.window_buckets)

        models: list[ModelConfig] = []
        raw_models = top.get("models")
        if raw is not None and raw_models is None:
            self.error("models", "required: a list with at least one model")
        elif raw_models is not None and (not isinstance(raw_models, list) or not raw_models):
            self.error("models", "expected a non-empty list of models")
        elif raw_models is None or self.sized_list(raw_models, "models", MAX_MODELS, "models"):
            seen: dict[str, int] = {}
            for index, raw_model in enumerate(raw_models or []):
                model = self.model(raw_model, f"models[{index}]", buckets)
                if model is None:
                    continue
                if model.name in seen:
                    self.error(
                        f"models[{index}].name",
                        f'duplicate model name "{model.name}" (also models[{seen[model.name]}])',
                    )
                seen[model.name] = index
                models.append(model)
                if given_state_dir is not None:
                    self.outside_state_dir(model, f"models[{index}]", given_state_dir)
        retrain = self.retrain(top["retrain"]) if "retrain" in top else None
        if self.has_problems_since(0):
            self.raise_problems()
        return Config(
            models=tuple(models),
            state_dir=state_dir,
            base_dir=self.base_dir,
            retrain=retrain,
            **options,
        )

    def outside_state_dir(self, model: ModelConfig, at: str, state_dir: Path) -> None:
        """A source that could match a file in state_dir reads each checkpoint written there
        as a rotation, which forces another checkpoint: an endless loop of fsyncs."""
        for kind, source in (("predictions", model.predictions), ("outcomes", model.outcomes)):
            if source is not None and _could_match_inside(source.path, state_dir):
                self.error(
                    f"{at}.{kind}.path",
                    "can match files in state_dir, where the checkpoints are written (each "
                    "would be read as a log rotation); narrow the path or move state_dir",
                )

    def model(self, raw: object, at: str, buckets: int) -> ModelConfig | None:
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
        name = self.name(m.get("name"), f"{at}.name") if "name" in m else None
        if "name" not in m:
            self.error(f"{at}.name", "required")
        task = m.get("task")
        if task is None:
            self.error(f"{at}.task", f"required: one of {', '.join(TASKS)}")
        elif not isinstance(task, str) or task not in TASKS:
            self.error(
                f"{at}.task", f"unknown task {_quote(task)} (expected one of {', '.join(TASKS)})"
            )
        threshold = 0.5
        if "threshold" in m:
            threshold = self.number(m["threshold"], f"{at}.threshold") or 0.0
            if task != "binary":
                self.error(f"{at}.threshold", "only applies to task: binary")
        positive_class = "1"
        if "positive_class" in m:
            positive_class = self.name(m["positive_class"], f"{at}.positive_class") or "1"
            positive_class = canonical_label(positive_class)
            if task != "binary":
                self.error(f"{at}.positive_class", "only applies to task: binary")
        version = (
            self.name(m["model_version"], f"{at}.model_version") if "model_version" in m else None
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
        windows = self.windows(m.get("windows", list(DEFAULT_WINDOWS)), f"{at}.windows", buckets)
        drift = self.drift(m.get("drift"), f"{at}.drift")
        thresholds = self.thresholds(m.get("thresholds"), f"{at}.thresholds", task)
        na_values = self.na_values(m.get("na_values"), f"{at}.na_values")
        if self.has_problems_since(before) or predictions is None or name is None:
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
        if not self.sized_list(raw, at, MAX_NA_VALUES, "texts"):
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
        if fmt is None and path is None:
            return None  # the path's problem is reported; the format would follow from it
        if fmt is None and path is not None:
            fmt = "jsonl" if path.name.endswith((".jsonl", ".ndjson", ".json")) else "csv"
        if not isinstance(fmt, str) or fmt not in FORMATS:
            self.error(f"{at}.format", f"unknown format {_quote(fmt)} (expected csv or jsonl)")
            return None
        max_delay = 7 * 86400.0
        if "max_delay" in s:
            max_delay = (
                self.duration(s["max_delay"], f"{at}.max_delay", high=MAX_DURATION) or max_delay
            )
        max_pending = 1_000_000
        if "max_pending" in s:
            number = self.number(
                s["max_pending"], f"{at}.max_pending", low=1, high=MAX_PENDING, integer=True
            )
            max_pending = int(number) if number is not None else max_pending
        if path is None:
            return None
        return SourceConfig(str(path), str(fmt), max_delay, max_pending)

    def columns(self, raw: object, at: str) -> Columns:
        c = self.mapping(raw, at, COLUMN_KEYS)
        names = {}
        for key, value in c.items():
            text = self.name(value, f"{at}.{key}")
            if text is not None:
                names[key] = text
        return Columns(**names)

    def features(self, raw: object, at: str) -> tuple[FeatureConfig, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list | dict):
            self.error(at, f"expected a mapping of feature name to type, got {_kind(raw)}")
            return ()
        if len(raw) > MAX_FEATURES:
            self.error(at, f"at most {MAX_FEATURES:,} features, got {len(raw):,}")
            return ()
        if isinstance(raw, list):  # a bare list of names: types inferred from the reference
            names = {}
            for index, name in enumerate(raw):
                if isinstance(name, str):
                    names[name] = None
                else:
                    self.error(f"{at}[{index}]", f"expected a feature name, got {_kind(name)}")
            raw = names
        result = []
        for name, spec in raw.items():
            key_path = _join(at, str(name))
            if self.name(name, key_path) is None:
                continue
            given = {"type": spec} if isinstance(spec, str) or spec is None else spec
            f = self.mapping(given, key_path, ("type", "min", "max"))
            kind = f.get("type")
            if kind is not None and (not isinstance(kind, str) or kind not in FEATURE_TYPES):
                hint = _closest(kind, FEATURE_TYPES) if isinstance(kind, str) else None
                suffix = f' (did you mean "{hint}"?)' if hint else ""
                self.error(key_path, f"unknown type {_quote(kind)}{suffix}")
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
        number = self.number(
            r["from_stream"], f"{at}.from_stream", low=10, high=MAX_FROM_STREAM, integer=True
        )
        return ReferenceConfig(from_stream=int(number) if number is not None else None)

    def windows(self, raw: object, at: str, buckets: int) -> tuple[Window, ...]:
        if not isinstance(raw, list) or not raw:
            self.error(at, "expected a non-empty list of durations like [1h, 1d, 7d]")
            return ()
        if not self.sized_list(raw, at, MAX_WINDOWS, "windows"):
            return ()
        if len(raw) * buckets > MAX_BUCKETS_PER_MODEL:
            self.error(
                at,
                f"{len(raw)} windows x window_buckets {buckets:,} = {len(raw) * buckets:,} "
                f"buckets; at most {MAX_BUCKETS_PER_MODEL:,} per model",
            )
            return ()
        windows = []
        for index, value in enumerate(raw):
            seconds = self.duration(value, f"{at}[{index}]", low=MIN_WINDOW, high=MAX_WINDOW)
            if seconds is not None:
                windows.append(Window(str(value), seconds))
        names = [w.name for w in windows]
        if len(set(names)) != len(names):
            self.error(at, "windows must be distinct")
        return tuple(windows)

    def drift(self, raw: object, at: str) -> DriftConfig:
        d = self.mapping(raw, at, ("method", "bins", "min_rows", "thresholds"))
        method = d.get("method", "auto")
        if not isinstance(method, str) or method not in DRIFT_METHODS:
            self.error(
                f"{at}.method",
                f"unknown method {_quote(method)} (expected one of {', '.join(DRIFT_METHODS)})",
            )
            method = "auto"
        bins = self.number(
            d.get("bins", DEFAULT_DRIFT_BINS), f"{at}.bins", low=2, high=100, integer=True
        )
        min_rows = self.number(
            d.get("min_rows", DEFAULT_DRIFT_MIN_ROWS),
            f"{at}.min_rows",
            low=1,
            high=MAX_MIN_ROWS,
            integer=True,
        )
        thresholds = dict(DEFAULT_DRIFT_THRESHOLDS)
        raw_thresholds = self.mapping(
            d.get("thresholds"), f"{at}.thresholds", tuple(DEFAULT_DRIFT_THRESHOLDS)
        )
        for key, value in raw_thresholds.items():
            number = self.number(value, f"{at}.thresholds.{key}", low=0)
            if number is not None:
                thresholds[key] = number
        return DriftConfig(
            str(method),
            int(bins or DEFAULT_DRIFT_BINS),
            int(min_rows or DEFAULT_DRIFT_MIN_ROWS),
            thresholds,
        )

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
            checks[key] = lambda v, p: self.duration(v, p, high=MAX_DURATION)
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
        if listen and not _valid_listen_address(listen):
            self.error(
                f"{at}.listen", f"expected host:port with a port 0-65535, got {_quote(listen)}"
            )
        token_file = self.path(r["token_file"], f"{at}.token_file") if "token_file" in r else None
        if token_file is None and "token_file" not in r:
            self.error(f"{at}.token_file", "required: the hook never runs without a token")
        alerts = r.get("alerts", list(RetrainConfig.alerts))
        if not isinstance(alerts, list) or not all(isinstance(a, str) for a in alerts):
            self.error(f"{at}.alerts", "expected a list of alert names")
            alerts = []
        elif not self.sized_list(alerts, f"{at}.alerts", MAX_ALERTS, "alert names"):
            alerts = []
        else:
            alerts = [self.name(a, f"{at}.alerts[{i}]") or "" for i, a in enumerate(alerts)]
        cooldown = (
            self.duration(r.get("cooldown", "6h"), f"{at}.cooldown", high=MAX_DURATION) or 0.0
        )
        command = r.get("command")
        arguments: list[str] = []
        if isinstance(command, str):
            self.error(f"{at}.command", "expected a list of arguments (argv), never a shell string")
        elif not isinstance(command, list) or not command:
            self.error(f"{at}.command", "required: a non-empty list of arguments")
        elif self.sized_list(command, f"{at}.command", MAX_COMMAND_ARGS, "arguments"):
            for index, argument in enumerate(command):
                text = self.string(argument, f"{at}.command[{index}]", most=MAX_COMMAND_ARG_LENGTH)
                arguments.append(text or "")
        return RetrainConfig(
            listen=listen,
            token_file=token_file,
            alerts=tuple(alerts),
            cooldown=cooldown,
            command=tuple(arguments),
        )


def _join(prefix: str, key: str) -> str:
    """A key path, the key shown as by ``_printable``."""
    key = _printable(key)
    return f"{prefix}.{key}" if prefix else key


def _printable(text: str) -> str:
    """``text`` on one line: at most MAX_QUOTED characters, then ``...``, with control and
    other unprintable characters escaped as in a Python literal."""
    shown = text[:MAX_QUOTED]
    if not shown.isprintable():
        shown = repr(shown)[1:-1]
    return shown + "..." if len(text) > MAX_QUOTED else shown


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {_shown(value)}"


_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = _REPR.maxset = 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_QUOTED + 2


def _shown(value: object) -> str:
    """repr(value) cut to MAX_QUOTED characters, built without rendering the whole value
    (reprlib stops at a few items per level and a few levels: a bomb is never expanded)."""
    if isinstance(value, str):
        return repr(value) if len(value) <= MAX_QUOTED else repr(value[:MAX_QUOTED]) + "..."
    if isinstance(value, int) and value.bit_length() > 4 * MAX_QUOTED:
        return f"<an integer of {value.bit_length()} bits>"  # repr() refuses 4,300 digits
    text = repr(value) if isinstance(value, int | float) else _REPR.repr(value)
    return text if len(text) <= MAX_QUOTED else text[:MAX_QUOTED] + "..."


def _quote(value: object) -> str:
    """A bad value in a message: ``"text"`` for a string (cut to MAX_QUOTED characters),
    else its kind and bounded repr."""
    if not isinstance(value, str):
        return _kind(value)
    return f'"{_printable(value)}"'


def _number(number: float) -> str:
    """A bound in a message: ``67,108,864``, ``0.5``."""
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


def _seconds(seconds: float) -> str:
    """A bound in a message: ``366d``, ``1h``, ``100ms``."""
    for unit in ("d", "h", "m", "s"):
        if seconds >= _DURATION_UNITS[unit] and (seconds / _DURATION_UNITS[unit]).is_integer():
            return f"{seconds / _DURATION_UNITS[unit]:g}{unit}"
    return f"{seconds * 1000:g}ms"


def _valid_listen_address(address: str) -> bool:
    """``host:port`` (``[::1]:9748``, ``:9748``) with a port in 0..65535."""
    _host, sep, port = address.rpartition(":")
    return bool(sep) and port.isascii() and port.isdigit() and len(port) <= 5 and int(port) <= 65535


def _could_match_inside(pattern: str, directory: Path) -> bool:
    """Whether the source path or glob ``pattern`` could match a path inside
    ``directory`` (at any depth, whatever the names there): glob's rules applied name by
    name (``*``, ``?`` and ``[...]`` within one name, ``**`` across any number of names, a
    wildcard never matching a leading dot), after resolving ``..`` and symlinks in the
    part of each path before its first wildcard."""
    parts = _resolved_parts(pattern)
    inside = Path(os.path.realpath(directory)).parts  # names, not patterns
    states = _past_double_stars({0}, parts)
    for name in inside:
        following: set[int] = set()
        for index in states:
            if index == len(parts):
                continue
            if parts[index] == "**":
                if not name.startswith("."):
                    following.add(index)
            elif _name_matches(name, parts[index]):
                following.add(index + 1)
        states = _past_double_stars(following, parts)
        if not states:
            return False
    # Inside the directory: any pattern name left can match some name there.
    return any(index < len(parts) for index in states)


def _past_double_stars(states: set[int], parts: list[str]) -> set[int]:
    """The states reachable by letting each ``**`` match no name at all."""
    result = set(states)
    todo = list(states)
    while todo:
        index = todo.pop()
        if index < len(parts) and parts[index] == "**" and index + 1 not in result:
            result.add(index + 1)
            todo.append(index + 1)
    return result


def _name_matches(name: str, pattern: str) -> bool:
    if not glob.has_magic(pattern):
        return name == pattern
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def _resolved_parts(path: str) -> list[str]:
    """The names along an absolute path or glob, with ``.``/``..`` and the symlinks of
    its literal beginning resolved (a glob's wildcard names kept as written)."""
    parts = Path(os.path.normpath(path)).parts
    literal = 0
    while literal < len(parts) and not glob.has_magic(parts[literal]):
        literal += 1
    head = Path(os.path.realpath(Path(*parts[:literal]))) if literal else Path.cwd()
    return [*head.parts, *parts[literal:]]


def _closest(word: str, options: tuple[str, ...]) -> str | None:
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return matches[0] if matches else None
