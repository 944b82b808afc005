"""Log timestamps to float epoch seconds, vectorised.

ISO 8601 with any offset (no zone = UTC) or epoch seconds, given as text or as a number;
anything else (a JSON ``true``, a list, an object, a number too large for a float) is no
timestamp (NaN). The format most loggers write,
``YYYY-MM-DDTHH:MM:SS.ffffffZ``, is decoded from its bytes in a few numpy passes
(`iso_z_seconds`); anything else goes through ``pd.to_datetime``. Both give the same
floats (nanoseconds / 1e9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

_EPOCH = pd.Timestamp(0, tz="UTC")
# The largest int a log value may be as a float: near 2**1024 float() overflows instead of
# rounding, so larger ones are +-inf where a number is read and no time where a timestamp is
FLOAT_MAX_INT = 2**1023


def parse_timestamps(column: pd.Series) -> np.ndarray:
    """ISO 8601 (any offset; no zone = UTC) or epoch seconds, to float epoch seconds; NaN
    where a value is neither (booleans, lists, objects included)."""
    if pd.api.types.is_bool_dtype(column):
        return np.full(len(column), np.nan)  # true is not 1970-01-01T00:00:01Z
    if is_numeric_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    if column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) != "string":
        return _mixed_seconds(column)
    seconds = _utc_microsecond_seconds(column)
    if seconds is not None:
        return seconds
    # ISO text is the common case and pandas parses it fast; epoch seconds written as text
    # come out as NaT and are read as numbers instead.
    parsed = pd.to_datetime(column.astype("object"), format="ISO8601", utc=True, errors="coerce")
    seconds = _seconds_since_epoch(parsed)
    retry = np.isnan(seconds) & column.notna().to_numpy()
    if retry.any():
        numbers = pd.to_numeric(column[retry], errors="coerce")
        seconds[retry] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    return seconds


def _mixed_seconds(column: pd.Series) -> np.ndarray:
    """A column of mixed values (JSON): numbers are epoch seconds, text is parsed as text,
    anything else (bool is an int to Python, not a time to us) is NaN."""
    values = column.to_numpy(dtype=object)
    seconds = np.fromiter((_epoch_seconds(v) for v in values), dtype=np.float64, count=len(values))
    text = np.fromiter((isinstance(v, str) for v in values), dtype=bool, count=len(values))
    if text.any():
        seconds[text] = parse_timestamps(pd.Series(values[text], dtype=object))
    return seconds


def _epoch_seconds(value: object) -> float:
    if isinstance(value, (bool, np.bool_)):
        return np.nan
    if isinstance(value, (int, np.integer)):
        return float(value) if abs(value) < FLOAT_MAX_INT else np.nan
    if isinstance(value, (float, np.floating)):
        return float(value)
    return np.nan


def _seconds_since_epoch(parsed: pd.Series) -> np.ndarray:
    try:
        return np.array(
            ((parsed - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        )
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        # A date outside pandas' nanosecond range (before 1678, after 2261) parses at a
        # coarser unit but cannot be subtracted at nanoseconds: count microseconds.
        naive = parsed.dt.tz_localize(None).to_numpy().astype("datetime64[us]")
        seconds = naive.astype(np.int64) / 1e6
        seconds[np.isnat(naive)] = np.nan
        return seconds


# "YYYY-MM-DDTHH:MM:SS.ffffffZ": its bytes with every digit 0; the largest offset from
# that each byte may have (tens of month <= 1, day <= 3, hour <= 2, minute/second <= 5);
# the weights that make date key, hour, time of day (s) and microseconds of the offsets
_ISO_Z_TEMPLATE = np.frombuffer(b"0000-00-00T00:00:00.000000Z", dtype=np.uint8)
_ISO_Z_LIMIT = np.where(ord("0") == _ISO_Z_TEMPLATE, 9, 0).astype(np.uint8)
_ISO_Z_LIMIT[[5, 8, 11, 14, 17]] = [1, 3, 2, 5, 5]
_ISO_Z_FIELD_WEIGHTS = np.zeros((27, 4), dtype=np.float32)
_ISO_Z_FIELD_WEIGHTS[0:4, 0] = [1000 * 512, 100 * 512, 10 * 512, 512]  # year
_ISO_Z_FIELD_WEIGHTS[5:7, 0] = [10 * 32, 32]  # month
_ISO_Z_FIELD_WEIGHTS[8:10, 0] = [10, 1]  # day
_ISO_Z_FIELD_WEIGHTS[11:13, 1] = [10, 1]  # hour
_ISO_Z_FIELD_WEIGHTS[[11, 12, 14, 15, 17, 18], 2] = [36000, 3600, 600, 60, 10, 1]
_ISO_Z_FIELD_WEIGHTS[20:26, 3] = [100000, 10000, 1000, 100, 10, 1]
_DATE_TABLE_MAX = 1 << 16
_INVALID_DAY = np.iinfo(np.int64).min
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _utc_microsecond_seconds(column: pd.Series) -> np.ndarray | None:
    """Epoch seconds of a column whose every value is ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (what
    most loggers write), the same floats as the ``pd.to_datetime`` path gives (nanoseconds
    / 1e9) in a few vectorised passes; None (use that path) if any value is not exactly
    that, or not a valid date and time from 1678 to 2261."""
    n = len(column)
    if n == 0:
        return None
    try:
        raw = np.asarray(column.to_numpy(dtype=object), dtype="S28")
    except (UnicodeError, ValueError, TypeError):
        return None
    chars = raw.view(np.uint8).reshape(n, 28)
    if chars[:, 27].any():  # longer than 27 characters
        return None
    return iso_z_seconds(chars[:, :27])


def iso_z_seconds(chars: np.ndarray) -> np.ndarray | None:
    """`_utc_microsecond_seconds` of the values as an (n, 27) uint8 matrix of their bytes."""
    n = len(chars)
    if n == 0 or chars.shape[1:] != (27,):
        return None
    # One subtraction checks every byte: 0 at a separator, within its digit's range at a
    # digit (uint8 wraps a byte below "0" round to > 9); one float32 product (exact below
    # 2**24) turns the digits into date key, hour, time of day and microseconds.
    offsets = chars - _ISO_Z_TEMPLATE
    if (offsets > _ISO_Z_LIMIT).any():
        return None
    fields = (offsets.astype(np.float32) @ _ISO_Z_FIELD_WEIGHTS).astype(np.int64)
    date_key, hour, time_of_day, micros = fields.T
    if (hour > 23).any():
        return None
    # Days per distinct date through a table over the chunk's key range (a chunk spans a
    # few dates); invalid dates (Feb 30, month 13) are -1 there.
    low, high = int(date_key.min()), int(date_key.max())
    if high - low <= _DATE_TABLE_MAX:
        days = _days_of_date_keys(np.arange(low, high + 1))[date_key - low]
    else:
        days = _days_of_date_keys(date_key)
    if (days == _INVALID_DAY).any():
        return None
    nanos = ((days * 86400 + time_of_day) * 1_000_000 + micros) * 1000
    return nanos.astype(np.float64) / 1e9  # as pandas divides timedelta64[ns] by 1 s


def _days_of_date_keys(keys: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of ``year * 512 + month * 32 + day`` keys; `_INVALID_DAY` for
    an impossible date or a year outside 1678-2261 (pandas' nanosecond path raises near
    its limits, so those are left to it)."""
    year, month, day = keys // 512, keys // 32 % 16, keys % 32
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    valid = (year >= 1678) & (year <= 2261) & (month >= 1) & (month <= 12) & (day >= 1)
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
    valid &= day <= month_days
    # days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    shifted = year - (month <= 2)
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return np.where(valid, era * 146097 + day_of_era - 719468, _INVALID_DAY)
