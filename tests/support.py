"""Shared test helpers: free ports, the real CLI as a process, real scrapes, deadlines."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from exporter.collectors.collector import ExporterCollector
from exporter.collectors.drift import MonitorCollector
from exporter.config import Config
from exporter.ingest.engine import Engine
from exporter.monitor.build import build_monitors, monitor_factory

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def require_binary(name: str) -> str:
    """Path of a real binary; under CI=true its absence fails the test instead of skipping."""
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} is not installed (CI must install it: see .ci/run)")
    pytest.skip(f"{name} is not installed")
    raise AssertionError  # unreachable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    condition: Callable[[], T | None], *, timeout: float = 20.0, what: str = "condition"
) -> T:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, AssertionError, KeyError) as err:
            last_error = err
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error})"
    )


def fetch(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_samples(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def select(samples: Samples, name: str, **labels: str) -> dict[frozenset, float]:
    """All samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return {key[1]: v for key, v in samples.items() if key[0] == name and wanted <= key[1]}


class Exporter:
    """``ml-model-exporter run`` as a real process on a free port."""

    def __init__(self, config: Path, *, log: Path | None = None, args: tuple[str, ...] = ()):
        self.config = config
        self.port = free_port()
        self.log_path = log or config.with_suffix(".log")
        self.args = args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Exporter:
        self.port = free_port()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            cli(
                "run",
                "--config.file",
                str(self.config),
                "--web.listen-address",
                f"127.0.0.1:{self.port}",
                *self.args,
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for(self._answers, what="exporter to listen")
        return self

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"exporter exited: {self.log_path.read_text()[-3000:]}")
        fetch(f"http://127.0.0.1:{self.port}/-/healthy")
        return True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def metrics_text(self) -> str:
        return fetch(f"{self.url}/metrics")

    def samples(self) -> Samples:
        return parse_samples(self.metrics_text())

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def read_everything(config: Config, *, now: float) -> CollectorRegistry:
    """The registry `run` serves, after the exporter has read every log once with the
    clock at ``now`` (in this process, no checkpoint, no parse thread)."""
    monitors = build_monitors(config)
    engine = Engine(
        config,
        clock=lambda: now,
        monitor_factory=monitor_factory(monitors),
        checkpoints=False,
        parse_ahead=None,
    )
    while engine.step():
        pass
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(engine.snapshot, extra=[MonitorCollector(monitors)]))
    engine.close()
    return registry


def cli(*args: str) -> list[str]:
    """The argv of the real command line in this interpreter, as a user runs it."""
    return [sys.executable, "-m", "exporter.cli", *args]


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the command line to its end; its exit code and output, text."""
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=timeout, check=False)


def assert_promtool_clean(text: str) -> None:
    """`promtool check metrics` accepts this exposition without a word."""
    promtool = require_binary("promtool")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""
