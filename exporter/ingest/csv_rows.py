"""CSV lines into typed columns, vectorised, each bad line rejected alone.

RFC 4180 within one line. A quote opens a field only at the field's start, a quote
inside a quoted field is doubled, and a quoted field ends at a quote followed by a comma
or the line's end; a quoted field never spans lines. A line that breaks this (an
unbalanced or misplaced quote) or whose field count differs from the header's is
rejected alone (``parse``), and the lines after it are read normally. Only an empty cell
(``,,`` or ``""``) is missing, plus the texts in the model's ``na_values``: ``NA``,
``None``, ``null``, ``NaN``, ``n/a`` are ordinary text (a numeric feature holding one is
an invalid value, a numeric prediction holding one is ``schema``). Invalid UTF-8 anywhere
in a line rejects the line (``encoding``), also in a column nothing reads. A BOM in a
data line is a character of the first cell (the header's is dropped).

The hot path builds no Python object per row: a chunk without quotes or lone ``\\r``
that is valid UTF-8 goes to pyarrow's reader (`exporter.ingest.arrow_csv`), which checks
every line's field count and declines anything pandas would read differently. Otherwise
the exact path decides every line from numpy over the raw bytes (line ends, quote
placement, field counts; UTF-8 only for lines with non-ASCII bytes) and pandas' C parser
reads just the good lines (and must make one row of each). Only the columns the model
reads are converted.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from exporter.ingest.arrow_csv import read_plain_csv
from exporter.ingest.line_scan import BOM, COMMA, QUOTE, is_utf8, line_bounds, line_count
from exporter.ingest.row_checks import as_read, validate
from exporter.ingest.rows import MiscountedError, ParsedRows, RowSchema, empty_rows, excerpt


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
            value, i = _quoted_value(text, i + 1)
        comma = text.find(",", i)
        end = n if comma == -1 else comma
        fields.append(value + text[i:end])
        if comma == -1:
            return fields
        i = comma + 1


def _quoted_value(text: str, i: int) -> tuple[str, int]:
    """The value of the quoted field whose text starts at ``i`` (after its opening quote)
    and where the text after its closing quote starts; unterminated, it runs to the end."""
    value = ""
    while True:
        close = text.find('"', i)
        if close == -1:
            return value + text[i:], len(text)
        value += text[i:close]
        if not text.startswith('"', close + 1):
            return value, close + 1
        value, i = value + '"', close + 2


def parse_csv(header: bytes, data: bytes, schema: RowSchema) -> ParsedRows:
    """Parse complete CSV lines (each ending in \\n) that follow ``header``."""
    columns = parse_header(header)
    if not data:
        return empty_rows()
    if not data.endswith(b"\n"):
        data += b"\n"
    missing = [c for c in schema.required_columns() if c not in columns]
    if missing:
        lines = line_count(data)
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
            numeric=schema.numeric_columns(),
            text=schema.text,
            categories=schema.categories,
            timestamp=schema.timestamp,
            na_values=schema.na_values,
        )
        if frame is not None:
            # arrow skips blank lines (\n or \r\n only) and checked every other one
            return validate(frame, schema, empty_rows(len(frame)))
    return _parse_csv_lines(data, columns, schema)


def _is_plain(data: bytes) -> bool:
    """No quote, no CR but in line endings, valid UTF-8: every reader splits such a
    chunk into the same lines and fields. Not starting with a BOM either: arrow would
    drop it (as at a file's start); in a data line it is a character of the first cell."""
    if b'"' in data or data.startswith(BOM):
        return False
    if b"\r" in data and data.count(b"\r") != data.count(b"\r\n"):
        return False
    return is_utf8(data)


def _parse_csv_lines(data: bytes, columns: list[str], schema: RowSchema) -> ParsedRows:
    """The exact path: every line's verdict from its bytes, then pandas on the good ones."""
    arr = np.frombuffer(data, dtype=np.uint8)
    starts, stops, ends = line_bounds(arr)
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
    if good_data.startswith(BOM):
        good_data = b"\n" + good_data  # pandas drops a BOM at the start; a blank line first
    frame = _read_csv(good_data, columns, schema)
    if len(frame) != n_good:
        raise MiscountedError(f"pandas read {len(frame)} rows from {n_good} lines")
    return validate(as_read(frame, schema), schema, result)


def _malformed_csv_lines(
    arr: np.ndarray, starts: np.ndarray, stops: np.ndarray, ends: np.ndarray, n_columns: int
) -> np.ndarray:
    """Lines whose quoting is not RFC 4180 within the line, or whose field count is not
    ``n_columns``. Vectorised over the positions of the quotes and commas; a line's
    commas and quotes are counted by searching for the line ends among them."""
    n_lines = len(starts)
    commas = np.flatnonzero(arr == COMMA)
    fields = np.diff(np.searchsorted(commas, ends), prepend=0) + 1
    quotes = np.flatnonzero(arr == QUOTE)
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
    opens_ok = (quotes == starts[quote_line]) | (arr[quotes - 1] == COMMA) | follows_quote
    closes_ok = (quotes + 1 == stops[quote_line]) | (arr[quotes + 1] == COMMA) | precedes_quote
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
    if is_utf8(data):
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
            example = example or f"{err.reason} at byte {err.start}: {excerpt(raw)}"
    result.reject("encoding", int(np.count_nonzero(bad)), example)
    return bad


def _line_text(data: bytes, start: int, stop: int) -> str:
    return repr(data[start : min(stop, start + 120)].decode("utf-8", errors="replace"))


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
