"""Validates a whole config: its top-level keys, the list of models (names distinct, logs
outside ``state_dir``) and the retrain section, raising one ConfigError with every problem."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exporter.config.globs import could_match_inside
from exporter.config.limits import (
    CHECKPOINT_INTERVAL_RANGE,
    FUTURE_RANGE,
    LABEL_VALUES_RANGE,
    LINE_BYTES_RANGE,
    MAX_MODELS,
    POLL_INTERVAL_RANGE,
    WINDOW_BUCKETS_RANGE,
)
from exporter.config.schema import DEFAULT_STATE_DIR, Config, ModelConfig
from exporter.config.section_model import check_model
from exporter.config.section_retrain import check_retrain
from exporter.config.values import Checker

_INTEGER_OPTIONS = (
    ("max_line_bytes", LINE_BYTES_RANGE),
    ("max_label_values", LABEL_VALUES_RANGE),
    ("window_buckets", WINDOW_BUCKETS_RANGE),
)
_DURATION_OPTIONS = (
    ("checkpoint_interval", CHECKPOINT_INTERVAL_RANGE),
    ("poll_interval", POLL_INTERVAL_RANGE),
    ("max_future", FUTURE_RANGE),
)
_KEYS = (
    "state_dir",
    "models",
    "retrain",
    "max_line_bytes",
    "max_label_values",
    "checkpoint_interval",
    "poll_interval",
    "window_buckets",
    "max_future",
)


def check_config(raw: object, base_dir: Path) -> Config:
    """The Config in ``raw`` (parsed YAML), paths resolved against ``base_dir``."""
    check = Checker(base_dir)
    top = check.mapping(raw, "", _KEYS)
    if raw is None:
        check.error("models", "required: the config file is empty")
    given_state_dir = check.path(top.get("state_dir", DEFAULT_STATE_DIR), "state_dir")
    options = _options(check, top)
    buckets = options.get("window_buckets", Config.window_buckets)
    models = _models(check, raw, top.get("models"), buckets, given_state_dir)
    retrain = check_retrain(check, top["retrain"]) if "retrain" in top else None
    check.problems.raise_if_any()
    return Config(
        models=tuple(models),
        state_dir=given_state_dir or base_dir,
        base_dir=base_dir,
        retrain=retrain,
        **options,
    )


def _options(check: Checker, top: dict[str, Any]) -> dict[str, Any]:
    """The numeric top-level settings given, each checked against its range."""
    options: dict[str, Any] = {}
    for key, bounds in _INTEGER_OPTIONS:
        number = check.integer(top[key], key, bounds) if key in top else None
        if number is not None:
            options[key] = number
    for key, bounds in _DURATION_OPTIONS:
        seconds = check.duration(top[key], key, bounds) if key in top else None
        if seconds is not None:
            options[key] = seconds
    return options


def _models(
    check: Checker, raw: object, raw_models: object, buckets: int, state_dir: Path | None
) -> list[ModelConfig]:
    """The valid models; a name used twice, or logs that could be read from state_dir (as
    given; None if it was not valid), are problems."""
    if raw is not None and raw_models is None:
        check.error("models", "required: a list with at least one model")
        return []
    if raw_models is not None and (not isinstance(raw_models, list) or not raw_models):
        check.error("models", "expected a non-empty list of models")
        return []
    if raw_models is None or not check.sized_list(raw_models, "models", MAX_MODELS, "models"):
        return []
    models: list[ModelConfig] = []
    seen: dict[str, int] = {}
    for index, raw_model in enumerate(raw_models):
        model = check_model(check, raw_model, f"models[{index}]", buckets)
        if model is None:
            continue
        if model.name in seen:
            check.error(
                f"models[{index}].name",
                f'duplicate model name "{model.name}" (also models[{seen[model.name]}])',
            )
        seen[model.name] = index
        models.append(model)
        if state_dir is not None:
            _outside_state_dir(check, model, f"models[{index}]", state_dir)
    return models


def _outside_state_dir(check: Checker, model: ModelConfig, at: str, state_dir: Path) -> None:
    """A source that could match a file in state_dir reads each checkpoint written there
    as a rotation, which forces another checkpoint: an endless loop of fsyncs."""
    for kind, source in (("predictions", model.predictions), ("outcomes", model.outcomes)):
        if source is not None and could_match_inside(source.path, state_dir):
            check.error(
                f"{at}.{kind}.path",
                "can match files in state_dir, where the checkpoints are written (each "
                "would be read as a log rotation); narrow the path or move state_dir",
            )
