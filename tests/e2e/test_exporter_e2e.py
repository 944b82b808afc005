"""The real CLI end to end: tail a log, serve /metrics, lint it with promtool."""

from __future__ import annotations

import subprocess
import time
import urllib.error
from pathlib import Path

import pytest
from support import fetch, require_binary, select, value, wait_for

from exporter.state.checkpoint import FILE_NAME

pytestmark = pytest.mark.slow  # starts real processes or runs for seconds

COURSE_LOG = (
    "timestamp,prediction,actual\n"
    "2024-06-01 12:00,0.8,1\n"
    "2024-06-01 13:00,0.4,0\n"
    "2024-06-01 14:00,0.9,1\n"
)


def write_minimal_config(folder: Path, log_name: str = "predictions.csv") -> Path:
    config = folder / "config.yml"
    config.write_text(
        f"models:\n  - name: course\n    task: binary\n    predictions: {{path: {log_name}}}\n"
    )
    return config


def test_course_log_gives_three_predictions_and_accuracy_one(tmp_path: Path, start_exporter):
    """The seed log with a three-key config: 3 predictions, accuracy 1.0, promtool-clean."""
    (tmp_path / "predictions.csv").write_text(COURSE_LOG)
    exporter = start_exporter(write_minimal_config(tmp_path))
    samples = wait_for(
        lambda: (
            (s := exporter.samples())
            and value(s, "mlmodel_predictions_total", model="course", model_version="") == 3
            and s
        ),
        what="3 predictions",
    )
    for window, rows in (("1h", 1), ("1d", 3), ("7d", 3)):
        labels = {"model": "course", "model_version": "", "window": window}
        assert value(samples, "mlmodel_window_predictions", **labels) == rows
        assert value(samples, "mlmodel_accuracy_ratio", **labels) == 1.0
    assert value(samples, "mlmodel_outcomes_total", model="course", model_version="") == 3
    watermark = value(samples, "mlmodel_last_prediction_timestamp_seconds", model="course")
    assert watermark == 1717250400.0  # 2024-06-01T14:00:00Z
    confusion = select(samples, "mlmodel_confusion_total", model="course")
    assert sum(confusion.values()) == 3
    assert value(samples, "mlmodel_alert_threshold", model="course", metric="min_outcomes") == 100
    assert value(samples, "mlmodel_exporter_build_info", version="0.1.0") == 1


def test_metrics_pass_promtool_check_metrics(tmp_path: Path, start_exporter) -> None:
    """A real scrape passes `promtool check metrics` with no output at all."""
    promtool = require_binary("promtool")
    (tmp_path / "predictions.csv").write_text(COURSE_LOG + "garbage\n")
    exporter = start_exporter(write_minimal_config(tmp_path))
    wait_for(
        lambda: (
            value(exporter.samples(), "mlmodel_predictions_total", model="course", model_version="")
            == 3
        ),
        what="ingest",
    )
    text = exporter.metrics_text()
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_new_rows_show_up_within_two_seconds(tmp_path: Path, start_exporter) -> None:
    """An appended row is in /metrics less than 2 s after it was written."""
    log = tmp_path / "predictions.csv"
    log.write_text(COURSE_LOG)
    exporter = start_exporter(write_minimal_config(tmp_path))
    wait_for(exporter.samples, what="first scrape")
    wait_for(
        lambda: (
            value(exporter.samples(), "mlmodel_predictions_total", model="course", model_version="")
            == 3
        ),
        what="initial rows",
    )
    with log.open("a") as handle:
        handle.write("2024-06-01 15:00,0.1,0\n")
    written = time.monotonic()
    wait_for(
        lambda: (
            value(exporter.samples(), "mlmodel_predictions_total", model="course", model_version="")
            == 4
        ),
        timeout=2.0,
        what="the new row within 2 s",
    )
    assert time.monotonic() - written < 2.0


def test_endpoints_landing_health_ready(tmp_path: Path, start_exporter) -> None:
    """/ links to /metrics; /-/healthy and /-/ready answer 200 once the first pass is done."""
    (tmp_path / "predictions.csv").write_text(COURSE_LOG)
    exporter = start_exporter(write_minimal_config(tmp_path))
    assert 'href="/metrics"' in fetch(exporter.url + "/")
    assert fetch(exporter.url + "/-/healthy").strip() == "Healthy"
    wait_for(lambda: fetch(exporter.url + "/-/ready").strip() == "Ready", what="ready")
    with pytest.raises(urllib.error.HTTPError) as err:
        fetch(exporter.url + "/nope")
    assert err.value.code == 404


def test_sigterm_checkpoints_and_restart_counts_nothing_twice(
    tmp_path: Path, start_exporter
) -> None:
    """SIGTERM exits 0 after a checkpoint; a restart resumes without re-counting."""
    log = tmp_path / "predictions.csv"
    log.write_text(COURSE_LOG)
    config = write_minimal_config(tmp_path)
    first = start_exporter(config)
    wait_for(
        lambda: (
            value(first.samples(), "mlmodel_predictions_total", model="course", model_version="")
            == 3
        ),
        what="ingest",
    )
    assert first.stop() == 0
    assert (tmp_path / "state" / FILE_NAME).is_file()
    with log.open("a") as handle:
        handle.write("2024-06-01 15:00,0.1,0\n")
    second = start_exporter(config)
    samples = wait_for(
        lambda: (
            (s := second.samples())
            and value(s, "mlmodel_predictions_total", model="course", model_version="") == 4
            and s
        ),
        what="the appended row after restart",
    )
    assert value(samples, "mlmodel_exporter_lines_total", source=str(log)) == 4
    labels = {"model": "course", "model_version": "", "window": "1d"}
    assert value(samples, "mlmodel_window_predictions", **labels) == 4


def test_missing_log_is_reported_down_then_followed(tmp_path: Path, start_exporter) -> None:
    """A log that does not exist yet is source_up 0; once created it is read."""
    config = write_minimal_config(tmp_path)
    exporter = start_exporter(config)
    source = str(tmp_path / "predictions.csv")
    wait_for(
        lambda: value(exporter.samples(), "mlmodel_exporter_source_up", source=source) == 0,
        what="source down",
    )
    (tmp_path / "predictions.csv").write_text(COURSE_LOG)
    # source_up is settled at the end of each poll, after that poll's rows were applied:
    # wait for both instead of reading it the moment the rows show.
    wait_for(
        lambda: (
            (s := exporter.samples())
            and value(s, "mlmodel_predictions_total", model="course", model_version="") == 3
            and value(s, "mlmodel_exporter_source_up", source=source) == 1
        ),
        what="rows after the file appears, and the source up",
    )
