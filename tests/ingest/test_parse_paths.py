"""The fast paths read exactly what the general ones do, and what an adversarial tester found.

CSV: a plain chunk goes through pyarrow (`exporter.ingest.arrow_csv`), anything else through
pandas; timestamps in the ``...ffffffZ`` form are decoded from their bytes, anything else
by ``pd.to_datetime``. Each pair is compared on the same input.

The scenarios below are the cases an adversarial tester saw: a parser that raised (and
made the engine skip the chunk), lines miscounted, cells that meant something other than
what they say. Each asserts exact counts: one line, one verdict. The properties
over any input are in ``test_parse_properties.py``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from exporter.ingest.arrow_csv import read_plain_csv
from exporter.ingest.csv_rows import parse_csv
from exporter.ingest.jsonl_rows import parse_jsonl
from exporter.ingest.parse import parse_chunk_safely
from exporter.ingest.rows import ParsedRows, RowSchema
from exporter.ingest.timestamps import iso_z_seconds, parse_timestamps

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
    """pandas with the exporter's missing-cell rule: only the empty cell is missing."""
    return pd.read_csv(
        io.BytesIO(data),
        header=None,
        names=NAMES,
        usecols=sorted(SCHEMA.columns),
        dtype={"plan": "category"},
        keep_default_na=False,
        na_values=[""],
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
    assert plan_fast.tolist() == plan_slow.tolist()  # " team " and "NA" kept, "" missing
    assert "NA" in plan_fast.tolist()
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


# --- what the adversarial tester saw ----------------------------------------------

HEADER3 = b"timestamp,prediction,actual"
ROW3 = b"2024-06-01T00:00:00Z,0.5,1\n"
LOG_HEADER = b"timestamp,id,prediction,actual,age,note"  # "note": a column nothing reads
LOG_ROW = b"2024-06-01T00:00:00Z,r1,0.5,1,30,x\n"
BINARY = RowSchema(
    timestamp="timestamp",
    required=("prediction",),
    numeric=("prediction",),
    text=("id",),
    numeric_features=("age",),
    columns=frozenset({"timestamp", "id", "prediction", "actual", "age"}),
)
MULTICLASS = RowSchema(
    timestamp="timestamp",
    required=("prediction",),
    text=("prediction", "actual"),
    columns=frozenset({"timestamp", "prediction", "actual"}),
)
JSON_ROW = b'{"timestamp": "2024-06-01T00:00:00Z", "id": "r1", "prediction": 0.5}\n'


def _verdicts(rows: ParsedRows) -> tuple[int, int, dict[str, int]]:
    """(lines, accepted, rejected by reason), after checking one verdict per line."""
    assert rows.lines == len(rows.frame) + sum(rows.rejected.values())
    return rows.lines, len(rows.frame), rows.rejected


def test_a_lone_surrogate_escape_rejects_its_line_only() -> None:
    """JSON "\\ud800" is no text: that line is ``encoding``; it used to raise (chunk skipped)."""
    bad = b'{"timestamp": "2024-06-01T00:00:00Z", "prediction": 0.5, "x": "\\ud800"}\n'
    assert _verdicts(parse_jsonl(JSON_ROW + bad + JSON_ROW, BINARY)) == (3, 2, {"encoding": 1})


def test_a_401_digit_prediction_is_not_a_finite_number() -> None:
    """A JSON integer too large for a float is ``schema`` for a prediction; it used to raise."""
    bad = b'{"timestamp": "2024-06-01T00:00:00Z", "prediction": ' + b"9" * 401 + b"}\n"
    assert _verdicts(parse_jsonl(JSON_ROW + bad + JSON_ROW, BINARY)) == (3, 2, {"schema": 1})


def test_a_thousand_nested_brackets_are_one_parse_reject() -> None:
    """1,000 nested ``[`` exceed the JSON parser's depth: ``parse``; it used to raise."""
    bad = b"[" * 1000 + b"\n"
    assert _verdicts(parse_jsonl(JSON_ROW + bad + JSON_ROW, BINARY)) == (3, 2, {"parse": 1})


def test_a_long_then_a_short_line_with_an_unread_column() -> None:
    """One field too many, then one too few, in a log with a column the model does not
    read: two ``parse`` rejects, the good line counts (pandas raised ValueError)."""
    data = LOG_ROW.replace(b"\n", b",EXTRA\n") + LOG_ROW + LOG_ROW.rsplit(b",", 1)[0] + b"\n"
    assert _verdicts(parse_csv(LOG_HEADER, data, BINARY)) == (3, 1, {"parse": 2})


def test_a_quoted_field_running_to_the_chunk_end() -> None:
    """A quote that pandas would read as opening a field up to the chunk's end ("EOF inside
    string", raised: the source never advanced) rejects just its lines."""
    data = LOG_ROW + b'2024-06-01T00:00:00Z,r1,0.5,x"\n",30,x\n' + b'2024-06-01T00:00:00Z,"r1\n'
    assert _verdicts(parse_csv(LOG_HEADER, data, BINARY)) == (4, 1, {"parse": 3})


def test_a_lone_cr_in_the_header_does_not_fail_the_file() -> None:
    """A CR inside a header name made every chunk of the file raise, forever. In a column
    nothing reads it changes nothing; in a required one the rows are ``schema``."""
    header = b"timestamp,prediction,actual,no\rte"
    rows = parse_csv(header, b"2024-06-01T00:00:00Z,0.5,1,x\n" * 2, BINARY)
    assert _verdicts(rows) == (2, 2, {})
    broken = parse_csv(b"timestamp,predic\rtion,actual", ROW3 * 2, BINARY)
    assert _verdicts(broken) == (2, 0, {"schema": 2})


def test_an_unbalanced_quote_does_not_swallow_the_lines_after_it() -> None:
    """A quote never spans lines: the line with an odd quote is ``parse`` alone and the good
    lines after it count (they were neither accepted nor rejected)."""
    data = ROW3 + b'2024-06-01T00:00:00Z,"0.5,1\n' + ROW3 + ROW3
    assert _verdicts(parse_csv(HEADER3, data, BINARY)) == (4, 3, {"parse": 1})


def test_rows_with_two_and_four_fields_under_three_columns_are_rejected() -> None:
    """Field counts that balance over the chunk (2 + 4 = 2 x 3) are still wrong per line."""
    for data in (
        b"2024-06-01T00:00:00Z,0.5,1,9\n2024-06-01T00:00:00Z,0.5\n",
        b"2024-06-01T00:00:00Z,0.5\n2024-06-01T00:00:00Z,0.5,1,9\n",
    ):
        assert _verdicts(parse_csv(HEADER3, data + ROW3, BINARY)) == (3, 1, {"parse": 2})


def test_a_lone_cr_does_not_split_a_line() -> None:
    """A CR inside a line is a character, not a line end: one line, one verdict, in CSV
    (here 5 fields, ``parse``) and in JSON Lines (two objects on one line, ``parse``)."""
    csv_rows = parse_csv(HEADER3, ROW3.replace(b"\n", b"\r") + ROW3, BINARY)
    assert _verdicts(csv_rows) == (1, 0, {"parse": 1})
    json_rows = parse_jsonl(JSON_ROW.replace(b"\n", b"\r") + JSON_ROW, BINARY)
    assert _verdicts(json_rows) == (1, 0, {"parse": 1})
    quoted = parse_csv(HEADER3, b'2024-06-01T00:00:00Z,0.5,"a\rb"\n', MULTICLASS)
    assert _verdicts(quoted) == (1, 1, {})
    assert quoted.frame["actual"].tolist() == ["a\rb"]


def test_two_json_objects_on_one_line_are_one_parse_reject() -> None:
    """``{..},{..}`` on one line is not two predictions."""
    data = JSON_ROW + JSON_ROW.rstrip(b"\n") + b"," + JSON_ROW
    assert _verdicts(parse_jsonl(data, BINARY)) == (2, 1, {"parse": 1})


def test_blank_lines_are_not_lines() -> None:
    """Empty and CR-only lines are not counted at all (they were counted as lines but were
    neither accepted nor rejected)."""
    assert _verdicts(parse_csv(HEADER3, b"\n" + ROW3 + b"\n\r\n\n" + ROW3, BINARY)) == (2, 2, {})
    assert _verdicts(parse_jsonl(b"\r\n" + JSON_ROW + b"\n\n" + JSON_ROW, BINARY)) == (2, 2, {})


def test_multiclass_labels_none_and_na_are_labels() -> None:
    """``None`` and ``NA`` are class labels like any other (they were rejected as missing)."""
    data = b"2024-06-01T00:00:00Z,None,NA\n2024-06-01T00:00:00Z,NA,null\n"
    rows = parse_csv(HEADER3, data, MULTICLASS)
    assert _verdicts(rows) == (2, 2, {})
    assert rows.frame["prediction"].tolist() == ["None", "NA"]
    assert rows.frame["actual"].tolist() == ["NA", "null"]


def test_the_category_na_is_a_category_live_and_in_the_reference(tmp_path: Path) -> None:
    """A categorical value ``NA`` is a category in the log and in the reference CSV (it
    counted as missing and was dropped from the reference); an empty cell is missing."""
    header = b"timestamp,prediction,plan"
    schema = RowSchema(
        timestamp="timestamp",
        required=("prediction",),
        numeric=("prediction",),
        text=("plan",),
        categories=("plan",),
    )
    live = parse_csv(header, b"2024-06-01T00:00:00Z,0.5,NA\n2024-06-01T00:00:00Z,0.5,\n", schema)
    assert live.frame["plan"].astype(object).tolist()[0] == "NA"
    assert live.frame["plan"].isna().tolist() == [False, True]
    from exporter.stats.fit import fit_categorical  # noqa: PLC0415
    from exporter.stats.reference_csv import read_reference_csv  # noqa: PLC0415

    path = tmp_path / "reference.csv"
    path.write_text("plan,x\nNA,1\nbasic,2\nNA,3\n,4\n")
    reference = read_reference_csv(path, text=["plan"])
    assert fit_categorical(reference["plan"].to_numpy(dtype=object)).categories == ("NA", "basic")
    missing = read_reference_csv(path, text=["plan"], na_values=["NA"])
    assert fit_categorical(missing["plan"].to_numpy(dtype=object)).categories == ("basic",)


def test_text_in_a_numeric_column_is_text_not_missing() -> None:
    """``n/a`` in a numeric feature is an invalid value (the text stays), not a missing one;
    ``NA`` as a numeric prediction is ``schema``."""
    header = b"timestamp,prediction,actual,age"
    data = b"2024-06-01T00:00:00Z,0.5,1,n/a\n2024-06-01T00:00:00Z,NA,1,30\n"
    rows = parse_csv(header, data, BINARY)
    assert _verdicts(rows) == (2, 1, {"schema": 1})
    assert rows.frame["age"].tolist() == ["n/a"]


def test_csv_and_jsonl_read_the_same_values_alike() -> None:
    """``NA``/``None``/``null`` texts are labels in both formats; CSV's empty cell and
    JSON's ``null`` are missing in both (the prediction: ``schema``)."""
    texts = ["NA", "None", "null", "n/a", "NaN"]
    csv_data = b"".join(f"2024-06-01T00:00:00Z,{t},{t}\n".encode() for t in [*texts, ""])
    json_data = b"".join(
        json.dumps({"timestamp": "2024-06-01T00:00:00Z", "prediction": t, "actual": t}).encode()
        + b"\n"
        for t in [*texts, None]
    )
    csv_rows = parse_csv(HEADER3, csv_data, MULTICLASS)
    json_rows = parse_jsonl(json_data, MULTICLASS)
    assert _verdicts(csv_rows) == _verdicts(json_rows) == (6, 5, {"schema": 1})
    assert csv_rows.frame["prediction"].tolist() == json_rows.frame["prediction"].tolist() == texts


def test_na_values_from_the_config_are_missing() -> None:
    """The model's ``na_values`` are missing in CSV, besides the empty cell."""
    schema = RowSchema(
        timestamp="timestamp",
        required=("prediction",),
        text=("prediction", "actual"),
        na_values=("-",),
    )
    rows = parse_csv(HEADER3, b"2024-06-01T00:00:00Z,a,-\n2024-06-01T00:00:00Z,-,b\n", schema)
    assert _verdicts(rows) == (2, 1, {"schema": 1})
    assert rows.frame["actual"].isna().tolist() == [True]


def test_invalid_utf8_in_a_column_nothing_reads_rejects_the_line() -> None:
    """Invalid UTF-8 anywhere in a line is ``encoding``, even in a column nothing reads."""
    data = LOG_ROW + LOG_ROW.replace(b",x\n", b",\xff\xfe\n")
    assert _verdicts(parse_csv(LOG_HEADER, data, BINARY)) == (2, 1, {"encoding": 1})


def test_a_json_true_timestamp_is_no_timestamp() -> None:
    """``true`` (or a list, an object) as a timestamp is ``timestamp``, not epoch second 1."""
    lines = [
        b'{"timestamp": true, "prediction": 0.5}\n',
        b'{"timestamp": [1717236000], "prediction": 0.5}\n',
        b'{"timestamp": {"s": 1717236000}, "prediction": 0.5}\n',
        b'{"timestamp": 1717236000, "prediction": 0.5}\n',
    ]
    rows = parse_jsonl(b"".join(lines), BINARY)
    assert _verdicts(rows) == (4, 1, {"timestamp": 3})
    assert rows.timestamps.tolist() == [1717236000.0]
    only_true = parse_jsonl(lines[0] * 2, BINARY)
    assert _verdicts(only_true) == (2, 0, {"timestamp": 2})


def test_a_json_integer_past_python_digit_limit_is_infinite_not_a_parse_error() -> None:
    """Found by the adversarial tester: 4,301 digits in a key nothing reads rejected the
    line (`parse`); a number too large for a float is infinite wherever it is."""
    schema = RowSchema(
        timestamp="timestamp",
        required=("prediction",),
        numeric=("prediction",),
        numeric_features=("x",),
    )
    head = b'{"timestamp":"2024-06-01T12:00:00Z",'
    unused = head + b'"prediction":0.8,"x":1,"unused":' + b"9" * 4301 + b"}\n"
    in_prediction = head + b'"prediction":' + b"9" * 10_000 + b"}\n"
    in_feature = head + b'"prediction":0.5,"x":-' + b"9" * 10_000 + b"}\n"
    result = parse_chunk_safely("jsonl", None, unused + in_prediction + in_feature, schema)
    assert (result.lines, len(result.frame), result.rejected) == (3, 2, {"schema": 1})
    assert result.frame["x"].tolist()[1] == float("-inf")


def test_a_header_that_is_not_this_log_is_not_echoed() -> None:
    """A source pointed at a file that is not a prediction log (/etc/shadow's first line
    was once logged verbatim): its rows are rejected, its first line never shown."""
    secret = b"root:$6$saltsalt$hashhashhash:20228:0:99999:7:::"
    schema = RowSchema(timestamp="timestamp", required=("prediction",))
    result = parse_csv(secret, b"daemon:*:20228:0:99999:7:::\n", schema)
    assert result.rejected == {"schema": 1}
    assert b"root" not in repr(result.examples).encode()
    assert "hash" not in repr(result.examples)
