"""Validates how a model's logs are read: the ``predictions`` and ``outcomes`` sources, the
``columns`` naming their fields, and the ``na_values`` texts that mean missing."""

from __future__ import annotations

from exporter.config.limits import DURATION_RANGE, MAX_NA_VALUES, PENDING_RANGE
from exporter.config.quoting import quote
from exporter.config.schema import COLUMN_KEYS, FORMATS, JSONL_SUFFIXES, Columns, SourceConfig
from exporter.config.values import Checker, given, one_of

_PREDICTIONS_KEYS = ("path", "format")
_OUTCOMES_KEYS = (*_PREDICTIONS_KEYS, "max_delay", "max_pending")


def check_source(check: Checker, raw: object, at: str, *, outcomes: bool) -> SourceConfig | None:
    """A source given as a mapping or as its path alone; the format follows from the file
    name when not given."""
    if isinstance(raw, str):
        raw = {"path": raw}
    s = check.mapping(raw, at, _OUTCOMES_KEYS if outcomes else _PREDICTIONS_KEYS)
    if not isinstance(raw, dict):
        return None
    if "path" not in s:
        check.error(f"{at}.path", "required: a file path or glob")
        return None
    path = check.path(s["path"], f"{at}.path")
    fmt = s.get("format")
    if fmt is None:
        if path is None:
            return None  # the path's problem is reported; the format would follow from it
        fmt = "jsonl" if path.name.endswith(JSONL_SUFFIXES) else "csv"
    if not one_of(fmt, FORMATS):
        expected = " or ".join(FORMATS)
        check.error(f"{at}.format", f"unknown format {quote(fmt)} (expected {expected})")
        return None
    max_delay = (
        check.duration(s["max_delay"], f"{at}.max_delay", DURATION_RANGE)
        if "max_delay" in s
        else None
    )
    max_pending = (
        check.integer(s["max_pending"], f"{at}.max_pending", PENDING_RANGE)
        if "max_pending" in s
        else None
    )
    if path is None:
        return None
    options = given(max_delay=max_delay, max_pending=max_pending)
    return SourceConfig(str(path), str(fmt), **options)


def check_columns(check: Checker, raw: object, at: str) -> Columns:
    c = check.mapping(raw, at, COLUMN_KEYS)
    return Columns(**given(**{key: check.name(value, f"{at}.{key}") for key, value in c.items()}))


def check_na_values(check: Checker, raw: object, at: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        check.error(at, 'expected a list of strings, e.g. [NA, "-"]')
        return ()
    if not check.sized_list(raw, at, MAX_NA_VALUES, "texts"):
        return ()
    texts = (check.string(value, f"{at}[{index}]") for index, value in enumerate(raw))
    return tuple(text for text in texts if text is not None)
