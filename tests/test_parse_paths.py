"""The fast paths read exactly what the general ones do.

CSV: a plain chunk goes through pyarrow (`exporter.arrow_csv`), anything else through
pandas; timestamps in the ``...ffffffZ`` form are decoded from their bytes, anything else
by ``pd.to_datetime``. Each pair is compared on the same input.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from exporter.arrow_csv import read_plain_csv
from exporter.parse import RowSchema, parse_csv
from exporter.timestamps import iso_z_seconds, parse_timestamps

NAMES = ["timestamp", "id", "age", "plan", "prediction", "actual", "note"]
SCHEMA = RowSchema(
    timestamp="timestamp",
    required=("prediction",),
    numeric=("prediction",),
    text=("id", "plan"),
    categories=("plan",),
    numeric_features=("age",),
    columns=frozenset({"timestamp", "age", "plan", "prediction", "actual"}),
)


def _plain_rows(rng: np.random.Generator, n: int) -> bytes:
    stamps = pd.to_datetime(1.7e9 + np.sort(rng.uniform(0, 7200, n)), unit="s", utc=True)
    ages = np.round(rng.normal(40, 10, n), 3).astype(str)
    ages[rng.random(n) < 0.05] = ""  # missing
    plans = rng.choice(["basic", "pro", " team ", "NA", ""], n)
    lines = [
        f"{t},r{i},{a},{p},{s:.4f},{y},free text {i}"
        for i, (t, a, p, s, y) in enumerate(
            zip(
                stamps.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                ages,
                plans,
                rng.random(n),
                rng.integers(0, 2, n),
                strict=True,
            )
        )
    ]
    return ("\n".join(lines) + "\n").encode()


def _arrow(data: bytes) -> pd.DataFrame | None:
    return read_plain_csv(
        data,
        NAMES,
        usecols=SCHEMA.columns,
        numeric=("prediction", "age"),
        text=SCHEMA.text,
        categories=SCHEMA.categories,
        timestamp="timestamp",
    )


def _pandas(data: bytes) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(data),
        header=None,
        names=NAMES,
        usecols=sorted(SCHEMA.columns),
        dtype={"plan": "category"},
    )


def test_arrow_reads_a_plain_chunk_as_pandas_does() -> None:
    data = _plain_rows(np.random.default_rng(1), 3000)
    fast, slow = _arrow(data), _pandas(data)
    assert fast is not None
    assert sorted(fast.columns) == sorted(slow.columns)
    np.testing.assert_array_equal(fast["age"].to_numpy(), slow["age"].to_numpy())
    np.testing.assert_array_equal(fast["prediction"].to_numpy(), slow["prediction"].to_numpy())
    np.testing.assert_array_equal(fast["actual"].to_numpy(), slow["actual"].to_numpy())
    assert fast["actual"].dtype == slow["actual"].dtype == np.int64
    plan_fast = fast["plan"].astype(object).where(fast["plan"].notna(), None)
    plan_slow = slow["plan"].astype(object).where(slow["plan"].notna(), None)
    assert plan_fast.tolist() == plan_slow.tolist()  # " team " kept, "NA" and "" missing
    np.testing.assert_array_equal(fast["timestamp"].to_numpy(), parse_timestamps(slow["timestamp"]))


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"2024-06-01T00:00:00.000000Z,r1,abc,pro,0.5,1,x\n", "a word in a numeric feature"),
        (b"2024-06-01T00:00:00.000000Z,r1,31,pr\xff,0.5,1,x\n", "invalid UTF-8 in text"),
        (b"2024-06-01T00:00:00.000000Z,r1,31,pro,0.5,2024-06-01,x\n", "a date column"),
        (b"2024-06-01T00:00:00.000000Z,r1,31,pro,0.5,1\n", "a line one field short"),
        (b"2024-06-01T00:00:00.000000Z,r1,31,pro,0.5,1,x,y\n", "a line one field long"),
    ],
)
def test_arrow_declines_what_pandas_would_read_differently(line: bytes, why: str) -> None:
    assert _arrow(line) is None, why


def test_parse_csv_gives_the_same_rows_either_way() -> None:
    """A chunk with one bad numeric value takes the pandas path: same good rows, and
    that value counted invalid by the monitor later (here: NaN in a float column)."""
    header = (",".join(NAMES) + "\n").encode()
    data = _plain_rows(np.random.default_rng(2), 500)
    fast = parse_csv(header, data, SCHEMA)
    lines = data.splitlines(keepends=True)
    broken = lines[7].split(b",")
    broken[2] = b"abc"
    lines[7] = b",".join(broken)
    slow = parse_csv(header, b"".join(lines), SCHEMA)
    assert len(fast.frame) == len(slow.frame) == 500
    np.testing.assert_array_equal(fast.timestamps, slow.timestamps)
    assert slow.frame["age"].iloc[7] == "abc"


def test_iso_z_bytes_equal_pandas_over_the_whole_supported_range() -> None:
    rng = np.random.default_rng(3)
    seconds = rng.uniform(-9.2e9, 9.2e9, 20_000)  # 1678 .. 2261
    stamps = pd.to_datetime(seconds, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    chars = np.frombuffer("".join(stamps).encode(), dtype=np.uint8).reshape(-1, 27)
    expected = pd.to_datetime(pd.Series(stamps), format="ISO8601", utc=True)
    expected_seconds = ((expected - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)).to_numpy()
    np.testing.assert_array_equal(iso_z_seconds(chars), expected_seconds)
    one_hour = chars[np.argsort(seconds)][:2000]  # a narrow range: the per-date table path
    np.testing.assert_array_equal(
        iso_z_seconds(one_hour), expected_seconds[np.argsort(seconds)][:2000]
    )


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-02-30T00:00:00.000000Z",
        "2023-02-29T00:00:00.000000Z",
        "2024-13-01T00:00:00.000000Z",
        "2024-00-10T00:00:00.000000Z",
        "2024-01-00T00:00:00.000000Z",
        "2024-01-01T24:00:00.000000Z",
        "2024-01-01T23:60:00.000000Z",
        "1500-01-01T00:00:00.000000Z",
        "2024-01-01 00:00:00.000000Z",
    ],
)
def test_iso_z_bytes_leave_anything_else_to_pandas(stamp: str) -> None:
    chars = np.frombuffer(stamp.encode(), dtype=np.uint8).reshape(1, 27)
    assert iso_z_seconds(chars) is None
    expected = pd.to_datetime(pd.Series([stamp]), format="ISO8601", utc=True, errors="coerce")
    got = parse_timestamps(pd.Series([stamp], dtype=object))
    if expected.isna().all():
        assert np.isnan(got).all()
    else:  # a valid date outside the byte path's range (it used to raise here)
        assert got[0] == expected[0].timestamp()


def test_leap_day_is_a_date() -> None:
    chars = np.frombuffer(b"2024-02-29T23:59:59.999999Z", dtype=np.uint8).reshape(1, 27)
    assert iso_z_seconds(chars)[0] == pd.Timestamp("2024-02-29T23:59:59.999999Z").value / 1e9


def test_a_repeated_header_name_reads_as_pandas_names_it() -> None:
    """The first "age" is the feature; the second becomes "age.1" (it used to raise)."""
    header = b"timestamp,age,age,prediction,actual\n"
    rows = parse_csv(header, b"2024-06-01T00:00:00Z,31,30,0.5,1\n", SCHEMA)
    assert not rows.rejected
    assert rows.frame["age"].tolist() == [31.0]
