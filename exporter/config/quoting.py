"""How a config problem shows what it is about: key paths, bad values and bounds, each on
one line and cut to ``MAX_QUOTED`` characters, built without ever rendering a value in
full (a YAML bomb or a huge integer is never expanded into a message)."""

from __future__ import annotations

import difflib
import reprlib
from collections.abc import Callable

from exporter.config.limits import MAX_QUOTED

_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = _REPR.maxset = 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_QUOTED + 2


def cut(text: str, render: Callable[[str], str] = str) -> str:
    """``render`` of the first MAX_QUOTED characters of ``text``, then ``...`` if it is longer."""
    shown = render(text[:MAX_QUOTED])
    return shown + "..." if len(text) > MAX_QUOTED else shown


def printable(text: str) -> str:
    """``text`` cut, with control and other unprintable characters escaped as in a Python
    literal."""
    return cut(text, lambda part: part if part.isprintable() else repr(part)[1:-1])


def join(prefix: str, key: str) -> str:
    """A key path: ``prefix.key``, the key shown as by ``printable``."""
    key = printable(key)
    return f"{prefix}.{key}" if prefix else key


def shown(value: object) -> str:
    """repr(value) cut, built without rendering the whole value (reprlib stops at a few
    items per level and a few levels)."""
    if isinstance(value, str):
        return cut(value, repr)
    if isinstance(value, int) and value.bit_length() > 4 * MAX_QUOTED:
        return f"<an integer of {value.bit_length()} bits>"  # repr() refuses 4,300 digits
    return cut(repr(value) if isinstance(value, int | float) else _REPR.repr(value))


def kind(value: object) -> str:
    """What a value of the wrong kind is: ``nothing``, ``a list``, ``int 5``."""
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {shown(value)}"


def quote(value: object) -> str:
    """A bad value: ``"text"`` for a string, else its kind."""
    if not isinstance(value, str):
        return kind(value)
    return f'"{printable(value)}"'


def bound(number: float) -> str:
    """A numeric bound: ``67,108,864``, ``0.5``."""
    return f"{int(number):,}" if float(number).is_integer() else f"{number:g}"


def did_you_mean(word: str, options: tuple[str, ...]) -> str:
    """`` (did you mean "x"?)`` for the option closest to a misspelt ``word``, else nothing."""
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f' (did you mean "{matches[0]}"?)' if matches else ""
