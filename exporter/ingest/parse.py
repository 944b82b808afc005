r"""Chunks of complete log lines into typed columns, vectorised, rejecting bad rows by reason.

One line, one verdict (SPEC 8). A line is the bytes up to and including ``\n`` (bytes
after the last one count as a line of their own); a ``\r`` right before the ``\n`` is
part of the line ending, a ``\r`` anywhere else is an ordinary character and ends
nothing. A *blank* line (nothing, or only ``\r``, before the ``\n``) is not a line at
all: it is not counted in ``ParsedRows.lines`` and is neither accepted nor rejected.
Every other line is a row of the frame or is rejected for exactly one reason, so for any
bytes ``lines == len(frame) + sum(rejected.values())``, and a chunk gives what its lines
give one by one.

CSV (SPEC 3): RFC 4180 within one line. A quote opens a field only at the field's start,
a quote inside a quoted field is doubled, and a quoted field ends at a quote followed by
a comma or the line's end; a quoted field never spans lines. A line that breaks this (an
unbalanced or misplaced quote) or whose field count differs from the header's is
rejected alone (``parse``), and the lines after it are read normally. Only an empty cell
(``,,`` or ``""``) is missing, plus the texts in the model's ``na_values``: ``NA``,
``None``, ``null``, ``NaN``, ``n/a`` are ordinary text (a numeric feature holding one is
an invalid value, a numeric prediction holding one is ``schema``).

JSON Lines: each line is one JSON object, or it is rejected (``parse``): ``{..},{..}`` on
one line is not two rows. ``null`` or an absent key is missing. A timestamp must be text
or a number (``true``, a list or an object is ``timestamp``); a number too large for a
float reads as infinite (not finite: ``schema`` for a prediction, invalid for a feature).

Invalid UTF-8 anywhere in a line rejects the line (``encoding``), also in a column nothing
reads; so does a JSON string with a lone surrogate escape (``"\ud800"``). A BOM starting
a JSON line is ignored (a file's first line may have one); in a CSV data line it is a
character of the first cell (the header's is dropped).

The hot path builds no Python object per row for CSV: a chunk without quotes or lone
``\r`` that is valid UTF-8 goes to pyarrow's reader (`exporter.ingest.arrow_csv`), which checks
every line's field count and declines anything pandas would read differently. Otherwise
the exact path decides every line from numpy over the raw bytes (line ends, quote
placement, field counts; UTF-8 only for lines with non-ASCII bytes) and pandas' C parser
reads just the good lines (and must make one row of each). Only the columns the model
reads are converted. JSON Lines are parsed in one call when that provably splits them at
line ends, else line by line.

`parse_chunk_safely` is what the engine calls. It checks each chunk's verdicts against
its own count of the lines, and should `parse_csv` or `parse_jsonl` raise on some input
(or miscount), it decides that chunk again in halves down to single lines; a line that
still fails is rejected (``parse``). Nothing skips a chunk.

Rejection reasons (SPEC 6): ``parse`` (garbage, wrong field count, bad quoting, not one
JSON object), ``encoding`` (invalid UTF-8, lone surrogate), ``timestamp`` (missing or
unparseable), ``schema`` (the prediction, or an outcome's id/actual, is missing or of the
wrong type; a header that lacks a required column). ``too_long`` comes from the tailer,
``duplicate`` and ``late`` from the model state.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_numeric_dtype

from exporter.ingest.arrow_csv import read_plain_csv
from exporter.ingest.timestamps import parse_timestamps

_NEWLINE, _QUOTE, _COMMA, _CR = 10, 34, 44, 13
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class RowSchema:
    """What a source's rows must carry. Column names are the configured ones."""

    timestamp: str | None  # None: the timestamp is optional (outcome rows)
    required: tuple[str, ...]  # columns that must be present and non-empty
    numeric: tuple[str, ...] = ()  # required columns that must be finite numbers
    text: tuple[str, ...] = ()  # columns read as text, never as numbers (ids, labels, categories)
    # text columns with few distinct values (categorical features), read as pandas
    # categoricals: the CSV parser then keeps one string per distinct value, not per row
    categories: tuple[str, ...] = ()
    numeric_features: tuple[str, ...] = ()  # read as floats when every value is a number
    timestamp_required: bool = True
    # The columns anything downstream reads (None: all of them). Parsing a column costs
    # about as much as using it, and unique text (request ids) costs the most.
    columns: frozenset[str] | None = None
    # CSV cell texts that mean "missing" besides the empty cell (config ``na_values``)
    na_values: tuple[str, ...] = ()


@dataclass
class ParsedRows:
    frame: pd.DataFrame  # the good rows; columns as named in the log
    timestamps: np.ndarray  # float64 epoch seconds per good row (NaN where optional and absent)
    lines: int  # lines in the chunk, good and bad (blank lines not counted)
    rejected: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first why, for the log

    def reject(self, reason: str, count: int, example: str) -> None:
        if count <= 0:
            return
        self.rejected[reason] = self.rejected.get(reason, 0) + count
        self.examples.setdefault(reason, example)


def empty_rows(lines: int = 0) -> ParsedRows:
    return ParsedRows(pd.DataFrame(), np.zeros(0), lines)


# --- any format --------------------------------------------------------------


def parse_chunk_safely(
    fmt: str, header: bytes | None, data: bytes, schema: RowSchema
) -> ParsedRows:
    """`parse_csv` (with the file's ``header``) or `parse_jsonl` of ``data``; never raises.

    Should the parser raise on some input, or give a count that breaks "one line, one
    verdict", the chunk is decided again in halves down to single lines; a line that still
    fails is rejected (``parse``). The good lines around it count as usual."""

    def parse(part: bytes) -> ParsedRows:
        if fmt == "csv":
            return parse_csv(header or b"", part, schema)
        return parse_jsonl(part, schema)

    try:
        return _checked(parse, data)
    except Exception:  # anything: a bug or a library's limit must not stop the source
        pass
    return _parse_in_halves(parse, _physical_lines(data))


def _checked(parse: Callable[[bytes], ParsedRows], data: bytes) -> ParsedRows:
    rows = parse(data)
    accepted = len(rows.frame)
    if (
        rows.lines != _line_count(data)
        or rows.lines != accepted + sum(rows.rejected.values())
        or len(rows.timestamps) != accepted
    ):
        raise _Miscounted(f"{rows.lines} lines, {accepted} rows, rejected {rows.rejected}")
    return rows


class _Miscounted(RuntimeError):
    """A parse path gave other than one verdict per line (a bug: the caller recovers)."""


def _physical_lines(data: bytes) -> list[bytes]:
    """``data`` split after each ``\\n`` (a lone ``\\r`` ends nothing)."""
    lines = data.split(b"\n")
    last = lines.pop()
    out = [line + b"\n" for line in lines]
    if last:
        out.append(last)
    return out


def _parse_in_halves(parse: Callable[[bytes], ParsedRows], lines: list[bytes]) -> ParsedRows:
    """The verdicts on ``lines`` (which did not parse together): each half parsed on its
    own, and a half that fails too is split again; a single line that fails is rejected."""
    if not lines:
        return empty_rows()
    if len(lines) == 1:
        try:
            return _checked(parse, lines[0])
        except Exception as err:  # the last resort: this line alone fails
            result = empty_rows(_line_count(lines[0]))
            why = f"unreadable ({type(err).__name__})"
            result.reject("parse", result.lines, f"{why}: {lines[0][:80]!r}")
            return result
    middle = len(lines) // 2
    parts = []
    for half in (lines[:middle], lines[middle:]):
        try:
            parts.append(_checked(parse, b"".join(half)))
        except Exception:  # narrowed down in the next halving
            parts.append(_parse_in_halves(parse, half))
    return _combined(parts)


def _combined(parts: list[ParsedRows]) -> ParsedRows:
    frames = [part.frame for part in parts if len(part.frame)]
    if len(frames) > 1:
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = frames[0] if frames else pd.DataFrame()
    timestamps = np.concatenate([part.timestamps for part in parts if len(part.frame)] or [[]])
    result = ParsedRows(frame, timestamps.astype(np.float64), sum(part.lines for part in parts))
    for part in parts:
        for reason, count in part.rejected.items():
            result.reject(reason, count, part.examples.get(reason, ""))
    return result


def _line_bounds(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each line's first byte, the end of its content (before ``\\r\\n`` or ``\\n``) and
    the position of its ``\\n``; ``arr`` ends in ``\\n``."""
    ends = np.flatnonzero(arr == _NEWLINE)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    crlf = (ends > starts) & (arr[ends - 1] == _CR)
    return starts, ends - crlf, ends


def _count_byte(data: bytes, byte: int) -> int:
    """``data.count(bytes([byte]))``, a few times faster on a chunk (SIMD compare)."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == byte))


def _line_count(data: bytes) -> int:
    """Lines in ``data``, blank ones not counted (numpy: a few times faster on a chunk
    than searching the bytes for blank lines)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(arr == _NEWLINE)
    lengths = np.diff(ends, prepend=-1)  # with the \n
    blank = (lengths == 1) | ((lengths == 2) & (arr[ends - 1] == _CR))
    tail = data[ends[-1] + 1 :] if len(ends) else data  # a last line without \n
    return len(ends) - int(np.count_nonzero(blank)) + int(tail not in (b"", b"\r"))


# --- CSV -------------------------------------------------------------------


def parse_header(header: bytes) -> list[str]:
    """Column names; a repeated name gets ``.1``, ``.2``, ... as pandas gives it (the first
    one is the column the model reads). Whatever the header holds (a BOM, a lone CR,
    unbalanced quotes, invalid UTF-8), this returns names: rows that then lack a
    required column are rejected (``schema``)."""
    text = header.decode("utf-8", errors="replace").lstrip("\ufeff").removesuffix("\r")
    names = [name.strip() for name in _header_fields(text)]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        candidate = name
        while candidate in seen:
            seen[name] += 1
            candidate = f"{name}.{seen[name]}"
        seen.setdefault(candidate, 0)
        unique.append(candidate)
    return unique


def _header_fields(text: str) -> list[str]:
    """RFC 4180 fields of one line, read leniently (a header is read whatever it holds):
    an unterminated quoted field runs to the end, a quote elsewhere is a character."""
    fields = []
    i, n = 0, len(text)
    while True:
        value = ""
        if i < n and text[i] == '"':
            i += 1
            while True:
                close = text.find('"', i)
                if close == -1:
                    value, i = value + text[i:], n
                    break
                value += text[i:close]
                if text.startswith('"', close + 1):
                    value, i = value + '"', close + 2
                    continue
                i = close + 1
                break
        comma = text.find(",", i)
        end = n if comma == -1 else comma
        fields.append(value + text[i:end])
        if comma == -1:
            return fields
        i = comma + 1


def parse_csv(header: bytes, data: bytes, schema: RowSchema) -> ParsedRows:
    """Parse complete CSV lines (each ending in \\n) that follow ``header``."""
    columns = parse_header(header)
    if not data:
        return empty_rows()
    if not data.endswith(b"\n"):
        data += b"\n"
    missing = [c for c in _required_columns(schema) if c not in columns]
    if missing:
        lines = _line_count(data)
        result = empty_rows(lines)
        result.reject(
            "schema",
            lines,
            # the first line of a file that is not this log (a wrong path, /etc/shadow)
            # is not echoed: only how many fields it has
            f"header has no column {', '.join(repr(c) for c in missing)} "
            f"(the first line has {len(columns)} field(s); not shown)",
        )
        return result
    if _is_plain(data):
        # Fast path: pyarrow checks every line's field count itself and declines (None)
        # any chunk it could read differently from pandas.
        frame = read_plain_csv(
            data,
            columns,
            usecols=schema.columns,
            numeric=_numeric_columns(schema),
            text=schema.text,
            categories=schema.categories,
            timestamp=schema.timestamp,
            na_values=schema.na_values,
        )
        if frame is not None:
            # arrow skips blank lines (\n or \r\n only) and checked every other one
            return _validate(frame, schema, empty_rows(len(frame)))
    return _parse_csv_lines(data, columns, schema)


def _is_plain(data: bytes) -> bool:
    """No quote, no CR but in line endings, valid UTF-8: every reader splits such a
    chunk into the same lines and fields. Not starting with a BOM either: arrow would
    drop it (as at a file's start); in a data line it is a character of the first cell."""
    if b'"' in data or data.startswith(_BOM):
        return False
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return False
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _parse_csv_lines(data: bytes, columns: list[str], schema: RowSchema) -> ParsedRows:
    """The exact path: every line's verdict from its bytes, then pandas on the good ones."""
    arr = np.frombuffer(data, dtype=np.uint8)
    starts, stops, ends = _line_bounds(arr)
    blank = stops == starts
    result = empty_rows(len(starts) - int(np.count_nonzero(blank)))
    malformed = _malformed_csv_lines(arr, starts, stops, ends, len(columns)) & ~blank
    if malformed.any():
        first = int(np.flatnonzero(malformed)[0])
        result.reject(
            "parse",
            int(np.count_nonzero(malformed)),
            f"not {len(columns)} RFC 4180 fields: {_line_text(data, starts[first], stops[first])}",
        )
    undecodable = _undecodable_lines(data, starts, ends, ~blank & ~malformed, result)
    good = ~(blank | malformed | undecodable)
    n_good = int(np.count_nonzero(good))
    if n_good == 0:
        return result
    everything = n_good == len(starts)
    good_data = data if everything else arr[np.repeat(good, ends - starts + 1)].tobytes()
    if b"\r" in good_data:
        # every \r\n ends a line; any other \r is a character (pandas is told only \n ends)
        good_data = good_data.replace(b"\r\n", b"\n")
    if good_data.startswith(_BOM):
        good_data = b"\n" + good_data  # pandas drops a BOM at the start; a blank line first
    frame = _read_csv(good_data, columns, schema)
    if len(frame) != n_good:
        raise _Miscounted(f"pandas read {len(frame)} rows from {n_good} lines")
    return _validate(_as_read(frame, schema), schema, result)


def _malformed_csv_lines(
    arr: np.ndarray, starts: np.ndarray, stops: np.ndarray, ends: np.ndarray, n_columns: int
) -> np.ndarray:
    """Lines whose quoting is not RFC 4180 within the line, or whose field count is not
    ``n_columns``. Vectorised over the positions of the quotes and commas; a line's
    commas and quotes are counted by searching for the line ends among them."""
    n_lines = len(starts)
    commas = np.flatnonzero(arr == _COMMA)
    fields = np.diff(np.searchsorted(commas, ends), prepend=0) + 1
    quotes = np.flatnonzero(arr == _QUOTE)
    if len(quotes) == 0:
        return fields != n_columns
    per_line = np.diff(np.searchsorted(quotes, ends), prepend=0)
    bad = (per_line & 1).astype(bool)
    quote_line = np.repeat(np.arange(n_lines), per_line)
    rank = np.arange(len(quotes)) - (np.cumsum(per_line) - per_line)[quote_line]
    # The k-th quote of a line opens a field when k is even: it must start the field
    # (line start, after a comma) or follow the closing quote of a doubled pair. An odd
    # one closes: a comma, the line's end or the second quote of a pair must follow.
    follows_quote = np.zeros(len(quotes), dtype=bool)
    follows_quote[1:] = quotes[1:] - 1 == quotes[:-1]
    precedes_quote = np.zeros(len(quotes), dtype=bool)
    precedes_quote[:-1] = follows_quote[1:]
    opens = (rank & 1) == 0
    opens_ok = (quotes == starts[quote_line]) | (arr[quotes - 1] == _COMMA) | follows_quote
    closes_ok = (quotes + 1 == stops[quote_line]) | (arr[quotes + 1] == _COMMA) | precedes_quote
    bad[quote_line[np.where(opens, ~opens_ok, ~closes_ok)]] = True
    # commas between an opening quote and the next quote are inside a quoted field (on a
    # line with an odd quote count the last pair is bogus, but that line is bad anyway)
    opening = np.flatnonzero(opens[:-1])
    commas_before = np.searchsorted(commas, quotes)
    inside = commas_before[opening + 1] - commas_before[opening]
    fields -= np.bincount(quote_line[opening], weights=inside, minlength=n_lines).astype(np.int64)
    return bad | (fields != n_columns)


def _undecodable_lines(
    data: bytes,
    starts: np.ndarray,
    ends: np.ndarray,
    candidates: np.ndarray,
    result: ParsedRows,
) -> np.ndarray:
    """Of the ``candidates`` lines, those that are not valid UTF-8 (rejected: ``encoding``)."""
    bad = np.zeros(len(starts), dtype=bool)
    if data.isascii():
        return bad
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return bad
    example = ""
    arr = np.frombuffer(data, dtype=np.uint8)
    for line in np.unique(np.searchsorted(ends, np.flatnonzero(arr >= 0x80))):
        if not candidates[line]:
            continue
        raw = data[starts[line] : ends[line]]
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as err:
            bad[line] = True
            example = example or f"{err.reason} at byte {err.start}: {raw[:80]!r}"
    result.reject("encoding", int(np.count_nonzero(bad)), example)
    return bad


def _line_text(data: bytes, start: int, stop: int) -> str:
    return repr(data[start : min(stop, start + 120)].decode("utf-8", errors="replace"))


def _numeric_columns(schema: RowSchema) -> tuple[str, ...]:
    """Columns whose every valid value is a number: anything else rejects the row (the
    numeric required columns) or counts as invalid (numeric features), both of which
    the pandas path decides row by row."""
    return (*schema.numeric, *schema.numeric_features)


def _read_csv(data: bytes, columns: list[str], schema: RowSchema) -> pd.DataFrame:
    """pandas' C parser on lines already checked (field counts, quoting, UTF-8, no blank
    or \\r-ended line): only \\n ends a line, only the empty cell and ``na_values`` are
    missing. The timestamp is text, as arrow gives it: each value is read for itself
    (``2020`` is a year whether or not the other lines hold epoch seconds)."""
    # Categories too are read as text, then made categorical: pandas' own "category" type
    # would make "007" the number 7 and "3.0" the number 3 (arrow keeps their text).
    strings = (*schema.text, *schema.categories, schema.timestamp)
    text_columns = {name: "str" for name in strings if name in columns}
    wanted = None if schema.columns is None else [c for c in columns if c in schema.columns]
    frame = pd.read_csv(
        io.BytesIO(data),
        header=None,
        names=columns,
        usecols=wanted,
        dtype=text_columns or None,
        index_col=False,
        keep_default_na=False,
        na_values=["", *schema.na_values],
        skip_blank_lines=True,
        lineterminator="\n",
        encoding="utf-8",
        low_memory=False,
    )
    for name in schema.categories:
        if name in frame.columns:
            frame[name] = frame[name].astype("category")
    return frame


# --- JSON Lines ------------------------------------------------------------


def _json_int(text: str) -> int | float:
    """An integer literal; past Python's 4,300-digit conversion limit, the infinity it is
    as a float (a number too large for a float is infinite, whatever column it is in)."""
    if len(text) <= 4000:
        return int(text)
    return -math.inf if text.startswith("-") else math.inf


_decode_json = json.JSONDecoder(parse_int=_json_int).decode
# "\ud800".."\udfff" escapes: a surrogate, which is text only as half of a valid pair
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# where one line could hold two objects ("{..},{..}"; a "}" "{" inside a string too)
_OBJECT_AFTER_OBJECT = re.compile(r"\}[ \t\r]*,[ \t\r]*\{")


def parse_jsonl(data: bytes, schema: RowSchema) -> ParsedRows:
    """Parse complete JSON Lines; a line that is not one JSON object is rejected alone."""
    if data and not data.endswith(b"\n"):
        data += b"\n"
    records = _json_records_at_once(data)
    if records is not None:
        result = empty_rows(len(records))
    else:
        records, result = _json_records_one_by_one(data)
    if not records:
        return result
    frame = pd.DataFrame.from_records(records)
    if len(frame) != len(records):  # every record is {}: no columns, and no rows
        frame = pd.DataFrame(index=pd.RangeIndex(len(records)))
    frame = _as_read(frame, schema)
    for name in schema.text:
        if name in frame.columns:
            frame[name] = _as_text(frame[name])
    return _validate(frame, schema, result)


def _json_records_at_once(data: bytes) -> list[dict] | None:
    """All lines' objects from one ``json`` call, or None (decide line by line).

    The lines are joined with commas into one array. That can read a value across a line
    end (a string or list split over two lines), but it then yields fewer elements than
    lines, unless some line holds two objects: a ``}`` then a comma then a ``{`` in one
    line, which sends the chunk line by line too. So when every element is an object and
    there are as many as lines, each line was exactly one object."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = _count_byte(data, _NEWLINE)
    if (
        _line_count(data) != lines  # blank lines
        or "\ufeff" in text
        or ("\\" in text and _SURROGATE_ESCAPE.search(text))
        or _OBJECT_AFTER_OBJECT.search(text)
    ):
        return None
    try:
        records = _decode_json("[" + text[:-1].replace("\n", ",") + "]")
    except (ValueError, RecursionError):
        return None
    if len(records) != lines or not all(type(record) is dict for record in records):
        return None
    return records


def _json_records_one_by_one(data: bytes) -> tuple[list[dict], ParsedRows]:
    records = []
    result = empty_rows()
    for raw in data.split(b"\n")[:-1]:
        if raw in (b"", b"\r"):
            continue  # blank: no line
        result.lines += 1
        try:
            line = raw.decode("utf-8").removeprefix("\ufeff")
        except UnicodeDecodeError as err:
            result.reject("encoding", 1, f"{err.reason} at byte {err.start}: {raw[:80]!r}")
            continue
        try:
            record = _decode_json(line)
        except (ValueError, RecursionError) as err:
            why = "nested too deeply" if isinstance(err, RecursionError) else err
            result.reject("parse", 1, f"not JSON ({why}): {raw[:80]!r}")
            continue
        if type(record) is not dict:
            result.reject("parse", 1, f"not one JSON object: {raw[:80]!r}")
            continue
        if "\\" in line and _SURROGATE_ESCAPE.search(line) and _has_lone_surrogate(record):
            result.reject("encoding", 1, f"a lone surrogate escape is not text: {raw[:80]!r}")
            continue
        records.append(record)
    return records, result


def _has_lone_surrogate(record: dict) -> bool:
    stack: list[object] = [record]
    while stack:
        value = stack.pop()
        if type(value) is str:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif type(value) is dict:
            stack.extend(value)
            stack.extend(value.values())
        elif type(value) is list:
            stack.extend(value)
    return False


def _as_read(frame: pd.DataFrame, schema: RowSchema) -> pd.DataFrame:
    """The values of the columns read as numbers as their cells say, whatever else shares
    the chunk: ``true`` / ``false`` are text there (pandas reads a column of only those
    as booleans, i.e. 1 and 0), and an integer too large for a float (401 digits; pandas
    keeps it as a Python int and raises on it later) is +-inf. Other columns keep their
    booleans (labels may be ``true``); text columns keep their digits."""
    numeric = set(_numeric_columns(schema))
    for name in frame.columns:
        if name in schema.text or (schema.columns is not None and name not in schema.columns):
            continue
        column = frame[name]
        if name in numeric and pd.api.types.is_bool_dtype(column):
            frame[name] = column.map(str)
        elif column.dtype == object:
            kinds = ("integer", "mixed-integer", "mixed-integer-float", "boolean", "mixed")
            if infer_dtype(column, skipna=True) in kinds:
                read = _read_as_number if name in numeric else _read_as_value
                frame[name] = column.map(read, na_action="ignore")
    return frame


def _read_as_value(value: object) -> object:
    if type(value) is int and abs(value) >= _FLOAT_MAX_INT:
        return math.inf if value > 0 else -math.inf
    return value


def _read_as_number(value: object) -> object:
    return str(value) if isinstance(value, (bool, np.bool_)) else _read_as_value(value)


# Larger ints read as +-inf (near 2**1024 float() overflows instead of rounding)
_FLOAT_MAX_INT = 2**1023


def _as_text(column: pd.Series) -> pd.Series:
    """JSON ids and labels may be numbers; compare them as text (1 and "1" are one id)."""
    if is_numeric_dtype(column) and not column.isna().any():
        numbers = column.to_numpy()
        if np.issubdtype(numbers.dtype, np.integer):
            return pd.Series(numbers.astype(str), index=column.index)
        if np.all(np.abs(numbers) < 2**53) and np.all(np.mod(numbers, 1) == 0):
            return pd.Series(numbers.astype(np.int64).astype(str), index=column.index)
    return column.map(_text_of, na_action="ignore")


def _text_of(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --- shared checks ---------------------------------------------------------


def _required_columns(schema: RowSchema) -> list[str]:
    names = list(schema.required)
    if schema.timestamp is not None and schema.timestamp_required:
        names.insert(0, schema.timestamp)
    return names


def _validate(frame: pd.DataFrame, schema: RowSchema, result: ParsedRows) -> ParsedRows:
    n = len(frame)
    good = np.ones(n, dtype=bool)
    timestamps = np.full(n, np.nan)
    if schema.timestamp is not None and schema.timestamp in frame.columns:
        timestamps = parse_timestamps(frame[schema.timestamp])
        if schema.timestamp_required:
            bad_ts = ~np.isfinite(timestamps)
            if bad_ts.any():
                first = frame[schema.timestamp].to_numpy()[np.flatnonzero(bad_ts)[0]]
                result.reject("timestamp", int(bad_ts.sum()), f"unparseable timestamp {first!r}")
                good &= ~bad_ts
    elif schema.timestamp is not None and schema.timestamp_required:
        result.reject("timestamp", n, f"no {schema.timestamp!r} field")
        good[:] = False
    for name in schema.required:
        if name not in frame.columns:
            result.reject("schema", int(good.sum()), f"no {name!r} field")
            good[:] = False
            continue
        column = frame[name]
        if name in schema.numeric:
            numbers = pd.to_numeric(column, errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
            ok = np.isfinite(numbers)
            why = "is not a finite number"
        else:
            ok = (column.notna() & (column.astype(str).str.strip() != "")).to_numpy()
            why = "is empty"
        bad = good & ~ok
        if bad.any():
            value = column.to_numpy()[np.flatnonzero(bad)[0]]
            result.reject("schema", int(bad.sum()), f"{name} {value!r} {why}")
            good &= ok
    if not good.all():
        frame = frame.loc[good].reset_index(drop=True)
        timestamps = timestamps[good]
    result.frame = frame
    result.timestamps = timestamps
    return result
