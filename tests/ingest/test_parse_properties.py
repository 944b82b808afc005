"""One line, one verdict, for any bytes.

Properties of `exporter.ingest.parse` and the CSV and JSON Lines parsers under it:
arbitrary bytes, and chunks of valid lines mixed with mutated ones (truncated; a quote,
NUL, CR, BOM, invalid UTF-8, a 400-digit number or deep nesting inserted; a field added
or dropped; a value swapped for an NA-like text or a non-scalar). For every chunk:

* ``lines == accepted + rejected``, and ``lines`` is the number of non-blank lines;
* nothing escapes `parse_chunk_safely`, and the format's parser itself does not raise;
* every valid line counts (is in the frame), whatever bad line comes before it;
* the verdicts do not depend on where the chunk boundaries fall;
* a plain CSV chunk (no quote, no lone CR) reads the same through pyarrow as through
  the exact path (pandas on the lines found good);
* should a parser still raise or miscount on some line, `parse_chunk_safely` loses that
  line only (``parse``), never the chunk.

Bounded (a few hundred examples each, small chunks) so that the file runs in seconds.
"""

from __future__ import annotations

import json
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import exporter.ingest.parse
from exporter.ingest.csv_rows import parse_csv
from exporter.ingest.jsonl_rows import parse_jsonl
from exporter.ingest.parse import parse_chunk_safely
from exporter.ingest.rows import ParsedRows, RowSchema

pytestmark = pytest.mark.slow  # starts real processes or runs for seconds

PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

COLUMNS = ("timestamp", "id", "prediction", "actual", "age", "plan", "note")
HEADER = ",".join(COLUMNS).encode()
SCHEMA = RowSchema(
    timestamp="timestamp",
    required=("prediction",),
    numeric=("prediction",),
    text=("id", "plan"),
    categories=("plan",),
    numeric_features=("age",),
    # "note" is read by nothing
    columns=frozenset({"timestamp", "id", "prediction", "actual", "age", "plan"}),
)
OUTCOMES = RowSchema(
    timestamp="timestamp",
    required=("id", "actual"),
    text=("id",),
    timestamp_required=False,
    columns=frozenset({"timestamp", "id", "actual"}),
)
MULTICLASS = RowSchema(  # every column read (no feature list), a configured NA text
    timestamp="timestamp",
    required=("prediction",),
    text=("id", "prediction", "actual"),
    na_values=("-",),
)
SCHEMAS = (SCHEMA, OUTCOMES, MULTICLASS)

NA_LIKE = ["", "NA", "N/A", "n/a", "None", "null", "NULL", "NaN", "nan", "-nan", "inf", "#N/A"]
INSERTS = [
    b'"',
    b'""',
    b"\x00",
    b"\r",
    b"\xef\xbb\xbf",  # BOM
    b"\xff",
    b"\xc3",  # a truncated 2-byte sequence
    b"\xed\xa0\x80",  # a UTF-8-encoded surrogate
    b"9" * 401,
    b"-" + b"9" * 450,
    b"[" * 1000,
    b"{" * 600,
    b",",
    b"\\",
    b'\\ud800"',
    b"},{",
    b"true",
    b"\t",
]


# --- strategies ------------------------------------------------------------------

seconds = st.integers(1_600_000_000, 1_800_000_000)


@st.composite
def timestamps(draw: st.DrawFn) -> str | int:
    stamp = pd.Timestamp(draw(seconds), unit="s", tz="UTC")
    return draw(
        st.sampled_from(
            [
                stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                stamp.strftime("%Y-%m-%d %H:%M"),
                stamp.tz_convert("Europe/Paris").isoformat(),
                int(stamp.timestamp()),
            ]
        )
    )


texts = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n"),
    max_size=10,
)
cell_texts = st.one_of(texts, st.sampled_from(NA_LIKE), st.sampled_from([" team ", "a,b", 'q"']))


def csv_cell(value: object) -> str:
    """RFC 4180: quoted when it holds a comma, a quote or a CR."""
    text = str(value)
    if any(c in text for c in ',"\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


@st.composite
def csv_lines(draw: st.DrawFn, row_id: str) -> bytes:
    """A valid line: accepted, whatever its feature values."""
    cells = [
        draw(timestamps()),
        row_id,
        draw(st.floats(0, 1, allow_nan=False)),
        draw(st.sampled_from(["0", "1", "", "NA"])),
        draw(st.one_of(st.floats(-1e6, 1e6, allow_nan=False).map(str), cell_texts)),
        draw(cell_texts),
        draw(cell_texts),
    ]
    line = ",".join(csv_cell(c) for c in cells)
    return line.encode() + draw(st.sampled_from([b"\n", b"\r\n"]))


@st.composite
def json_lines(draw: st.DrawFn, row_id: str) -> bytes:
    record = {
        "timestamp": draw(timestamps()),
        "id": row_id,
        "prediction": draw(st.floats(0, 1, allow_nan=False)),
        "actual": draw(st.sampled_from([0, 1, None, "NA"])),
        "age": draw(st.one_of(st.floats(-1e6, 1e6), st.none(), cell_texts)),
        "plan": draw(st.one_of(st.none(), cell_texts)),
        "note": draw(st.one_of(cell_texts, st.lists(st.integers(), max_size=3))),
    }
    keys = draw(st.permutations(list(record)))
    text = json.dumps({key: record[key] for key in keys}, ensure_ascii=draw(st.booleans()))
    return text.encode() + draw(st.sampled_from([b"\n", b"\r\n"]))


@st.composite
def mutated(draw: st.DrawFn, line: bytes, fmt: str) -> bytes:
    """A valid line broken in one way (it may happen to stay valid)."""
    ending = b"\r\n" if line.endswith(b"\r\n") else b"\n"
    body = line.removesuffix(ending)
    at = draw(st.integers(0, len(body)))
    kind = draw(st.sampled_from(["truncate", "insert", "bytes", "fields", "value"]))
    if kind == "truncate":
        body = body[:at]
    elif kind == "insert":
        body = body[:at] + draw(st.sampled_from(INSERTS)) + body[at:]
    elif kind == "bytes":
        body = body[:at] + draw(st.binary(min_size=1, max_size=6)) + body[at:]
    elif kind == "fields" and fmt == "csv":
        body = draw(st.sampled_from([body + b",extra", body.rsplit(b",", 1)[0], body + b",,"]))
    elif kind == "fields":
        body = draw(st.sampled_from([body + b"," + body, body + b" " + body, b"[" + body + b"]"]))
    else:
        value = draw(
            st.sampled_from(
                [*(v.encode() for v in NA_LIKE), b"9" * 401, b"true", b"[1]", b'{"a":1}', b"1e999"]
            )
        )
        key = draw(st.sampled_from([b"timestamp", b"prediction", b"actual", b"age", b"plan"]))
        if fmt == "csv":
            cells = body.split(b",")
            cells[draw(st.integers(0, len(cells) - 1))] = value
            body = b",".join(cells)
        else:
            body = body.replace(b'"' + key + b'": ', b'"' + key + b'": ' + value + b', "x": ', 1)
    return body + ending


@st.composite
def chunks(draw: st.DrawFn, fmt: str) -> tuple[list[bytes], set[str]]:
    """Lines (each with its ending) of valid, mutated and blank lines; the valid lines' ids."""
    make = csv_lines if fmt == "csv" else json_lines
    lines: list[bytes] = []
    good: set[str] = set()
    for index in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["good", "good", "bad", "bad", "blank"]))
        if kind == "blank":
            lines.append(draw(st.sampled_from([b"\n", b"\r\n"])))
        elif kind == "good":
            good.add(f"g{index}")
            lines.append(draw(make(f"g{index}")))
        else:
            lines.append(draw(mutated(draw(make(f"b{index}")), fmt)))
    return lines, good


garbage = st.one_of(
    st.binary(max_size=200),
    st.lists(
        st.sampled_from(
            [
                b",",
                b'"',
                b"\n",
                b"\r",
                b"\r\n",
                b"a",
                b"0.5",
                b"\x00",
                b"\xff",
                b"\xef\xbb\xbf",
                b"{",
                b"}",
                b"[",
                b":",
                b'"timestamp"',
                b'"prediction"',
                b"2024-06-01T00:00:00Z",
                b"1717236000",
                b"null",
                b"true",
                b"NA",
                b"\\ud800",
                b"9" * 401,
            ]
        ),
        max_size=40,
    ).map(b"".join),
)


# --- checks ----------------------------------------------------------------------


def non_blank_lines(data: bytes) -> int:
    """The line count the parser must report: lines that hold more than a line ending."""
    pieces = data.split(b"\n")
    last = pieces.pop()
    return sum(1 for piece in pieces if piece not in (b"", b"\r")) + int(last not in (b"", b"\r"))


def parse(fmt: str, data: bytes, schema: RowSchema = SCHEMA, header: bytes = HEADER) -> ParsedRows:
    """`parse_chunk_safely`, after checking that the format's own parser gives the same
    verdicts without raising (the safety net is for the unknown, not for these)."""
    direct = parse_csv(header, data, schema) if fmt == "csv" else parse_jsonl(data, schema)
    rows = parse_chunk_safely(fmt, header if fmt == "csv" else None, data, schema)
    assert verdicts(direct) == verdicts(rows)
    return rows


def verdicts(rows: ParsedRows) -> tuple[int, int, dict[str, int]]:
    """(lines, accepted, rejected by reason), after checking one verdict per line."""
    assert rows.lines == len(rows.frame) + sum(rows.rejected.values()), rows.rejected
    assert len(rows.timestamps) == len(rows.frame)
    return rows.lines, len(rows.frame), {k: v for k, v in rows.rejected.items() if v}


def ids(rows: ParsedRows) -> list[str | None]:
    """Each accepted row's id (None: it has none)."""
    if "id" not in rows.frame.columns:
        return [None] * len(rows.frame)
    return [value if isinstance(value, str) else None for value in rows.frame["id"].astype(object)]


def check_chunk(fmt: str, lines: list[bytes], good: set[str]) -> ParsedRows:
    data = b"".join(lines)
    rows = parse(fmt, data)
    assert rows.lines == non_blank_lines(data)
    assert good <= set(ids(rows)), "a valid line did not count"
    assert np.isfinite(rows.timestamps).all()
    return rows


# --- CSV -------------------------------------------------------------------------


@PROPERTY
@given(data=garbage)
def test_csv_any_bytes_get_one_verdict_per_line(data: bytes) -> None:
    for schema in SCHEMAS:
        rows = parse("csv", data, schema)
        assert rows.lines == non_blank_lines(data)


@PROPERTY
@given(header=garbage, body=chunks("csv"))
def test_csv_any_header_never_raises(header: bytes, body: tuple[list[bytes], set[str]]) -> None:
    """A header with a lone CR, a BOM, quotes or garbage: rows are read or rejected."""
    data = b"".join(body[0])
    rows = parse("csv", data, header=header.split(b"\n")[0])
    assert rows.lines == non_blank_lines(data)


@PROPERTY
@given(body=chunks("csv"))
def test_csv_valid_lines_count_after_any_bad_line(body: tuple[list[bytes], set[str]]) -> None:
    check_chunk("csv", *body)


@PROPERTY
@given(body=chunks("csv"), cut=st.integers(0, 8))
def test_csv_verdicts_do_not_depend_on_chunk_boundaries(
    body: tuple[list[bytes], set[str]], cut: int
) -> None:
    assert_split_invariant("csv", body[0], cut)


@PROPERTY
@given(body=chunks("csv"))
def test_csv_arrow_and_the_exact_path_read_a_plain_chunk_alike(
    body: tuple[list[bytes], set[str]],
) -> None:
    plain = [
        line for line in body[0] if b'"' not in line and b"\r" not in line.removesuffix(b"\r\n")
    ]
    data = b"".join(plain)
    fast = parse("csv", data)
    exact = parse("csv", b'"\n' + data)  # a bad first line: the chunk takes the exact path
    lines, accepted, rejected = verdicts(fast)
    assert verdicts(exact) == (
        lines + 1,
        accepted,
        {**rejected, "parse": rejected.get("parse", 0) + 1},
    )
    for name in ("id", "age", "plan", "actual"):
        assert values(fast, name) == values(exact, name), name
    np.testing.assert_array_equal(fast.timestamps, exact.timestamps)


def values(rows: ParsedRows, name: str) -> list[object]:
    """A column as downstream reads it: missing (None), else text; a numeric feature's
    value as the number it is (``pd.to_numeric``) or "invalid"."""
    if name not in rows.frame.columns:
        return [None] * len(rows.frame)
    out: list[object] = []
    for value in rows.frame[name].astype(object):
        if pd.isna(value):
            out.append(None)
        elif name in SCHEMA.numeric_features:
            number = pd.to_numeric(pd.Series([value], dtype=object), errors="coerce").iloc[0]
            out.append("invalid" if pd.isna(number) else float(number))
        else:
            out.append(str(int(value)) if isinstance(value, (int, np.integer)) else str(value))
    return out


# --- JSON Lines ------------------------------------------------------------------


@PROPERTY
@given(data=garbage)
def test_jsonl_any_bytes_get_one_verdict_per_line(data: bytes) -> None:
    for schema in SCHEMAS:
        rows = parse("jsonl", data, schema)
        assert rows.lines == non_blank_lines(data)


@PROPERTY
@given(body=chunks("jsonl"))
def test_jsonl_valid_lines_count_after_any_bad_line(body: tuple[list[bytes], set[str]]) -> None:
    check_chunk("jsonl", *body)


@PROPERTY
@given(body=chunks("jsonl"), cut=st.integers(0, 8))
def test_jsonl_verdicts_do_not_depend_on_chunk_boundaries(
    body: tuple[list[bytes], set[str]], cut: int
) -> None:
    assert_split_invariant("jsonl", body[0], cut)


def assert_split_invariant(fmt: str, lines: list[bytes], cut: int) -> None:
    """Lines A+B as one chunk give what A and B give as two: counts, rows, timestamps."""
    cut = min(cut, len(lines))
    whole = parse(fmt, b"".join(lines))
    first, second = parse(fmt, b"".join(lines[:cut])), parse(fmt, b"".join(lines[cut:]))
    lines_total, accepted, rejected = verdicts(whole)
    parts = [verdicts(first), verdicts(second)]
    assert lines_total == parts[0][0] + parts[1][0]
    assert accepted == parts[0][1] + parts[1][1]
    summed: dict[str, int] = {}
    for part in parts:
        for reason, count in part[2].items():
            summed[reason] = summed.get(reason, 0) + count
    assert rejected == summed
    assert ids(whole) == ids(first) + ids(second)
    np.testing.assert_array_equal(
        whole.timestamps, np.concatenate([first.timestamps, second.timestamps])
    )


# --- the safety net --------------------------------------------------------------

POISON = b"poison"


@settings(PROPERTY, max_examples=100)  # each chunk is parsed some 10 times
@given(
    fmt=st.sampled_from(["csv", "jsonl"]),
    body=st.data(),
    poisoned=st.sets(st.integers(0, 7), min_size=1),
    failure=st.sampled_from(["raise", "miscount"]),
)
def test_a_parser_failing_on_a_line_loses_that_line_only(
    fmt: str, body: st.DataObject, poisoned: set[int], failure: str
) -> None:
    """A parser that raises on (or miscounts) any chunk holding a poisoned line: each
    poisoned line is rejected (``parse``), every other line gets its usual verdict."""
    lines = body.draw(chunks(fmt))[0]
    marked = [
        line.replace(b"\n", b"") + POISON + b"\n" if index in poisoned else line
        for index, line in enumerate(lines)
    ]
    header = HEADER if fmt == "csv" else None
    name = "parse_csv" if fmt == "csv" else "parse_jsonl"
    real = getattr(exporter.ingest.parse, name)

    def failing(*args: bytes) -> ParsedRows:
        rows = real(*args)  # type: ignore[arg-type]
        if POISON in args[-2 if fmt == "csv" else 0]:
            if failure == "raise":
                raise RuntimeError("a parser bug")
            rows.lines += 1
        return rows

    data = b"".join(marked)
    with mock.patch.object(exporter.ingest.parse, name, failing):
        rows = parse_chunk_safely(fmt, header, data, SCHEMA)
    clean = b"".join(line for index, line in enumerate(marked) if index not in poisoned)
    expected = parse_chunk_safely(fmt, header, clean, SCHEMA)
    lines_total, accepted, rejected = verdicts(rows)
    assert lines_total == non_blank_lines(data)
    assert accepted == len(expected.frame)
    assert ids(rows) == ids(expected)
    lost = lines_total - expected.lines
    wanted = {**expected.rejected, "parse": expected.rejected.get("parse", 0) + lost}
    assert rejected == {reason: count for reason, count in wanted.items() if count}
