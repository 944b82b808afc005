"""Validates one entry of ``models``: its name, task and the options of a binary task, its
windows, and each of its sections (sources, features, reference, drift, thresholds)."""

from __future__ import annotations

from typing import Any

from exporter.config.limits import MAX_BUCKETS_PER_MODEL, MAX_WINDOWS, WINDOW_RANGE
from exporter.config.quoting import quote
from exporter.config.schema import DEFAULT_WINDOWS, TASKS, ModelConfig, Window
from exporter.config.section_drift import check_drift
from exporter.config.section_features import check_features, check_reference
from exporter.config.section_source import check_columns, check_na_values, check_source
from exporter.config.section_thresholds import check_thresholds
from exporter.config.values import Checker, one_of
from exporter.state.labels import canonical_label

_KEYS = (
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
)


def check_model(check: Checker, raw: object, at: str, buckets: int) -> ModelConfig | None:
    """The model at key path ``at``; None if it has any problem. ``buckets`` per window."""
    mark = check.problems.mark()
    m = check.mapping(raw, at, _KEYS)
    if not isinstance(raw, dict):
        return None
    if "name" in m:
        name = check.name(m["name"], f"{at}.name")
    else:
        name = None
        check.error(f"{at}.name", "required")
    task = _task(check, m.get("task"), f"{at}.task")
    fields: dict[str, Any] = _binary_options(check, m, at, task)
    if "model_version" in m:
        fields["model_version"] = check.name(m["model_version"], f"{at}.model_version")
    if "predictions" not in m:
        check.error(f"{at}.predictions", "required: {path: ..., format: csv|jsonl}")
        predictions = None
    else:
        predictions = check_source(check, m["predictions"], f"{at}.predictions", outcomes=False)
    if "outcomes" in m:
        fields["outcomes"] = check_source(check, m["outcomes"], f"{at}.outcomes", outcomes=True)
    fields["columns"] = check_columns(check, m.get("columns"), f"{at}.columns")
    fields["features"] = check_features(check, m.get("features"), f"{at}.features")
    if "reference" in m:
        fields["reference"] = check_reference(check, m["reference"], f"{at}.reference")
    raw_windows = m.get("windows", list(DEFAULT_WINDOWS))
    fields["windows"] = _windows(check, raw_windows, f"{at}.windows", buckets)
    fields["drift"] = check_drift(check, m.get("drift"), f"{at}.drift")
    fields["thresholds"] = check_thresholds(check, m.get("thresholds"), f"{at}.thresholds", task)
    fields["na_values"] = check_na_values(check, m.get("na_values"), f"{at}.na_values")
    if check.problems.since(mark) or predictions is None or name is None:
        return None
    return ModelConfig(name=name, task=str(task), predictions=predictions, **fields)


def _task(check: Checker, task: object, at: str) -> object:
    if task is None:
        check.error(at, f"required: one of {', '.join(TASKS)}")
    elif not one_of(task, TASKS):
        check.error(at, f"unknown task {quote(task)} (expected one of {', '.join(TASKS)})")
    return task


def _binary_options(check: Checker, m: dict[str, Any], at: str, task: object) -> dict[str, Any]:
    """``threshold`` and ``positive_class`` as given (None if not valid)."""
    options: dict[str, Any] = {}
    if "threshold" in m:
        options["threshold"] = check.number(m["threshold"], f"{at}.threshold")
        _binary_only(check, f"{at}.threshold", task)
    if "positive_class" in m:
        label = check.name(m["positive_class"], f"{at}.positive_class")
        options["positive_class"] = None if label is None else canonical_label(label)
        _binary_only(check, f"{at}.positive_class", task)
    return options


def _binary_only(check: Checker, key_path: str, task: object) -> None:
    if task != "binary":
        check.error(key_path, "only applies to task: binary")


def _windows(check: Checker, raw: object, at: str, buckets: int) -> tuple[Window, ...]:
    if not isinstance(raw, list) or not raw:
        check.error(at, "expected a non-empty list of durations like [1h, 1d, 7d]")
        return ()
    if not check.sized_list(raw, at, MAX_WINDOWS, "windows"):
        return ()
    if len(raw) * buckets > MAX_BUCKETS_PER_MODEL:
        check.error(
            at,
            f"{len(raw)} windows x window_buckets {buckets:,} = {len(raw) * buckets:,} "
            f"buckets; at most {MAX_BUCKETS_PER_MODEL:,} per model",
        )
        return ()
    windows = []
    for index, value in enumerate(raw):
        seconds = check.duration(value, f"{at}[{index}]", WINDOW_RANGE)
        if seconds is not None:
            windows.append(Window(str(value), seconds))
    names = [w.name for w in windows]
    if len(set(names)) != len(names):
        check.error(at, "windows must be distinct")
    return tuple(windows)
