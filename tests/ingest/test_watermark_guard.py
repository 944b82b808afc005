"""The watermark guard: a timestamp more than ``max_future`` (default 5m) ahead
of the wall clock is a clock or parsing error. The row is rejected with reason
``timestamp`` and moves nothing: not the prediction watermark (which would empty every
window and make the rows after it ``late``), not the outcome stream's event time (which
would expire every waiting prediction). The wall clock is injected: these tests do not
depend on the real time."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from join_support import START, iso, make_engine, scrape
from support import run_cli, value

from exporter.config import Config, ConfigError, config_from_mapping

NOW = START + 1000.0  # the injected wall clock: just after the last good row


def guard_config(directory: Path, *, max_future: object = None, outcomes: bool = False) -> Config:
    model: dict = {
        "name": "m",
        "task": "binary",
        "predictions": {"path": "predictions.csv"},
        "windows": ["1h"],
    }
    if outcomes:
        model["outcomes"] = {"path": "outcomes.csv", "max_delay": "30m"}
    raw: dict = {"state_dir": str(directory / "state"), "models": [model]}
    if max_future is not None:
        raw["max_future"] = max_future
    return config_from_mapping(raw, base_dir=directory)


def figures(engine, log: Path) -> dict:
    samples = scrape(engine)
    source = str(log)
    rejected = {
        reason: value(
            samples, "mlmodel_exporter_rejected_lines_total", source=source, reason=reason
        )
        for reason in ("timestamp", "late")
    }
    window = {"model": "m", "model_version": "", "window": "1h"}
    return {
        "predictions": value(samples, "mlmodel_predictions_total", model="m", model_version=""),
        "lines": value(samples, "mlmodel_exporter_lines_total", source=source),
        "rejected": rejected,
        "window": value(samples, "mlmodel_window_predictions", **window),
        "watermark": value(samples, "mlmodel_last_prediction_timestamp_seconds", model="m"),
        "pending": value(samples, "mlmodel_exporter_pending_outcomes", model="m"),
        "expired": value(samples, "mlmodel_exporter_expired_predictions_total", model="m"),
        "last_outcome": value(samples, "mlmodel_last_outcome_timestamp_seconds", model="m"),
    }


def read(config: Config, *, chunk_bytes: int = 8 << 20, now: float = NOW):
    engine = make_engine(config, chunk_bytes=chunk_bytes, now=now)
    engine.step()
    return engine


@pytest.mark.parametrize("chunk_bytes", [512, 8 << 20])
def test_a_row_23_hours_ahead_is_rejected_and_the_rows_after_it_still_count(
    tmp_path: Path, chunk_bytes: int
) -> None:
    """500 good rows, one stamped 23 h ahead of the clock, 500 good rows, windows [1h]:
    1,000 predictions counted, 1 rejected ``timestamp``, 0 ``late``; the watermark is the
    newest good row."""
    good = [f"{iso(START + i)},{0.2 + 0.6 * (i % 2)},{i % 2}\n" for i in range(1000)]
    future = f"{iso(NOW + 23 * 3600)},0.9,1\n"
    log = tmp_path / "predictions.csv"
    log.write_text(
        "timestamp,prediction,actual\n" + "".join(good[:500]) + future + "".join(good[500:])
    )
    engine = read(guard_config(tmp_path), chunk_bytes=chunk_bytes)
    try:
        result = figures(engine, log)
    finally:
        engine.close()
    assert result["lines"] == 1001
    assert result["predictions"] == 1000
    assert result["rejected"] == {"timestamp": 1, "late": 0}
    assert result["window"] == 1000
    assert result["watermark"] == START + 999


@pytest.mark.parametrize(
    ("max_future", "ahead", "accepted"),
    [
        (None, 30 * 60, False),  # default 5m
        (None, 300, True),  # exactly max_future ahead: not more than it
        (None, 301, False),
        ("1h", 30 * 60, True),
        ("1h", 3600, True),
        ("1h", 3601, False),
    ],
)
def test_max_future_is_the_bound_ahead_of_the_wall_clock(
    tmp_path: Path, max_future: str | None, ahead: int, accepted: bool
) -> None:
    """A row ``ahead`` seconds past the injected clock counts, and becomes the watermark,
    iff it is no more than max_future ahead."""
    log = tmp_path / "predictions.csv"
    log.write_text(
        "timestamp,prediction,actual\n"
        f"{iso(NOW - 60)},0.8,1\n"
        f"{int(NOW + ahead)},0.8,1\n"  # epoch seconds: the guard holds for every format
    )
    engine = read(guard_config(tmp_path, max_future=max_future))
    try:
        result = figures(engine, log)
    finally:
        engine.close()
    assert result["lines"] == 2
    assert result["predictions"] == (2 if accepted else 1)
    assert result["rejected"]["timestamp"] == (0 if accepted else 1)
    assert result["watermark"] == (NOW + ahead if accepted else NOW - 60)


def test_the_guard_follows_the_injected_clock_not_the_real_one(tmp_path: Path) -> None:
    """The same row is rejected with the clock set a day before it and counted with the
    clock set at it; the real time (years after START) plays no part."""
    log = tmp_path / "predictions.csv"
    log.write_text(f"timestamp,prediction,actual\n{iso(START)},0.8,1\n")
    for now, counted in ((START - 86400.0, 0), (float(START), 1)):
        config = guard_config(tmp_path / f"at-{int(now)}")
        (tmp_path / f"at-{int(now)}").mkdir()
        (tmp_path / f"at-{int(now)}" / "predictions.csv").write_bytes(log.read_bytes())
        engine = read(config, now=now)
        try:
            result = figures(engine, tmp_path / f"at-{int(now)}" / "predictions.csv")
        finally:
            engine.close()
        assert (result["predictions"] or 0) == counted, now
        assert result["rejected"]["timestamp"] == 1 - counted, now


def test_an_outcome_from_the_future_does_not_expire_waiting_predictions(tmp_path: Path) -> None:
    """Predictions waiting for their outcomes; an outcome row stamped 23 h ahead of the
    clock is rejected ``timestamp`` on the outcome source and does not move the outcome
    stream: nothing expires, the last outcome time stays, the real outcomes still join."""
    (tmp_path / "predictions.csv").write_text(
        "timestamp,id,prediction\n" + "".join(f"{iso(START + i)},r{i},0.8\n" for i in range(10))
    )
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_text(
        f"id,actual,timestamp\nr0,1,{iso(START + 60)}\nghost,1,{iso(NOW + 23 * 3600)}\n"
    )
    engine = read(guard_config(tmp_path, outcomes=True))
    try:
        result = figures(engine, tmp_path / "predictions.csv")
        rejected = value(
            scrape(engine),
            "mlmodel_exporter_rejected_lines_total",
            source=str(outcomes),
            reason="timestamp",
        )
        assert rejected == 1
        assert result["expired"] == 0
        assert result["pending"] == 9
        assert result["last_outcome"] == START + 60
        with outcomes.open("a") as handle:
            handle.write("".join(f"r{i},1,{iso(START + 60 + i)}\n" for i in range(1, 10)))
        engine.step()
        after = figures(engine, tmp_path / "predictions.csv")
        samples = scrape(engine)
    finally:
        engine.close()
    assert after["pending"] == 0
    assert after["expired"] == 0
    assert value(samples, "mlmodel_outcomes_total", model="m", model_version="") == 10


@pytest.mark.parametrize("bad", ["soon", "-5m", "5 minutes", 0, -1, True, [1]])
def test_a_bad_max_future_is_a_config_error_naming_the_key(tmp_path: Path, bad: object) -> None:
    """A max_future that is not a positive duration is reported with its key path (as a
    bad value of a known key), while a good one is taken."""
    assert guard_config(tmp_path, max_future="10m").max_future == 600
    assert guard_config(tmp_path).max_future == 300
    with pytest.raises(ConfigError) as raised:
        guard_config(tmp_path, max_future=bad)
    problems = [p for p in raised.value.problems if p.startswith("max_future:")]
    assert len(problems) == 1, raised.value.problems
    assert "unknown key" not in problems[0]


def test_check_exits_2_naming_max_future(tmp_path: Path) -> None:
    """``ml-model-exporter check`` with ``max_future: soon``: exit 2, one line naming it."""
    (tmp_path / "predictions.csv").write_text("timestamp,prediction,actual\n")
    config = tmp_path / "config.yml"
    config.write_text(
        "max_future: soon\nmodels:\n  - name: m\n    task: binary\n"
        "    predictions: {path: predictions.csv}\n"
    )
    done = run_cli("check", "--config.file", str(config))
    assert done.returncode == 2, done.stderr
    problems = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(problems) == 1, done.stderr
    assert problems[0].startswith("error: max_future:")
    assert "unknown key" not in problems[0]


def test_the_log_line_for_a_future_row_does_not_misstate_the_limit(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """With max_future 1h, a row 2 h ahead is rejected and logged; the log line must not
    say the limit is a day (the guard used to be one day; it is max_future now)."""
    log = tmp_path / "predictions.csv"
    log.write_text(f"timestamp,prediction,actual\n{int(NOW + 7200)},0.8,1\n")
    with caplog.at_level(logging.WARNING, logger="ml_model_exporter"):
        engine = read(guard_config(tmp_path, max_future="1h"))
        engine.close()
    lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert "a day" not in lines[0], lines[0]
