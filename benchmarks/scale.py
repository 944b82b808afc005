"""Scale: one exporter watching many models, measured against the targets of issue 13.

    python benchmarks/scale.py [--dir benchmarks/data] [--quick] [--large] [--keep]

Builds the case (feature data cached under ``--dir``, logs re-stamped each run):

* 10 models x 50 features (40 numeric, 10 categorical), windows [1h, 1d, 7d], binary task;
* per model a 5,000-row reference CSV and a 20,000-row CSV prediction log with the
  ``prediction`` score and the ``actual`` outcome in the row and an ISO 8601 ``timestamp``:
  rows 30 s apart (the rows of a log always span 600,000 s, 6.9 days), ending a minute
  before now, so every window's bucket ring is full;
* the config's other keys at their defaults (``checkpoint_interval`` 5s: checkpoints are
  written during the trickle as in production).

Then, in one run, against the real CLI as a process (``python -m exporter.cli run``):

* start to ``/-/ready`` (the first pass over all logs), and RSS (``VmRSS``) once ready;
* one scrape of ``/metrics``: the median of 5, and its sample count;
* 10 rows/s appended to one model's log for 20 s: the exporter's CPU (utime + stime over
  the wall time) and the bytes it wrote (``write_bytes``) in those 20 s;
* restart: SIGTERM, wait for the exit, start again on the same state_dir, to ``/-/ready``;
* growth with models x features (1x10, the main case, and 20x100 with ``--large``, which
  has fewer rows over the same span, said in its row): start to ready, RSS, state_dir
  size after the SIGTERM checkpoint, scrape time.

``--quick`` runs 3 models x 10 features x 2,000 rows (1,000 reference rows) in well under
a minute. Prints one line per figure: ``name: value (target <= X) PASS/MISS``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import yaml

SPAN_SECONDS = 600_000  # 20,000 rows 30 s apart; the 7d ring is 60 buckets of 2.8 h
END_BEFORE_NOW = 60.0  # the logs end a minute ago: trickled rows (stamped now) come after
WINDOWS = ["1h", "1d", "7d"]
CATEGORIES = np.array(["alpha", "beta", "gamma", "delta", "epsilon"])
CATEGORY_WEIGHTS = np.array([0.4, 0.25, 0.15, 0.12, 0.08])
TRICKLE_RATE = 10  # rows per second
TRICKLE_SECONDS = 20
SCRAPES = 5
POLL = 0.02  # seconds between checks of a condition
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
TRICKLE_MODEL = "m00"
T = TypeVar("T")


@dataclass(frozen=True)
class Shape:
    models: int
    features: int
    rows: int
    reference_rows: int

    @property
    def label(self) -> str:
        return f"{self.models}x{self.features}"

    @property
    def categorical(self) -> int:
        return self.features // 5

    @property
    def numeric(self) -> int:
        return self.features - self.categorical

    def feature_types(self) -> dict[str, str]:
        numeric = {f"num_{i}": "numeric" for i in range(self.numeric)}
        return numeric | {f"cat_{i}": "categorical" for i in range(self.categorical)}

    def describe(self) -> str:
        return (
            f"{self.models} models x {self.features} features ({self.numeric} numeric, "
            f"{self.categorical} categorical), {self.rows:,} log rows "
            f"({SPAN_SECONDS / self.rows:g} s apart) + {self.reference_rows:,} reference rows"
            " per model"
        )


MAIN = Shape(models=10, features=50, rows=20_000, reference_rows=5_000)
QUICK = Shape(models=3, features=10, rows=2_000, reference_rows=1_000)
SMALL = Shape(models=1, features=10, rows=20_000, reference_rows=5_000)
QUICK_SMALL = Shape(models=1, features=10, rows=2_000, reference_rows=1_000)
LARGE = Shape(models=20, features=100, rows=10_000, reference_rows=5_000)


# --- data ---------------------------------------------------------------------------------


def _frame(shape: Shape, rows: int, seed: int, shift: float) -> pd.DataFrame:
    """Features, a score from a few of them and an outcome drawn from the score; the
    first tenth of the numeric features shifted by ``shift`` standard deviations."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0.0, 1.0, (rows, shape.numeric))
    values[:, : max(1, shape.numeric // 10)] += shift
    logit = values[:, : min(3, shape.numeric)].sum(axis=1) * 0.8
    score = 1.0 / (1.0 + np.exp(-logit))
    frame = {
        "prediction": score.round(4),
        "actual": (rng.random(rows) < score).astype(int),
    }
    for i in range(shape.numeric):
        frame[f"num_{i}"] = (values[:, i] * (i + 1) + 10 * i).round(4)
    for i in range(shape.categorical):
        frame[f"cat_{i}"] = rng.choice(CATEGORIES, size=rows, p=CATEGORY_WEIGHTS)
    return pd.DataFrame(frame)


def cached_data(shape: Shape, root: Path, model: int) -> tuple[Path, Path]:
    """The model's reference CSV and log body (the log's rows without their timestamp),
    written once under ``root`` and reused later."""
    folder = root / f"scale-v1-{shape.features}f-{shape.rows}r-{shape.reference_rows}ref"
    folder.mkdir(parents=True, exist_ok=True)
    reference = folder / f"m{model:02d}-reference.csv"
    body = folder / f"m{model:02d}-body.csv"
    if not reference.exists():
        partial = reference.with_suffix(".part")
        _frame(shape, shape.reference_rows, seed=2 * model, shift=0.0).to_csv(partial, index=False)
        partial.replace(reference)
    if not body.exists():
        frame = _frame(shape, shape.rows, seed=2 * model + 1, shift=0.3)
        frame.insert(0, "id", [f"m{model:02d}-{i}" for i in range(shape.rows)])
        partial = body.with_suffix(".part")
        frame.to_csv(partial, index=False)
        partial.replace(body)
    return reference, body


def write_log(body: Path, log: Path, rows: int, end: float) -> list[str]:
    """The log: the body's rows stamped ``SPAN_SECONDS / rows`` apart up to ``end``.
    Returns the body's rows (without header), reused by the trickle."""
    header, *lines = body.read_text().splitlines()
    spacing = SPAN_SECONDS / rows
    stamps = end - spacing * np.arange(rows - 1, -1, -1)
    iso = np.datetime_as_string((stamps * 1e6).astype("datetime64[us]"), unit="us")
    with log.open("w") as handle:
        handle.write(f"timestamp,{header}\n")
        handle.writelines(f"{stamp}Z,{line}\n" for stamp, line in zip(iso, lines, strict=True))
    return lines


@dataclass
class Case:
    shape: Shape
    folder: Path
    config: Path
    state_dir: Path
    trickle_log: Path
    trickle_lines: list[str]


def build_case(shape: Shape, data: Path, folder: Path) -> Case:
    """Logs (stamped to end a minute ago), references and the config under ``folder``."""
    (folder / "logs").mkdir(parents=True)
    end = time.time() - END_BEFORE_NOW
    models, trickle_lines = [], []
    for index in range(shape.models):
        name = f"m{index:02d}"
        reference, body = cached_data(shape, data, index)
        lines = write_log(body, folder / "logs" / f"{name}.csv", shape.rows, end)
        if name == TRICKLE_MODEL:
            trickle_lines = lines
        models.append(
            {
                "name": name,
                "task": "binary",
                "predictions": {"path": f"logs/{name}.csv", "format": "csv"},
                "features": shape.feature_types(),
                "reference": {"path": str(reference.resolve())},
                "windows": WINDOWS,
            }
        )
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({"state_dir": "state", "models": models}, sort_keys=False))
    return Case(
        shape=shape,
        folder=folder,
        config=config,
        state_dir=folder / "state",
        trickle_log=folder / "logs" / f"{TRICKLE_MODEL}.csv",
        trickle_lines=trickle_lines,
    )


# --- the exporter as a process -------------------------------------------------------------


class ExporterExitedError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Exporter:
    """``python -m exporter.cli run`` on a free port; killed by ``close`` if still running."""

    def __init__(self, config: Path, timeout: float):
        self.config = config
        self.timeout = timeout
        self.log_path = config.with_name("exporter.log")
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def __enter__(self) -> Exporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        """Start and wait for ``/-/ready``; the seconds from the spawn to ready. A port
        taken between ``free_port`` and the bind is retried on another port."""
        for _attempt in range(3):
            try:
                return self._start_once()
            except ExporterExitedError as err:
                if "cannot listen" not in str(err):
                    raise
        raise RuntimeError("no free port after 3 attempts")

    def _start_once(self) -> float:
        self.port = free_port()
        with self.log_path.open("ab") as log:
            log.write(f"--- start on port {self.port}\n".encode())
            log.flush()
            started = time.perf_counter()
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "exporter.cli",
                    "run",
                    "--config.file",
                    str(self.config),
                    "--web.listen-address",
                    f"127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._ready, timeout=self.timeout, what="/-/ready")
        return time.perf_counter() - started

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-3000:]
            raise ExporterExitedError(f"exporter exited ({self.process.returncode}): {tail}")
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=5) as response:
                return response.status == 200
        except OSError:  # not listening yet, or 503 while the first pass runs
            return False

    def fetch(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=60) as response:
            return response.read().decode()

    def stop(self) -> float:
        """SIGTERM and wait for the exit (the final checkpoint); the seconds it took."""
        assert self.process is not None
        started = time.perf_counter()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=self.timeout)
        if code != 0:
            raise ExporterExitedError(f"exporter exited {code} on SIGTERM; see {self.log_path}")
        return time.perf_counter() - started

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def wait_for(condition: Callable[[], T | None], *, timeout: float, what: str) -> T:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(POLL)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


# --- /proc and /metrics --------------------------------------------------------------------


def proc_status_mb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{key}:"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(key)


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def io_counter(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        name, _, number = line.partition(":")
        if name == key:
            return int(number)
    raise KeyError(key)


def state_size_mb(state_dir: Path) -> float:
    return sum(p.stat().st_size for p in state_dir.rglob("*") if p.is_file()) / 1e6


def scrape(exporter: Exporter) -> tuple[float, int]:
    """Median seconds of ``SCRAPES`` scrapes of /metrics, and the samples in one."""
    times, text = [], ""
    for _ in range(SCRAPES):
        started = time.perf_counter()
        text = exporter.fetch("/metrics")
        times.append(time.perf_counter() - started)
    samples = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    return statistics.median(times), samples


def predictions(exporter: Exporter, model: str | None = None) -> float:
    """``mlmodel_predictions_total`` summed over versions (and models unless ``model``)."""
    pattern = re.compile(r"^mlmodel_predictions_total\{([^}]*)\} (\S+)$", re.MULTILINE)
    total = 0.0
    for labels, number in pattern.findall(exporter.fetch("/metrics")):
        if model is None or f'model="{model}"' in labels:
            total += float(number)
    return total


# --- the figures ---------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    value: float
    target: float
    unit: str
    shown: str = ""  # the value as printed, when more than "value unit"

    def line(self) -> str:
        shown = self.shown or f"{self.value:.{_digits(self.value)}f} {self.unit}"
        verdict = "PASS" if self.value <= self.target else "MISS"
        return f"{self.name}: {shown} (target <= {self.target:g} {self.unit}) {verdict}"


def _digits(value: float) -> int:
    return 2 if abs(value) < 10 else 1 if abs(value) < 100 else 0


@dataclass
class GrowthRow:
    shape: Shape
    ready: float
    rss_mb: float
    checkpoint_mb: float
    scrape: float
    samples: int


def measure_start(exporter: Exporter, case: Case, notes: list[str]) -> tuple[float, float]:
    """Seconds to ready and VmRSS (MB) once ready; checks every row was ingested."""
    ready = exporter.start()
    rss = proc_status_mb(exporter.pid, "VmRSS")
    ingested = predictions(exporter)
    expected = case.shape.models * case.shape.rows
    if ingested != expected:
        notes.append(f"{case.shape.label}: {ingested:,.0f} of {expected:,} rows ingested!")
    return ready, rss


def trickle(exporter: Exporter, case: Case, notes: list[str]) -> tuple[float, float]:
    """10 rows/s into one model's log for 20 s: (CPU share of a core, MB written)."""
    pid = exporter.pid
    before_rows = predictions(exporter, TRICKLE_MODEL)
    rows = TRICKLE_RATE * TRICKLE_SECONDS
    before_cpu, before_io = cpu_seconds(pid), io_counter(pid, "write_bytes")
    before_wchar = io_counter(pid, "wchar")
    started = time.monotonic()
    wall_started = time.time()
    with case.trickle_log.open("a") as handle:
        for i in range(rows):
            _sleep_until(started + i / TRICKLE_RATE)
            stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            handle.write(f"{stamp},{case.trickle_lines[i % len(case.trickle_lines)]}\n")
            handle.flush()
    _sleep_until(started + TRICKLE_SECONDS)
    wall = time.monotonic() - started
    cpu = (cpu_seconds(pid) - before_cpu) / wall
    written = (io_counter(pid, "write_bytes") - before_io) / 1e6
    wchar = (io_counter(pid, "wchar") - before_wchar) / 1e6
    ended = time.monotonic()
    wait_for(
        lambda: predictions(exporter, TRICKLE_MODEL) >= before_rows + rows,
        timeout=exporter.timeout,
        what="the trickled rows to be counted",
    )
    checkpointed = any(p.stat().st_mtime >= wall_started for p in case.state_dir.rglob("*"))
    notes.append(
        f"trickle: {rows} rows over {wall:.1f} s into {TRICKLE_MODEL}'s log, all counted "
        f"{time.monotonic() - ended:.2f} s after its end; {wchar:.1f} MB passed to write() "
        f"(wchar); a checkpoint written meanwhile: {'yes' if checkpointed else 'NO'}"
    )
    return cpu * 100, written


def _sleep_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


def run_main(case: Case, timeout: float, notes: list[str]) -> tuple[list[Figure], GrowthRow]:
    with Exporter(case.config, timeout) as exporter:
        ready, rss = measure_start(exporter, case, notes)
        notes.append(f"peak RSS (VmHWM) once ready: {proc_status_mb(exporter.pid, 'VmHWM'):.0f} MB")
        scrape_s, samples = scrape(exporter)
        cpu, written = trickle(exporter, case, notes)
        shutdown = exporter.stop()
        checkpoint = state_size_mb(case.state_dir)
        restart = exporter.start()
        notes.append(
            f"SIGTERM to exit (final checkpoint, {checkpoint:.1f} MB in state_dir): "
            f"{shutdown:.2f} s"
        )
        exporter.stop()
    figures = [
        Figure("start to /-/ready (first pass over all logs)", ready, 10, "s"),
        Figure("RSS of the exporter after ready (VmRSS)", rss, 400, "MB"),
        Figure(
            f"one scrape of /metrics (median of {SCRAPES})",
            scrape_s * 1000,
            250,
            "ms",
            f"{scrape_s * 1000:.0f} ms, {samples:,} samples",
        ),
        Figure(
            f"trickle {TRICKLE_RATE} rows/s for {TRICKLE_SECONDS} s: CPU of the exporter",
            cpu,
            5,
            "% of a core",
        ),
        Figure(
            f"trickle {TRICKLE_RATE} rows/s for {TRICKLE_SECONDS} s: bytes written (write_bytes)",
            written,
            20,
            "MB",
        ),
        Figure("restart (SIGTERM, exit, start on the same state_dir) to /-/ready", restart, 5, "s"),
    ]
    return figures, GrowthRow(case.shape, ready, rss, checkpoint, scrape_s, samples)


def run_growth(case: Case, timeout: float, notes: list[str]) -> GrowthRow:
    with Exporter(case.config, timeout) as exporter:
        ready, rss = measure_start(exporter, case, notes)
        scrape_s, samples = scrape(exporter)
        exporter.stop()
    return GrowthRow(case.shape, ready, rss, state_size_mb(case.state_dir), scrape_s, samples)


def print_growth(rows: list[GrowthRow]) -> None:
    print("\ngrowth with models x features (checkpoint: state_dir after the SIGTERM checkpoint)")
    print(
        f"{'models x features':>17} {'rows/model':>10} {'ready s':>8} {'RSS MB':>8} "
        f"{'checkpoint MB':>13} {'scrape ms':>9} {'samples':>8}"
    )
    for row in sorted(rows, key=lambda r: r.shape.models * r.shape.features):
        print(
            f"{row.shape.label:>17} {row.shape.rows:>10,} {row.ready:>8.2f} {row.rss_mb:>8.0f} "
            f"{row.checkpoint_mb:>13.2f} {row.scrape * 1000:>9.0f} {row.samples:>8,}"
        )


def config_defaults(case: Case) -> str:
    from exporter.config import load_config  # noqa: PLC0415 - the exporter's own defaults

    config = load_config(case.config)
    return (
        f"checkpoint_interval {config.checkpoint_interval:g} s, poll_interval "
        f"{config.poll_interval:g} s, window_buckets {config.window_buckets} (defaults)"
    )


def benchmark(args: argparse.Namespace, work: Path) -> None:
    main_shape, growth = (QUICK, [QUICK_SMALL]) if args.quick else (MAIN, [SMALL])
    if args.large:
        growth.append(LARGE)
    print("building the cases (feature data cached under --dir) ...", file=sys.stderr)
    case = build_case(main_shape, args.dir, work / main_shape.label)
    others = [build_case(shape, args.dir, work / shape.label) for shape in growth]
    print(f"case: {main_shape.describe()}, windows {', '.join(WINDOWS)}, binary")
    print(config_defaults(case))
    notes: list[str] = []
    figures, main_row = run_main(case, args.timeout, notes)
    for figure in figures:
        print(figure.line())
    for note in notes:
        print(f"  {note}")
    rows = [main_row, *(run_growth(other, args.timeout, notes) for other in others)]
    print_growth(rows)
    for shape in growth:
        if shape.rows != main_shape.rows:
            print(f"  {shape.label}: {shape.describe()} (fewer rows, same 6.9-day span)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--quick", action="store_true", help="3 models x 10 features x 2,000 rows")
    parser.add_argument("--large", action="store_true", help="add 20x100 to the growth table")
    parser.add_argument("--keep", action="store_true", help="keep the run's logs and state")
    parser.add_argument("--timeout", type=float, default=600.0, help="deadline of each wait (s)")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each figure as it is measured
    args.dir.mkdir(parents=True, exist_ok=True)
    # A SIGTERM to the benchmark unwinds like Ctrl-C: the exporters are killed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="scale-run-", dir=args.dir))
    started = time.perf_counter()
    try:
        benchmark(args, work)
    finally:
        if args.keep:
            print(f"run kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\nbenchmark wall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
