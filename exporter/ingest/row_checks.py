"""The verdicts every log format shares, on a frame of rows already split into columns.

`as_read` makes the columns read as numbers hold what their cells say; `validate` rejects
the rows without a parseable timestamp (``timestamp``) or without a required value of the
right type (``schema``) and keeps the rest.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from exporter.ingest.rows import ParsedRows, RowSchema
from exporter.ingest.timestamps import FLOAT_MAX_INT, parse_timestamps

# object columns that may hold a bool or an int too large for a float
_MIXED_KINDS = ("integer", "mixed-integer", "mixed-integer-float", "boolean", "mixed")


def as_read(frame: pd.DataFrame, schema: RowSchema) -> pd.DataFrame:
    """The values of the columns read as numbers as their cells say, whatever else shares
    the chunk: ``true`` / ``false`` are text there (pandas reads a column of only those
    as booleans, i.e. 1 and 0), and an integer too large for a float (401 digits; pandas
    keeps it as a Python int and raises on it later) is +-inf. Other columns keep their
    booleans (labels may be ``true``); text columns keep their digits."""
    numeric = set(schema.numeric_columns())
    for name in frame.columns:
        if name in schema.text or (schema.columns is not None and name not in schema.columns):
            continue
        column = frame[name]
        if name in numeric and pd.api.types.is_bool_dtype(column):
            frame[name] = column.map(str)
        elif column.dtype == object and infer_dtype(column, skipna=True) in _MIXED_KINDS:
            read = _read_as_number if name in numeric else _read_as_value
            frame[name] = column.map(read, na_action="ignore")
    return frame


def _read_as_value(value: object) -> object:
    if type(value) is int and abs(value) >= FLOAT_MAX_INT:
        return math.inf if value > 0 else -math.inf
    return value


def _read_as_number(value: object) -> object:
    return str(value) if isinstance(value, (bool, np.bool_)) else _read_as_value(value)


def validate(frame: pd.DataFrame, schema: RowSchema, result: ParsedRows) -> ParsedRows:
    """``result`` with the good rows of ``frame`` and their timestamps; the others are
    rejected in it, each for the first reason that applies."""
    good = np.ones(len(frame), dtype=bool)
    timestamps = _timestamps(frame, schema, result, good)
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


def _timestamps(
    frame: pd.DataFrame, schema: RowSchema, result: ParsedRows, good: np.ndarray
) -> np.ndarray:
    """Each row's epoch seconds (NaN where absent); where the timestamp is required, a row
    without one is rejected in ``result`` and cleared in ``good``."""
    n = len(frame)
    if schema.timestamp is None:
        return np.full(n, np.nan)
    if schema.timestamp not in frame.columns:
        if schema.timestamp_required:
            result.reject("timestamp", n, f"no {schema.timestamp!r} field")
            good[:] = False
        return np.full(n, np.nan)
    timestamps = parse_timestamps(frame[schema.timestamp])
    if schema.timestamp_required:
        bad_ts = ~np.isfinite(timestamps)
        if bad_ts.any():
            first = frame[schema.timestamp].to_numpy()[np.flatnonzero(bad_ts)[0]]
            result.reject("timestamp", int(bad_ts.sum()), f"unparseable timestamp {first!r}")
            good &= ~bad_ts
    return timestamps
