"""Chunks of complete log lines into typed columns, vectorised, rejecting bad rows by reason.

The hot path builds no Python object per row for CSV: a chunk without quotes goes to
pyarrow's reader (`exporter.arrow_csv`), which checks every line's field count and
declines anything pandas would read differently; then pandas' C parser, after a comma
count; then the exact path, where line ends, quote state and field counts come from numpy
over the raw bytes and only the good lines are parsed. Only the columns the model reads
are converted. Slow paths (invalid UTF-8, a JSON line that does not parse) run only for
the chunk that needs them.

Rejection reasons (SPEC 6): ``parse`` (garbage, wrong column count, not a JSON object),
``encoding`` (invalid UTF-8), ``timestamp`` (missing or unparseable), ``schema`` (the
prediction, or an outcome's id/actual, is missing or of the wrong type; a header that
lacks a required column). ``too_long`` comes from the tailer, ``duplicate`` and ``late``
from the model state.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from exporter.arrow_csv import read_plain_csv
from exporter.timestamps import parse_timestamps

_NEWLINE, _QUOTE, _COMMA, _CR = 10, 34, 44, 13


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
    lines: int  # lines in the chunk, good and bad (blank lines included)
    rejected: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first why, for the log

    def reject(self, reason: str, count: int, example: str) -> None:
        if count <= 0:
            return
        self.rejected[reason] = self.rejected.get(reason, 0) + count
        self.examples.setdefault(reason, example)


def empty_rows(lines: int = 0) -> ParsedRows:
    return ParsedRows(pd.DataFrame(), np.zeros(0), lines)


# --- CSV -------------------------------------------------------------------


def parse_header(header: bytes) -> list[str]:
    """Column names; a repeated name gets ``.1``, ``.2``, ... as pandas gives it (the first
    one is the column the model reads)."""
    text = header.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r")
    names = [name.strip() for name in next(csv.reader([text]), [])]
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


def parse_csv(header: bytes, data: bytes, schema: RowSchema) -> ParsedRows:
    """Parse complete CSV lines (each ending in \\n) that follow ``header``."""
    columns = parse_header(header)
    lines = _count_byte(data, _NEWLINE)
    result = empty_rows(lines)
    if not data:
        return result
    missing = [c for c in _required_columns(schema) if c not in columns]
    if missing:
        result.reject(
            "schema",
            lines - _blank_line_count(data),
            f"header has no column {', '.join(repr(c) for c in missing)} (header: {columns})",
        )
        return result

    if b'"' not in data:
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
        )
        if frame is not None:
            return _validate(frame, schema, result)
        # Next: exactly (columns - 1) commas per line on average means every line has the
        # right field count, unless a long line offsets a short one; pandas raises on any
        # long line, and then the exact per-line check below runs.
        if _count_byte(data, _COMMA) == (len(columns) - 1) * lines:
            try:
                return _validate(_read_csv(data, columns, schema), schema, result)
            except (pd.errors.ParserError, UnicodeDecodeError):
                pass

    arr = np.frombuffer(data, dtype=np.uint8)
    good_bytes, bad = _split_rows(arr, len(columns))
    good_data = data if good_bytes is None else arr[good_bytes].tobytes()
    if bad:
        result.reject("parse", bad[0], f"expected {len(columns)} fields: {bad[1]!r}")
    if not good_data or good_data.isspace():
        return result
    try:
        good_data.decode("utf-8")
    except UnicodeDecodeError:
        good_data = _drop_undecodable_lines(good_data, result)
    frame = _read_csv(good_data, columns, schema)
    return _validate(frame, schema, result)


def _numeric_columns(schema: RowSchema) -> tuple[str, ...]:
    """Columns whose every valid value is a number: anything else rejects the row (the
    numeric required columns) or counts as invalid (numeric features), both of which
    the pandas path decides row by row."""
    return (*schema.numeric, *schema.numeric_features)


def _count_byte(data: bytes, byte: int) -> int:
    """``data.count(bytes([byte]))``, a few times faster on a chunk (SIMD compare)."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == byte))


def _read_csv(data: bytes, columns: list[str], schema: RowSchema) -> pd.DataFrame:
    text_columns = {name: "str" for name in schema.text if name in columns}
    text_columns |= {name: "category" for name in schema.categories if name in columns}
    wanted = None if schema.columns is None else [c for c in columns if c in schema.columns]
    return pd.read_csv(
        io.BytesIO(data),
        header=None,
        names=columns,
        usecols=wanted,
        dtype=text_columns or None,
        skip_blank_lines=True,
        encoding="utf-8",
        low_memory=False,
    )


def _split_rows(
    arr: np.ndarray, n_columns: int
) -> tuple[np.ndarray | None, tuple[int, str] | None]:
    """Find rows (newlines outside quotes) and their field counts.

    Returns a byte mask of the good rows (None when every row is good) and, if some rows
    have the wrong number of fields, their count and one example."""
    is_quote = arr == _QUOTE
    is_separator = arr == _COMMA
    if is_quote.any():
        outside = (np.cumsum(is_quote) & 1) == 0
        row_ends = np.flatnonzero((arr == _NEWLINE) & outside)
        is_separator &= outside
    else:
        row_ends = np.flatnonzero(arr == _NEWLINE)
    if len(row_ends) == 0 or row_ends[-1] != len(arr) - 1:
        # An unbalanced quote swallowed the last newline(s): the tail is one bad row.
        row_ends = np.append(row_ends, len(arr) - 1)
        unbalanced_tail = True
    else:
        unbalanced_tail = False
    starts = np.concatenate(([0], row_ends[:-1] + 1))
    # reduceat sums each row's separators without a chunk-sized int64 cumsum
    fields = np.add.reduceat(is_separator, starts, dtype=np.int32) + 1
    lengths = row_ends - starts  # without the newline
    blank = (lengths == 0) | ((lengths == 1) & (arr[np.maximum(row_ends - 1, 0)] == _CR))
    good = (fields == n_columns) | blank
    if unbalanced_tail:
        good[-1] = False
    n_bad = int((~good).sum())
    if n_bad == 0:
        return None, None
    first_bad = int(np.flatnonzero(~good)[0])
    example = arr[starts[first_bad] : min(row_ends[first_bad], starts[first_bad] + 120)]
    keep = np.repeat(good, lengths + 1)
    return keep, (n_bad, example.tobytes().decode("utf-8", errors="replace"))


def _drop_undecodable_lines(data: bytes, result: ParsedRows) -> bytes:
    """Slow path for a chunk with invalid UTF-8: drop just the lines that do not decode."""
    kept = []
    bad = 0
    example = ""
    for line in data.splitlines(keepends=True):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as err:
            bad += 1
            example = example or f"{err.reason} at byte {err.start}: {line[:80]!r}"
            continue
        kept.append(line)
    result.reject("encoding", bad, example)
    return b"".join(kept)


def _blank_line_count(data: bytes) -> int:
    return data.count(b"\n\n") + data.count(b"\n\r\n") + int(data.startswith((b"\n", b"\r\n")))


# --- JSON Lines ------------------------------------------------------------


def parse_jsonl(data: bytes, schema: RowSchema) -> ParsedRows:
    """Parse complete JSON Lines; a line that is not a JSON object is rejected alone."""
    lines = data.count(b"\n")
    result = empty_rows(lines)
    body = data.strip()
    if not body:
        return result
    records = _fast_json_records(body)
    if records is None:
        records = _json_records_one_by_one(data, result)
    if not records:
        return result
    frame = pd.DataFrame.from_records(records)
    for name in schema.text:
        if name in frame.columns:
            frame[name] = _as_text(frame[name])
    return _validate(frame, schema, result)


def _fast_json_records(body: bytes) -> list[dict] | None:
    try:
        records = json.loads(b"[" + body.replace(b"\n", b",") + b"]")
    except (ValueError, UnicodeDecodeError):
        return None
    if all(type(r) is dict for r in records):
        return records
    return None


def _json_records_one_by_one(data: bytes, result: ParsedRows) -> list[dict]:
    records = []
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except UnicodeDecodeError as err:
            result.reject("encoding", 1, f"{err.reason}: {line[:80]!r}")
            continue
        except ValueError as err:
            result.reject("parse", 1, f"not JSON ({err}): {line[:80]!r}")
            continue
        if type(record) is not dict:
            result.reject("parse", 1, f"not a JSON object: {line[:80]!r}")
            continue
        records.append(record)
    return records


def _as_text(column: pd.Series) -> pd.Series:
    """JSON ids and labels may be numbers; compare them as text (1 and "1" are one id)."""
    if is_numeric_dtype(column) and not column.isna().any():
        numbers = column.to_numpy()
        if np.issubdtype(numbers.dtype, np.integer) or np.all(np.mod(numbers, 1) == 0):
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
        result.reject("schema", n, f"no {schema.timestamp!r} field")
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
