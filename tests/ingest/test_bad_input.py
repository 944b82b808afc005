"""Bad rows are rejected and counted by reason; the good rows around them still count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import select, value, wait_for

pytestmark = pytest.mark.slow  # starts real processes or runs for seconds

GOOD_CSV = [
    b"2024-06-01T10:00:00Z,0.9,1,30\n",
    b"2024-06-01T10:01:00Z,0.2,0,41\n",
    b"2024-06-01T10:02:00+02:00,0.7,0,52\n",
    b"1717236300,0.6,1,abc\n",  # text in a numeric feature: a good row, the value is invalid
    b'"2024-06-01 10:06",0.1,0,"33"\n',
    b"2024-06-01T10:07:00Z,0.55,1,\n",  # a missing feature value is not a bad row
]
BAD_CSV = {
    "parse": [
        b"\x00\x01\x02\x7f binary garbage\n",
        b"garbage without commas\n",
        b"2024-06-01T10:03:00Z,0.5,1,2,3,4\n",
    ],
    "encoding": [b"2024-06-01T10:04:00Z,0.5,1,\xff\xfe\n"],
    "timestamp": [b"yesterday,0.5,1,3\n", b",0.5,1,3\n"],
    "schema": [b"2024-06-01T10:05:00Z,,1,3\n", b"2024-06-01T10:05:00Z,high,1,3\n"],
    "too_long": [b"2024-06-01T10:05:00Z,0.5,1," + b"9" * 2000 + b"\n"],
}


def interleave(good: list[bytes], bad: dict[str, list[bytes]]) -> bytes:
    bad_lines = [line for lines in bad.values() for line in lines]
    out = []
    for index in range(max(len(good), len(bad_lines))):
        if index < len(bad_lines):
            out.append(bad_lines[index])
        if index < len(good):
            out.append(good[index])
    return b"".join(out)


def test_each_kind_of_bad_csv_row_is_rejected_by_reason(tmp_path: Path, start_exporter) -> None:
    """Garbage, wrong column count, invalid UTF-8, bad timestamp, bad prediction and an
    over-long line, interleaved with good rows: the good rows are exact, rejects by reason."""
    log = tmp_path / "predictions.csv"
    log.write_bytes(b"timestamp,prediction,actual,age\n" + interleave(GOOD_CSV, BAD_CSV))
    config = tmp_path / "config.yml"
    config.write_text(
        "max_line_bytes: 1000\n"
        "models:\n  - name: m\n    task: binary\n    predictions: {path: predictions.csv}\n"
        "    features: {age: numeric}\n    windows: [7d]\n"
    )
    exporter = start_exporter(config)
    source = str(log)
    total_lines = len(GOOD_CSV) + sum(len(v) for v in BAD_CSV.values())
    samples = wait_for(
        lambda: (
            (s := exporter.samples())
            and value(s, "mlmodel_exporter_lines_total", source=source) == total_lines
            and s
        ),
        what="all lines read",
    )
    assert value(samples, "mlmodel_predictions_total", model="m", model_version="") == len(GOOD_CSV)
    rejected = {
        dict(labels)["reason"]: count
        for labels, count in select(
            samples, "mlmodel_exporter_rejected_lines_total", source=source
        ).items()
    }
    expected = {reason: len(lines) for reason, lines in BAD_CSV.items()}
    assert {k: v for k, v in rejected.items() if v} == expected
    assert rejected["duplicate"] == 0
    assert rejected["late"] == 0
    # good rows: actual 1,0,0,1,0,1 ; predicted (>=0.5) 1,0,1,1,0,1 -> 5 of 6 right
    accuracy = value(samples, "mlmodel_accuracy_ratio", model="m", model_version="", window="7d")
    assert accuracy == 5 / 6
    log_text = exporter.log_text()
    for reason in expected:
        assert f"({reason})" in log_text, reason
    assert "Traceback" not in log_text


def test_each_kind_of_bad_jsonl_row_is_rejected_by_reason(tmp_path: Path, start_exporter) -> None:
    """JSON Lines: a line that is not JSON or not an object, invalid UTF-8, a bad timestamp or
    prediction; good lines around them count."""
    good = [
        {"timestamp": "2024-06-01T10:00:00Z", "prediction": 0.9, "actual": 1},
        {"timestamp": 1717236060, "prediction": "0.2", "actual": "0"},
        {"timestamp": "2024-06-01 10:02", "prediction": 0.7, "actual": 1, "extra": [1, 2]},
    ]
    bad = {
        "parse": [b"{not json\n", b"[1, 2, 3]\n", b"\x00\x00\x00\n"],
        "encoding": [b'{"timestamp": "2024-06-01T10:00:00Z", "prediction": 0.5, "x": "\xff"}\n'],
        "timestamp": [b'{"timestamp": "noon", "prediction": 0.5}\n'],
        "schema": [
            b'{"timestamp": "2024-06-01T10:00:00Z"}\n',
            b'{"timestamp": "2024-06-01T10:00:00Z", "prediction": "yes"}\n',
        ],
    }
    log = tmp_path / "predictions.jsonl"
    log.write_bytes(interleave([json.dumps(g).encode() + b"\n" for g in good], bad))
    config = tmp_path / "config.yml"
    config.write_text(
        "models:\n  - name: j\n    task: binary\n    predictions: {path: predictions.jsonl}\n"
        "    windows: [7d]\n"
    )
    exporter = start_exporter(config)
    source = str(log)
    total = len(good) + sum(len(v) for v in bad.values())
    samples = wait_for(
        lambda: (
            (s := exporter.samples())
            and value(s, "mlmodel_exporter_lines_total", source=source) == total
            and s
        ),
        what="all lines read",
    )
    assert value(samples, "mlmodel_predictions_total", model="j", model_version="") == 3
    rejected = {
        dict(labels)["reason"]: count
        for labels, count in select(
            samples, "mlmodel_exporter_rejected_lines_total", source=source
        ).items()
        if count
    }
    assert rejected == {reason: len(lines) for reason, lines in bad.items()}
    assert value(samples, "mlmodel_accuracy_ratio", model="j", model_version="", window="7d") == 1


def test_late_and_duplicate_rows_are_rejected(tmp_path: Path, start_exporter) -> None:
    """A row older than the longest window is late; an id already waiting is a duplicate;
    outcomes join their prediction; an unknown id waits for its prediction (these outcomes
    carry no timestamp, so only max_pending ends the wait)."""
    (tmp_path / "p.csv").write_text(
        "timestamp,id,prediction\n"
        "2024-06-10T00:00:00Z,a,0.9\n"
        "2024-06-01T00:00:00Z,b,0.9\n"  # 9 days behind the watermark, window 7d: late
        "2024-06-10T00:00:00Z,a,0.1\n"  # id a at the same time, still waiting: duplicate
        "2024-06-10T00:02:00Z,c,0.2\n"
    )
    (tmp_path / "o.jsonl").write_text(
        '{"id": "a", "actual": 1}\n{"id": "c", "actual": 1}\n{"id": "zzz", "actual": 0}\n'
    )
    config = tmp_path / "config.yml"
    config.write_text(
        "models:\n  - name: d\n    task: binary\n    predictions: {path: p.csv}\n"
        "    outcomes: {path: o.jsonl}\n    windows: [1h, 7d]\n"
    )
    exporter = start_exporter(config)
    samples = wait_for(
        lambda: (
            (s := exporter.samples())
            and value(s, "mlmodel_exporter_waiting_outcomes", model="d") == 1
            and s
        ),
        what="outcomes joined",
    )
    source = str(tmp_path / "p.csv")
    rejects = select(samples, "mlmodel_exporter_rejected_lines_total", source=source)
    by_reason = {dict(k)["reason"]: v for k, v in rejects.items()}
    assert by_reason["late"] == 1
    assert by_reason["duplicate"] == 1
    assert value(samples, "mlmodel_predictions_total", model="d", model_version="") == 2
    assert value(samples, "mlmodel_outcomes_total", model="d", model_version="") == 2
    labels = {"model": "d", "model_version": "", "window": "1h"}
    assert value(samples, "mlmodel_window_outcomes", **labels) == 2
    assert value(samples, "mlmodel_accuracy_ratio", **labels) == 0.5
    assert value(samples, "mlmodel_exporter_pending_outcomes", model="d") == 0
    assert value(samples, "mlmodel_exporter_unmatched_outcomes_total", model="d") == 0
