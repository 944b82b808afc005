"""A checkpoint that cannot be written: the write is logged, counted and retried a
checkpoint interval later; the ingest goes on and counts every row exactly once; no half
written temp file stays behind; once the disk is writable again the next checkpoint is
written and a restart from it resumes exactly. ``run`` says at SIGTERM whether its final
checkpoint was written: exit 0 if so, 1 and a log line saying it was not otherwise."""

from __future__ import annotations

import errno
import logging
import os
import resource
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from join_support import START, append, scrape
from support import (
    Samples,
    cli,
    fetch,
    free_port,
    parse_samples,
    run_cli,
    select,
    value,
    wait_for,
)

import exporter.ingest.checkpoint_policy
import exporter.state.checkpoint
from exporter.config import Config, config_from_mapping
from exporter.ingest.engine import Engine
from exporter.ingest.tailer import Tailer
from exporter.state.checkpoint import FILE_NAME, load_checkpoint

ROWS = 320_000
HEADER = b"timestamp,id,prediction,actual\n"
# how the log line at a SIGTERM without the final checkpoint may put it (lower case)
WITHOUT_FINAL_CHECKPOINT = ("without a final checkpoint", "final checkpoint was not written")


def rows(first: int, count: int) -> bytes:
    return b"".join(
        f"{START + i // 10},r{i},0.{i % 10}5,{i % 2}\n".encode()
        for i in range(first, first + count)
    )


class Clock:
    """A monotonic clock the test sets; every reading also moves it ``tick`` seconds."""

    def __init__(self, tick: float = 1.0) -> None:
        self.now = 0.0
        self.tick = tick

    def __call__(self) -> float:
        self.now += self.tick
        return self.now


class FullDisk:
    """``exporter.state.checkpoint``'s view of ``os`` on a disk that is full: a write stores a
    few bytes, then fails with ENOSPC. Records the state dir as it was at each failure."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.full = True
        self.seen_during_failed_writes: list[list[str]] = []

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def write(self, fd: int, data: bytes) -> int:
        if not self.full:
            return os.write(fd, data)
        os.write(fd, bytes(data[:100]))
        self.seen_during_failed_writes.append(sorted(os.listdir(self.state_dir)))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def config_for(directory: Path, state_dir: Path) -> Config:
    return config_from_mapping(
        {
            "state_dir": str(state_dir),
            "checkpoint_interval": "5s",
            "models": [
                {
                    "name": "m",
                    "task": "binary",
                    "predictions": {"path": "predictions.csv"},
                    "windows": ["1h", "30d"],
                }
            ],
        },
        base_dir=directory,
    )


def engine_for(config: Config, monotonic: Callable[[], float]) -> Engine:
    return Engine(
        config,
        clock=lambda: START + 86400.0,
        monotonic=monotonic,
        tailer_factory=lambda *a, **k: Tailer(*a, chunk_bytes=64 << 10, **k),
        parse_ahead=None,
    )


def counts(engine: Engine, log: Path) -> dict[str, float | None]:
    samples = scrape(engine)
    return {
        "predictions": value(samples, "mlmodel_predictions_total", model="m", model_version=""),
        "outcomes": value(samples, "mlmodel_outcomes_total", model="m", model_version=""),
        "window 30d": value(
            samples, "mlmodel_window_predictions", model="m", model_version="", window="30d"
        ),
        "lines": value(samples, "mlmodel_exporter_lines_total", source=str(log)),
        "confusion": sum(select(samples, "mlmodel_confusion_total", model="m").values()),
        "failures": value(samples, "mlmodel_exporter_checkpoint_failures_total"),
    }


def temp_files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.name.endswith(".tmp")]


def crash(engine: Engine) -> None:
    """Let go of the files without the final checkpoint, as SIGKILL would."""
    for source in engine.sources:
        source.tailer.close()


def _break_state_dir(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> tuple[Path, FullDisk | None, Callable[[], None]]:
    """Make ``state_dir`` unwritable; returns (the directory holding the old checkpoint
    meanwhile, the FullDisk or None, a function that makes it writable again)."""
    if how == "replaced by a file":
        away = state_dir.with_name(state_dir.name + ".away")
        state_dir.rename(away)
        state_dir.write_text("a regular file where the state_dir was\n")

        def repair() -> None:
            state_dir.unlink()
            away.rename(state_dir)

        return away, None, repair
    disk = FullDisk(state_dir)
    monkeypatch.setattr(exporter.state.checkpoint, "os", disk)

    def refill() -> None:
        disk.full = False

    return state_dir, disk, refill


@pytest.mark.slow
@pytest.mark.parametrize("how", ["replaced by a file", "full disk"])
def test_unwritable_state_dir_loses_no_row_and_recovers_exactly(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    """The state_dir stops being writable after a first checkpoint, while 320,000 rows
    are read in 64 KiB chunks with every checkpoint due: each row is counted once, the
    failures are counted and logged, no temp file stays, the old checkpoint is intact.
    Writable again: the next due checkpoint is written, and a crash after 500 more rows
    resumes from it exactly (those 500 read again, nothing counted twice)."""
    caplog.set_level(logging.ERROR, logger="ml_model_exporter")
    state_dir = tmp_path / "state"
    log = tmp_path / "predictions.csv"
    first_rows = 1000
    log.write_bytes(HEADER + rows(0, first_rows))
    config = config_for(tmp_path, state_dir)
    clock = Clock(tick=10.0)  # every reading is more than checkpoint_interval (5s) later
    engine = engine_for(config, clock)
    assert engine.step() == first_rows
    first = load_checkpoint(state_dir)
    assert first is not None
    assert first["sources"]["m/predictions"]["lines"] == first_rows
    first_bytes = (state_dir / FILE_NAME).read_bytes()

    old_dir, disk, repair = _break_state_dir(state_dir, monkeypatch, how)
    append(log, rows(first_rows, ROWS - first_rows))
    assert engine.step() == ROWS - first_rows

    assert counts(engine, log) == {
        "predictions": ROWS,
        "outcomes": ROWS,
        "window 30d": ROWS,
        "lines": ROWS,
        "confusion": ROWS,
        "failures": engine.checkpoint_failures,
    }
    # a write was tried (and failed) after every chunk: about 125 of them
    assert engine.checkpoint_failures >= 100
    assert any("cannot write the checkpoint" in r.getMessage() for r in caplog.records)
    assert temp_files(tmp_path) == []
    assert (old_dir / FILE_NAME).read_bytes() == first_bytes
    assert load_checkpoint(old_dir)["sources"] == first["sources"]
    if disk is not None:  # the temp file was really there when a write failed
        assert disk.seen_during_failed_writes
        assert all(
            f".{FILE_NAME}.tmp" in seen and FILE_NAME in seen
            for seen in disk.seen_during_failed_writes
        )

    repair()
    failures = engine.checkpoint_failures
    assert engine.maybe_checkpoint() is True  # the next due time: written
    assert engine.checkpoint_failures == failures
    assert temp_files(tmp_path) == []
    written = load_checkpoint(state_dir)
    written_bytes = (state_dir / FILE_NAME).read_bytes()
    assert written is not None
    assert written["sources"]["m/predictions"]["lines"] == ROWS
    assert scrape(engine)[("mlmodel_exporter_last_checkpoint_timestamp_seconds", frozenset())]

    clock.tick = 0.0  # no checkpoint falls due while the last 500 rows are read
    append(log, rows(ROWS, 500))
    assert engine.step() == 500
    assert counts(engine, log)["predictions"] == ROWS + 500
    assert (state_dir / FILE_NAME).read_bytes() == written_bytes
    crash(engine)

    resumed = engine_for(config, Clock(tick=10.0))
    assert counts(resumed, log)["predictions"] == ROWS  # as of the last checkpoint written
    assert resumed.step() == 500  # only what came after it
    assert counts(resumed, log) == {
        "predictions": ROWS + 500,
        "outcomes": ROWS + 500,
        "window 30d": ROWS + 500,
        "lines": ROWS + 500,
        "confusion": ROWS + 500,
        "failures": 0,
    }
    assert resumed.step() == 0
    assert resumed.close() is True
    assert temp_files(tmp_path) == []


def test_a_failed_write_is_retried_one_checkpoint_interval_later(  # noqa: PLR0915 - one timeline of failures and retries, read top to bottom
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed write is counted and logged and not tried again before a checkpoint
    interval (5s) has passed, not even when forced (a file set change, which forces a
    checkpoint, must not retry at every chunk); then it is, and succeeds once the disk
    has room. Only close() does not wait."""
    caplog.set_level(logging.ERROR, logger="ml_model_exporter")
    state_dir = tmp_path / "state"
    log = tmp_path / "predictions.csv"
    log.write_bytes(HEADER + rows(0, 100))
    disk = FullDisk(state_dir)
    monkeypatch.setattr(exporter.state.checkpoint, "os", disk)
    attempts: list[float] = []
    real_save = exporter.ingest.checkpoint_policy.save_checkpoint

    def counting_save(directory: Path, state: dict) -> int:
        attempts.append(clock.now)
        return real_save(directory, state)

    monkeypatch.setattr(exporter.ingest.checkpoint_policy, "save_checkpoint", counting_save)
    clock = Clock(tick=0.0)  # time moves only when the test says so
    clock.now = 100.0
    engine = engine_for(config_for(tmp_path, state_dir), clock)

    # the first checkpoint is forced (files the checkpoint does not know yet) and fails
    assert engine.step() == 100
    assert attempts == [100.0]
    assert engine.checkpoint_failures == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "cannot write the checkpoint" in errors[0]
    assert "retry in 5s" in errors[0]
    assert load_checkpoint(state_dir) is None
    assert temp_files(tmp_path) == []

    # before t + 5s: no write is tried, forced or not, while the ingest goes on
    for now in (100.0, 102.0, 104.999):
        clock.now = now
        append(log, rows(100, 10) if now == 102.0 else b"")
        engine.step()
        assert engine.maybe_checkpoint() is False
        assert engine.maybe_checkpoint(force=True) is False
    assert attempts == [100.0]
    assert engine.checkpoint_failures == 1
    assert counts(engine, log)["predictions"] == 110

    # at t + 5s it is tried again (and fails again: the next try is at t + 10s)
    clock.now = 105.0
    assert engine.maybe_checkpoint() is False
    assert attempts == [100.0, 105.0]
    assert engine.checkpoint_failures == 2
    disk.full = False
    clock.now = 109.999
    assert engine.maybe_checkpoint(force=True) is False
    assert attempts == [100.0, 105.0]

    # room again: the retry at t + 10s writes it
    clock.now = 110.0
    assert engine.maybe_checkpoint() is True
    assert attempts == [100.0, 105.0, 110.0]
    assert engine.checkpoint_failures == 2
    saved = load_checkpoint(state_dir)
    assert saved is not None
    assert saved["sources"]["m/predictions"]["lines"] == 110
    assert engine.maybe_checkpoint() is False  # written, nothing new: not due
    assert attempts == [100.0, 105.0, 110.0]

    # a later failure: force=True waits for the retry time, close() does not
    disk.full = True
    append(log, rows(110, 10))
    clock.now = 200.0
    engine.step()
    assert attempts[-1] == 200.0
    assert engine.checkpoint_failures == 3
    disk.full = False
    clock.now = 201.0
    assert engine.maybe_checkpoint(force=True) is False
    assert attempts[-1] == 200.0
    assert engine.close() is True
    assert attempts[-1] == 201.0
    assert engine.checkpoint_failures == 3
    saved = load_checkpoint(state_dir)
    assert saved is not None
    assert saved["sources"]["m/predictions"]["lines"] == 120
    assert temp_files(tmp_path) == []


def _limit_file_size(limit: int) -> Callable[[], None]:
    """A preexec_fn: the child cannot write a file past ``limit`` bytes (a full disk);
    writes past it fail with EFBIG instead of killing it with SIGXFSZ."""

    def preexec() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    return preexec


def _run_until_sigterm(
    tmp_path: Path, state_dir: Path, file_size_limit: int | None = None
) -> tuple[int, str, Samples]:
    """``run`` over a 20,000-row prediction log whose ids all wait for an outcome (a
    checkpoint of a few hundred KB); SIGTERM once the log is read and a checkpoint was
    tried. Returns the exit code, the exporter's log and the last scrape."""
    log = tmp_path / "predictions.csv"
    log.write_bytes(
        b"timestamp,id,prediction\n"
        + b"".join(f"{START + i},request-{i:08d},0.7\n".encode() for i in range(20_000))
    )
    (tmp_path / "outcomes.csv").write_bytes(b"id,actual\n")
    config = tmp_path / "config.yml"
    config.write_text(
        f"state_dir: {state_dir}\ncheckpoint_interval: 200ms\npoll_interval: 50ms\n"
        "models:\n  - name: m\n    task: binary\n    predictions: {path: predictions.csv}\n"
        "    outcomes: {path: outcomes.csv}\n    windows: [1d]\n"
    )
    port = free_port()
    output = tmp_path / "exporter.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            cli("run", "--config.file", str(config), "--web.listen-address", f"127.0.0.1:{port}"),
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=_limit_file_size(file_size_limit) if file_size_limit else None,  # noqa: PLW1509
        )
    try:

        def read_and_tried() -> dict | None:
            if process.poll() is not None:
                raise RuntimeError(output.read_text())
            samples = parse_samples(fetch(f"http://127.0.0.1:{port}/metrics"))
            lines = value(samples, "mlmodel_exporter_lines_total", source=str(log))
            tried = value(samples, "mlmodel_exporter_checkpoint_failures_total") or value(
                samples, "mlmodel_exporter_last_checkpoint_timestamp_seconds"
            )
            return samples if lines == 20_000 and tried else None

        samples = wait_for(read_and_tried, timeout=30, what="the log read and a checkpoint tried")
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return code, output.read_text(errors="replace"), samples


@pytest.mark.slow
def test_run_exits_1_and_says_so_when_the_final_checkpoint_cannot_be_written(
    tmp_path: Path,
) -> None:
    """SIGTERM with a full disk (RLIMIT_FSIZE below the checkpoint's size): the exporter
    runs and counts the failures; at SIGTERM, exit code 1 and a log line that says the
    final checkpoint was not written; no temp file left behind."""
    state_dir = tmp_path / "state"
    code, text, samples = _run_until_sigterm(tmp_path, state_dir, file_size_limit=256 << 10)
    assert (value(samples, "mlmodel_exporter_checkpoint_failures_total") or 0) >= 1
    assert value(samples, "mlmodel_exporter_pending_outcomes", model="m") == 20_000
    assert code == 1, text[-2000:]
    assert any(
        phrase in line.lower() for line in text.splitlines() for phrase in WITHOUT_FINAL_CHECKPOINT
    ), text[-2000:]
    assert "Traceback" not in text
    assert not (state_dir / FILE_NAME).exists()
    assert temp_files(tmp_path) == []


def test_a_state_dir_through_a_regular_file_is_a_clear_error_at_start(tmp_path: Path) -> None:
    """A state_dir that cannot even be read (a regular file in its path) is a
    configuration problem: exit 2 with one line naming state_dir, no traceback."""
    (tmp_path / "blocker").write_text("not a directory\n")
    (tmp_path / "p.csv").write_text("timestamp,prediction\n")
    config = tmp_path / "config.yml"
    config.write_text(
        f"state_dir: {tmp_path / 'blocker' / 'state'}\n"
        "models:\n  - name: m\n    task: binary\n    predictions: {path: p.csv}\n"
    )
    result = run_cli("run", "--config.file", str(config))
    assert result.returncode == 2, result.stderr
    assert "state_dir" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_run_exits_0_when_the_final_checkpoint_is_written(tmp_path: Path) -> None:
    """The same run with a writable state_dir: exit code 0, the checkpoint on disk."""
    state_dir = tmp_path / "state"
    code, text, samples = _run_until_sigterm(tmp_path, state_dir)
    assert value(samples, "mlmodel_exporter_checkpoint_failures_total") == 0
    assert code == 0, text[-2000:]
    assert not any(
        phrase in line.lower() for line in text.splitlines() for phrase in WITHOUT_FINAL_CHECKPOINT
    )
    saved = load_checkpoint(state_dir)
    assert saved is not None
    assert saved["sources"]["m/predictions"]["lines"] == 20_000
    assert temp_files(tmp_path) == []
