"""Checks one config value against the kind and bounds its key expects, recording a problem
with the key path instead of raising, and returning None for a value that failed."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporter.config.durations import format_seconds, parse_duration
from exporter.config.limits import MAX_NAME_LENGTH, MAX_PATH_LENGTH, MAX_PORT
from exporter.config.problems import Problems
from exporter.config.quoting import bound, did_you_mean, join, kind, shown

# Unicode categories refused in a name: control (newline, tab), format (zero-width and
# bidirectional marks), surrogates, and line/paragraph separators.
_UNPRINTABLE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


Bounds = tuple[float | None, float | None]  # inclusive; None: unbounded on that side
UNBOUNDED: Bounds = (None, None)
NON_NEGATIVE: Bounds = (0, None)


def one_of(value: object, options: tuple[str, ...]) -> bool:
    return isinstance(value, str) and value in options


def is_listen_address(address: str) -> bool:
    """``host:port`` (``[::1]:9748``, ``:9748``) with a port in 0..MAX_PORT."""
    _host, sep, port = address.rpartition(":")
    digits = port.isascii() and port.isdigit() and len(port) <= len(str(MAX_PORT))
    return bool(sep) and digits and int(port) <= MAX_PORT


class Checker:
    """The value checks, sharing the problems found and the folder paths resolve against."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = base_dir
        self.problems = Problems()

    def error(self, key_path: str, message: str) -> None:
        self.problems.add(key_path, message)

    def mapping(self, value: object, key_path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        """The allowed keys of a mapping (nothing given: empty); any other key is a problem,
        usually a typo."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(key_path, f"expected a mapping, got {kind(value)}")
            return {}
        for key in value:
            if key not in allowed:
                text = str(key)
                hint = self.problems.listing() and len(text) <= MAX_NAME_LENGTH
                suffix = did_you_mean(text, allowed) if hint else ""
                self.error(join(key_path, text), f"unknown key{suffix}")
        return {k: v for k, v in value.items() if k in allowed}

    def sized_list(self, value: list[Any], key_path: str, most: int, what: str) -> bool:
        """Whether ``value`` has at most ``most`` entries (else one problem, nothing walked)."""
        if len(value) <= most:
            return True
        self.error(key_path, f"at most {most:,} {what}, got {len(value):,}")
        return False

    def number(
        self, value: object, key_path: str, within: Bounds = UNBOUNDED, *, integer: bool = False
    ) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(key_path, f"expected a number, got {kind(value)}")
            return None
        try:
            number = float(value)
        except OverflowError:  # an int past 1e308 (a mapping built in code)
            number = math.inf if value > 0 else -math.inf
        if not math.isfinite(number):
            self.error(key_path, f"expected a finite number, got {shown(value)}")
            return None
        if integer and not number.is_integer():
            self.error(key_path, f"expected a whole number, got {shown(value)}")
            return None
        return self._within(value, number, key_path, within, words=(">=", "<="), show=bound)

    def integer(self, value: object, key_path: str, within: Bounds) -> int | None:
        number = self.number(value, key_path, within, integer=True)
        return None if number is None else int(number)

    def duration(self, value: object, key_path: str, within: Bounds = UNBOUNDED) -> float | None:
        try:
            seconds = parse_duration(value)
        except ValueError as err:
            self.error(key_path, str(err))
            return None
        words = ("at least", "at most")
        return self._within(value, seconds, key_path, within, words=words, show=format_seconds)

    def _within(
        self,
        value: object,
        number: float,
        key_path: str,
        within: Bounds,
        *,
        words: tuple[str, str],
        show: Callable[[float], str],
    ) -> float | None:
        """``number`` (read from ``value``) if ``within`` its bounds."""
        low, high = within
        if low is not None and number < low:
            self.error(key_path, f"must be {words[0]} {show(low)}, got {shown(value)}")
            return None
        if high is not None and number > high:
            self.error(key_path, f"must be {words[1]} {show(high)}, got {shown(value)}")
            return None
        return number

    def string(self, value: object, key_path: str, *, most: int = MAX_NAME_LENGTH) -> str | None:
        """A non-empty text (a number given is taken as written), stripped."""
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.error(key_path, f"expected a string, got {kind(value)}")
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
            self.error(key_path, f"must be printable, got {shown(text)} (contains {bad!r})")
            return None
        return text

    def path(self, value: object, key_path: str) -> Path | None:
        """A path or glob, relative to the config file's folder."""
        text = self.string(value, key_path, most=MAX_PATH_LENGTH)
        if text is None:
            return None
        if "\x00" in text:
            self.error(key_path, "must not contain a NUL character")
            return None
        return self.base_dir / Path(text).expanduser()


def given(**values: object) -> dict[str, Any]:
    """The values that are not None: the keys given and valid, for a dataclass whose
    defaults stand for the rest."""
    return {key: value for key, value in values.items() if value is not None}
