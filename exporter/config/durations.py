"""Durations as a config writes them: Prometheus-style (``90s``, ``1h30m``, ``7d``) or a
number of seconds; and a duration bound as a message shows it (``366d``, ``100ms``)."""

from __future__ import annotations

import math
import re

from exporter.config.limits import MAX_DURATION_LENGTH
from exporter.config.quoting import shown

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_DURATION_RE = re.compile(r"^((\d+)(ms|s|m|h|d|w|y))+$")
_PART_RE = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


def parse_duration(value: object) -> float:
    """Seconds in a duration (``90s``, ``1h30m``, ``7d``) or a number of seconds; a
    ValueError saying what was expected otherwise."""
    seconds = _seconds_in(value)
    if seconds is None:
        raise ValueError(f"expected a duration like 1h or 7d, got {shown(value)}")
    if seconds <= 0 or not math.isfinite(seconds):
        raise ValueError(f"must be a positive duration, got {shown(value)}")
    return seconds


def _seconds_in(value: object) -> float | None:
    """The seconds ``value`` writes, of any sign; None if it writes no duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    if (
        not isinstance(value, str)
        or len(value) > MAX_DURATION_LENGTH
        or not _DURATION_RE.match(value.strip())
    ):
        return None
    return float(sum(int(n) * _UNITS[unit] for n, unit in _PART_RE.findall(value)))


def format_seconds(seconds: float) -> str:
    """A duration bound: ``366d``, ``1h``, ``100ms``."""
    for unit in ("d", "h", "m", "s"):
        if seconds >= _UNITS[unit] and (seconds / _UNITS[unit]).is_integer():
            return f"{seconds / _UNITS[unit]:g}{unit}"
    return f"{seconds * 1000:g}ms"
