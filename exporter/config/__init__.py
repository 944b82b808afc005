"""Config: a YAML file into frozen, validated dataclasses.

Every problem is collected with its key path (``models[0].features.age: unknown type
"nmeric"``) and reported at once, exit 2; unknown keys are errors because they are usually
typos. Everything a config can size is bounded (limits.py), and so is every message. The
way in is load.py; yaml_loader.py reads the file, the section_*.py modules validate with the
checks of values.py, and schema.py holds the dataclasses and every default.

This module is the package's public face and the project's one re-export. It names only
what other packages import as ``exporter.config.X`` (the loaders, the error, the dataclasses
the stages read, the threshold names the stack tests check) and the user-facing defaults
other stages share (their one home is schema.py). Anything else is imported from the module
that defines it.
"""

from exporter.config.durations import parse_duration
from exporter.config.load import config_from_mapping, load_config
from exporter.config.problems import ConfigError
from exporter.config.schema import (
    DEFAULT_DRIFT_BINS,
    DEFAULT_DRIFT_MIN_ROWS,
    DEFAULT_DRIFT_THRESHOLDS,
    DEFAULT_MAX_FUTURE,
    DEFAULT_MAX_LABEL_VALUES,
    DEFAULT_MAX_LINE_BYTES,
    DEFAULT_WINDOW_BUCKETS,
    DURATION_THRESHOLDS,
    LOWER_BOUND_THRESHOLDS,
    RATIO_THRESHOLDS,
    UPPER_BOUND_THRESHOLDS,
    Config,
    ModelConfig,
    SourceConfig,
    Window,
)

__all__ = [
    "DEFAULT_DRIFT_BINS",
    "DEFAULT_DRIFT_MIN_ROWS",
    "DEFAULT_DRIFT_THRESHOLDS",
    "DEFAULT_MAX_FUTURE",
    "DEFAULT_MAX_LABEL_VALUES",
    "DEFAULT_MAX_LINE_BYTES",
    "DEFAULT_WINDOW_BUCKETS",
    "DURATION_THRESHOLDS",
    "LOWER_BOUND_THRESHOLDS",
    "RATIO_THRESHOLDS",
    "UPPER_BOUND_THRESHOLDS",
    "Config",
    "ConfigError",
    "ModelConfig",
    "SourceConfig",
    "Window",
    "config_from_mapping",
    "load_config",
    "parse_duration",
]
