"""Fixtures shared across the test folders: exporter processes killed at a test's end, and
one demo scraped by a real Prometheus for the whole session."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack_support import Demo, DemoStack, Prometheus, prometheus_binary, write_prometheus_config
from support import Exporter


@pytest.fixture
def exporters() -> Iterator[list[Exporter]]:
    """Exporter processes started by a test; killed at its end whatever happened."""
    started: list[Exporter] = []
    yield started
    for exporter in started:
        exporter.kill()


@pytest.fixture
def start_exporter(exporters: list[Exporter]):
    def start(config: Path, **kwargs: object) -> Exporter:
        exporter = Exporter(config, **kwargs).start()  # type: ignore[arg-type]
        exporters.append(exporter)
        return exporter

    return start


@pytest.fixture(scope="session")
def demo_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoStack]:
    """The demo (drift after 20 s) and a real Prometheus scraping it every second with the
    shipped rules, started by the first test that asks and stopped when the session ends:
    the minute or two the demo takes to produce every figure is waited for once."""
    prometheus_binary()  # skip (or fail under CI) before starting anything
    from exporter.demo.config import demo_config  # noqa: PLC0415 - only the demo stack needs it

    workdir = tmp_path_factory.mktemp("demo-stack")
    demo = Demo(workdir / "demo")
    prometheus = Prometheus(workdir / "prometheus")
    try:
        started = time.monotonic()
        demo.start(timeout=60.0)
        write_prometheus_config(prometheus.workdir, exporter=demo.address)
        prometheus.start()
        models = {m["name"]: m["task"] for m in demo_config(demo.log_dir)["models"]}
        yield DemoStack(demo, prometheus, models, started)
    finally:
        prometheus.stop()
        demo.stop()
