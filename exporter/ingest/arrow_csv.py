"""Plain CSV bytes to a pandas DataFrame through pyarrow's multi-threaded reader.

Used by `exporter.ingest.parse` for the common chunk only: no quote character, no lone CR and
valid UTF-8 (the caller checks these); arrow itself checks every line's field count. The
frame it returns holds what ``pandas.read_csv`` with the exporter's missing-cell rule
(``keep_default_na=False``, missing = the empty cell and the model's ``na_values``)
would give the rest of the exporter, column by column:

* numbers: float64 / int64 / bool numpy columns; a number column with an empty cell is
  float64 with NaN (pandas' rule);
* text columns (``text``): strings, an empty cell or one of ``na_values`` missing; ``NA``,
  ``None``, ``null`` are text;
* ``categories``: pandas categoricals (one string per distinct value);
* the ``timestamp`` column: float epoch seconds when every value is
  ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (read from the bytes arrow already holds), else text
  for `exporter.ingest.timestamps.parse_timestamps`.

It returns None, and the caller uses pandas, whenever the two could differ: a value that
does not fit a forced type (a word in a numeric feature), a ``nan`` text that arrow
reads as a float NaN (pandas keeps it as text, an invalid value, not a missing one), a
line with the wrong field count, or a column arrow would read as a date or time (pandas
keeps those as text).
Those chunks are rare and get the row-by-row rejection logic they need.

Why arrow: it parses numbers about twice as fast per core as pandas' C parser, on every
core, and builds no Python object per text cell (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from exporter.ingest.timestamps import iso_z_seconds

_PLAIN_TYPES = (pa.types.is_floating, pa.types.is_integer, pa.types.is_boolean)


def read_plain_csv(
    data: bytes,
    names: list[str],
    *,
    usecols: Collection[str] | None,
    numeric: Collection[str],
    text: Collection[str],
    categories: Collection[str],
    timestamp: str | None,
    na_values: Collection[str] = (),
) -> pd.DataFrame | None:
    """The frame of ``data`` (complete lines, no header) or None (use pandas). Missing:
    the empty cell and the texts in ``na_values``, nothing else."""
    wanted = [name for name in names if usecols is None or name in usecols]
    types: dict[str, pa.DataType] = {}
    for name in wanted:
        if name in categories:
            types[name] = pa.dictionary(pa.int32(), pa.string())
        elif name in text or name == timestamp:
            types[name] = pa.string()
        elif name in numeric:
            types[name] = pa.float64()
    try:
        table = pacsv.read_csv(
            pa.py_buffer(data),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(quote_char=False),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                include_columns=wanted,
                null_values=["", *na_values],
                strings_can_be_null=True,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    table = table.unify_dictionaries()
    columns: dict[str, object] = {}
    for name in wanted:
        column = table.column(name)
        converted = _column(column, timestamp=name == timestamp)
        if converted is None:
            return None
        columns[name] = converted
    return pd.DataFrame(columns, copy=False)


def _column(column: pa.ChunkedArray, *, timestamp: bool) -> object | None:
    kind = column.type
    if pa.types.is_dictionary(kind):
        return _categorical(column)
    if pa.types.is_string(kind):
        seconds = _iso_z_column_seconds(column) if timestamp else None
        if seconds is not None:
            return seconds
        return pd.Series(pd.arrays.ArrowStringArray(column), dtype="str")
    if pa.types.is_null(kind):
        return np.full(len(column), np.nan)
    if any(test(kind) for test in _PLAIN_TYPES):
        return _plain(column)
    return None  # dates, times, timestamps: pandas keeps their text


def _categorical(column: pa.ChunkedArray) -> pd.Categorical:
    combined = column.combine_chunks()
    indices = combined.indices
    # fill_null's first call sets up arrow's compute kernels (5 ms); a column without
    # a missing value (the usual one) needs no call at all
    if indices.null_count:
        indices = pc.fill_null(indices, -1)
    codes = indices.to_numpy(zero_copy_only=False)
    categories = pd.Index(combined.dictionary.to_pylist(), dtype=object)
    return pd.Categorical.from_codes(codes, categories=categories)


def _plain(column: pa.ChunkedArray) -> object | None:
    """A number or bool column as pandas reads it; None where it would read it otherwise."""
    kind = column.type
    if column.null_count:
        if pa.types.is_boolean(kind):
            return column.to_pandas()  # object with NaN, as pandas reads it
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
    else:
        values = column.to_numpy()
    # arrow reads the text "nan" as a float NaN; pandas (without its NA tokens)
    # keeps it as text, which is an invalid value, not a missing one
    if pa.types.is_floating(kind) and np.count_nonzero(np.isnan(values)) != column.null_count:
        return None
    return values


def _iso_z_column_seconds(column: pa.ChunkedArray) -> np.ndarray | None:
    """Epoch seconds straight from the string bytes when every value is 27 bytes long."""
    if column.null_count:
        return None
    parts = []
    for chunk in column.chunks:
        if len(chunk) == 0:
            continue
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)
        offsets = offsets[chunk.offset : chunk.offset + len(chunk) + 1]
        if not (np.diff(offsets) == 27).all():
            return None
        body = np.frombuffer(chunk.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
        seconds = iso_z_seconds(body.reshape(len(chunk), 27))
        if seconds is None:
            return None
        parts.append(seconds)
    return np.concatenate(parts) if parts else np.zeros(0)
