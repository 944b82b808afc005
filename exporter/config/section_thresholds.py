"""Validates a model's ``thresholds``: the bound of each alert (exported as
``mlmodel_alert_threshold``), each checked as what it bounds, and only for a task that has it."""

from __future__ import annotations

from exporter.config.limits import DURATION_RANGE
from exporter.config.schema import (
    COUNT_THRESHOLDS,
    DEFAULT_THRESHOLDS,
    DURATION_THRESHOLDS,
    LOWER_BOUND_THRESHOLDS,
    RATIO_THRESHOLDS,
    UPPER_BOUND_THRESHOLDS,
)
from exporter.config.values import NON_NEGATIVE, Checker

_KEYS = (
    *LOWER_BOUND_THRESHOLDS,
    *UPPER_BOUND_THRESHOLDS,
    *RATIO_THRESHOLDS,
    *DURATION_THRESHOLDS,
    *COUNT_THRESHOLDS,
)
_CLASSIFICATION_TASKS = ("binary", "multiclass")


def check_thresholds(check: Checker, raw: object, at: str, task: object) -> dict[str, float]:
    """The defaults, overridden by the thresholds given."""
    thresholds = dict(DEFAULT_THRESHOLDS)
    for key, value in check.mapping(raw, at, _KEYS).items():
        number = _threshold(check, key, value, f"{at}.{key}")
        if number is None:
            continue
        if task == "regression" and key in LOWER_BOUND_THRESHOLDS:
            check.error(f"{at}.{key}", f"{key} applies to classification, not regression")
        elif task in _CLASSIFICATION_TASKS and key in UPPER_BOUND_THRESHOLDS:
            check.error(f"{at}.{key}", f"{key} applies to regression, not {task}")
        thresholds[key] = number
    return thresholds


def _threshold(check: Checker, key: str, value: object, key_path: str) -> float | None:
    if key in DURATION_THRESHOLDS:
        return check.duration(value, key_path, DURATION_RANGE)
    if key in UPPER_BOUND_THRESHOLDS:  # errors: no upper bound
        return check.number(value, key_path, NON_NEGATIVE)
    if key in COUNT_THRESHOLDS:
        return check.number(value, key_path, NON_NEGATIVE, integer=True)
    return check.number(value, key_path, (0, 1))  # scores and ratios
