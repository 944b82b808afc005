"""Log timestamps to float epoch seconds, vectorised.

ISO 8601 with any offset (no zone = UTC) or epoch seconds. The format most loggers write,
``YYYY-MM-DDTHH:MM:SS.ffffffZ``, is decoded from its bytes in a few numpy passes
(`iso_z_seconds`); anything else goes through ``pd.to_datetime``. Both give the same
floats (nanoseconds / 1e9).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

_EPOCH = pd.Timestamp(0, tz="UTC")


def parse_timestamps(column: pd.Series) -> np.ndarray:
    """ISO 8601 (any offset; no zone = UTC) or epoch seconds, to float epoch seconds."""
    if is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    seconds = _utc_microsecond_seconds(column)
    if seconds is not None:
        return seconds
    # ISO text is the common case and pandas parses it fast; epoch seconds written as text
    # come out as NaT and are read as numbers instead.
    parsed = pd.to_datetime(column.astype("object"), format="ISO8601", utc=True, errors="coerce")
    seconds = np.array(
        ((parsed - _EPOCH) / pd.Timedelta(seconds=1)).to_numpy(dtype=np.float64, na_value=np.nan)
    )
    retry = np.isnan(seconds) & column.notna().to_numpy()
    if retry.any():
        numbers = pd.to_numeric(column[retry], errors="coerce")
        seconds[retry] = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    return seconds


# "YYYY-MM-DDTHH:MM:SS.ffffffZ": where its separators and digits are
_ISO_Z_SEPARATORS = {4: b"-", 7: b"-", 10: b"T", 13: b":", 16: b":", 19: b".", 26: b"Z"}
_ISO_Z_DIGITS = [i for i in range(26) if i not in _ISO_Z_SEPARATORS]
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
    for position, separator in _ISO_Z_SEPARATORS.items():
        if not (chars[:, position] == separator[0]).all():
            return None
    digits = chars[:, _ISO_Z_DIGITS].astype(np.int64) - 48
    if ((digits < 0) | (digits > 9)).any():
        return None

    def number(first: int, count: int) -> np.ndarray:
        value = digits[:, first]
        for index in range(first + 1, first + count):
            value = value * 10 + digits[:, index]
        return value

    year, month, day = number(0, 4), number(4, 2), number(6, 2)
    hour, minute, second, micros = number(8, 2), number(10, 2), number(12, 2), number(14, 6)
    # pandas' path works in nanoseconds: leave the years near its limits to it (it raises)
    if (year < 1678).any() or (year > 2261).any():
        return None
    if (month < 1).any() or (month > 12).any() or (day < 1).any():
        return None
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    if (day > _DAYS_IN_MONTH[month] + (leap & (month == 2))).any():
        return None
    if (hour > 23).any() or (minute > 59).any() or (second > 59).any():
        return None
    # days from 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    shifted = year - (month <= 2)
    era = shifted // 400
    year_of_era = shifted - era * 400
    day_of_year = (153 * (month + np.where(month > 2, -3, 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    seconds = days * 86400 + hour * 3600 + minute * 60 + second
    nanos = (seconds * 1_000_000 + micros) * 1000
    return nanos.astype(np.float64) / 1e9  # as pandas divides timedelta64[ns] by 1 s
