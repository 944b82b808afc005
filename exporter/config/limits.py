"""The bounds on a config: its file, its YAML, and every value that sizes the exporter's work.

With them no config, hostile or mistaken, costs more than a moment to check or makes ``run``
unable to start. docs/configuration.md ("Limits") gives each one's reason.
"""

from __future__ import annotations

MAX_CONFIG_BYTES = 1 << 20  # the config file
MAX_YAML_DEPTH = 50  # nested collections; a real config nests 6 deep
MAX_YAML_NODES = 1_000_000  # values once aliases are expanded; a 1 MiB file holds < 600,000
MAX_INT_DIGITS = 100  # an integer literal; Python refuses to convert past 4,300
MAX_YAML_MESSAGE = 300  # characters of a YAML parser's message
MAX_PROBLEMS = 100  # problems listed; the rest are counted in one more line
MAX_QUOTED = 60  # characters of a bad value quoted in a message
MAX_NAME_LENGTH = 128  # names and texts that become label values or match cells (labels.py)
MAX_PATH_LENGTH = 4096  # a path or glob (PATH_MAX on Linux)
MAX_DURATION_LENGTH = 32  # a duration string like 1h30m
MAX_MODELS = 1000
MAX_FEATURES = 1000  # per model; each gives about 8 series per window
MAX_WINDOWS = 10  # per model
WINDOW_RANGE = (1.0, 366 * 86400.0)  # seconds: up to a leap year
WINDOW_BUCKETS_RANGE = (1, 1000)
MAX_BUCKETS_PER_MODEL = 3000  # windows x window_buckets: reading time grows with buckets
LINE_BYTES_RANGE = (64, 64 << 20)
LABEL_VALUES_RANGE = (1, 1000)
PENDING_RANGE = (1, 100_000_000)  # about 100 bytes per waiting row
FROM_STREAM_RANGE = (10, 1_000_000)  # rows buffered (and checkpointed) until the fit
DRIFT_BINS_RANGE = (2, 100)
MIN_ROWS_RANGE = (1, 1_000_000_000)
MAX_NA_VALUES = 100
MAX_ALERTS = 100
MAX_COMMAND_ARGS = 1000
MAX_COMMAND_ARG_LENGTH = 4096
FUTURE_RANGE = (None, 7 * 86400.0)
DURATION_RANGE = (None, 366 * 86400.0)  # max_delay, stale_after, outcomes_stale_after, cooldown
CHECKPOINT_INTERVAL_RANGE = (0.1, 86400.0)
POLL_INTERVAL_RANGE = (0.01, 60.0)
MAX_PORT = 65535
