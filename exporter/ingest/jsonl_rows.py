r"""JSON Lines into typed columns, each bad line rejected alone.

Each line is one JSON object, or it is rejected (``parse``): ``{..},{..}`` on one line is
not two rows. ``null`` or an absent key is missing. A timestamp must be text or a number
(``true``, a list or an object is ``timestamp``); a number too large for a float reads as
infinite (not finite: ``schema`` for a prediction, invalid for a feature). Invalid UTF-8
rejects the line (``encoding``), and so does a string with a lone surrogate escape
(``"\ud800"``). A BOM starting a line is ignored (a file's first line may have one).

The lines are parsed in one call when that provably splits them at line ends, else line
by line.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from exporter.ingest.line_scan import NEWLINE, count_byte, line_count
from exporter.ingest.row_checks import as_read, validate
from exporter.ingest.rows import ParsedRows, RowSchema, empty_rows, excerpt
from exporter.state.labels import number_label, number_labels


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
    frame = as_read(frame, schema)
    for name in schema.text:
        if name in frame.columns:
            frame[name] = _as_text(frame[name])
    return validate(frame, schema, result)


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
    lines = count_byte(data, NEWLINE)
    if (
        line_count(data) != lines  # blank lines
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
        record, reason, why = _json_record(raw)
        if record is None:
            result.reject(reason, 1, why)
        else:
            records.append(record)
    return records, result


def _json_record(raw: bytes) -> tuple[dict | None, str, str]:
    """The object one line holds, or None with the reason it is rejected and why."""
    try:
        line = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        return None, "encoding", f"{err.reason} at byte {err.start}: {excerpt(raw)}"
    try:
        record = _decode_json(line)
    except (ValueError, RecursionError) as err:
        why = "nested too deeply" if isinstance(err, RecursionError) else err
        return None, "parse", f"not JSON ({why}): {excerpt(raw)}"
    if type(record) is not dict:
        return None, "parse", f"not one JSON object: {excerpt(raw)}"
    if "\\" in line and _SURROGATE_ESCAPE.search(line) and _has_lone_surrogate(record):
        return None, "encoding", f"a lone surrogate escape is not text: {excerpt(raw)}"
    return record, "", ""


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


def _as_text(column: pd.Series) -> pd.Series:
    """JSON ids and labels may be numbers; compare them as text (1 and "1" are one id),
    a float as `number_label` writes it (``3.0`` -> ``3``)."""
    if is_numeric_dtype(column) and not column.isna().any():
        numbers = column.to_numpy()
        if np.issubdtype(numbers.dtype, np.integer):
            return pd.Series(numbers.astype(str), index=column.index)
        return pd.Series(number_labels(numbers), index=column.index)  # bools: "1", "0"
    return column.map(_text_of, na_action="ignore")


def _text_of(value: object) -> str:
    return number_label(value) if isinstance(value, float) else str(value)
