"""A scrape never fails whole because of one model: each model's samples are built apart
and added only once all of them are built, so a model whose samples raise is left out of
that scrape (nothing half-built) while every other model's samples are all there. The
failure is logged (rate-limited) and counted in ``mlmodel_exporter_scrape_errors_total``
{model}, kept across scrapes; /metrics still answers 200 and passes promtool.

Two parts of a model's samples are built apart: its quality figures (`ExporterCollector`)
and its data-quality and drift figures (`MonitorCollector`); a failure in one leaves the
other. Failures are injected through collaborators the collectors are given (the
snapshot function, a model's monitor), not by patching the collectors."""

from __future__ import annotations

import dataclasses
import logging
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from support import Samples, assert_promtool_clean, parse_samples, value

from exporter.collectors.collector import ExporterCollector
from exporter.collectors.drift import MonitorCollector
from exporter.collectors.isolation import ScrapeErrors
from exporter.config import config_from_mapping
from exporter.ingest.engine import Engine, EngineSnapshot
from exporter.ingest.tailer import Tailer
from exporter.monitor.build import build_monitors, monitor_factory
from exporter.monitor.monitor import Monitor
from exporter.state.model_state import WindowSnapshot
from exporter.stats.model_quality import ModelQualityCounts
from exporter.web.server import ExporterHTTPServer

START = 1_717_200_000
ERRORS = "mlmodel_exporter_scrape_errors_total"
MONITOR_FAMILIES = ("mlmodel_feature_", "mlmodel_drifted_", "mlmodel_prediction_drift")


def rows(model: str) -> str:
    """30 binary predictions with outcomes and a numeric feature, a few out of range."""
    lines = ["timestamp,prediction,actual,x\n"]
    for i in range(30):
        x = 150 if i % 10 == 0 else i
        lines.append(f"{START + i * 60},{0.9 if i % 3 else 0.1},{i % 2},{x}\n")
    return "".join(lines)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[Engine, dict[str, Monitor]]]:
    """Models ``a`` and ``b``, each with its log read, and their monitors (data quality of
    feature ``x``)."""
    models = []
    for name in ("a", "b"):
        (tmp_path / f"{name}.csv").write_text(rows(name))
        models.append(
            {
                "name": name,
                "task": "binary",
                "predictions": {"path": f"{name}.csv"},
                "features": {"x": {"type": "numeric", "max": 100}},
                "windows": ["1h", "1d"],
            }
        )
    config = config_from_mapping(
        {"state_dir": str(tmp_path / "state"), "models": models}, base_dir=tmp_path
    )
    monitors = build_monitors(config)
    running = Engine(
        config,
        clock=lambda: START + 86400,
        monitor_factory=monitor_factory(monitors),
        tailer_factory=Tailer,
        checkpoints=False,
        parse_ahead=None,
    )
    try:
        while running.step():
            pass
        yield running, monitors
    finally:
        running.close()


def corrupt(snapshot: Callable[[], EngineSnapshot], model: str) -> Callable[[], EngineSnapshot]:
    """``snapshot``, with ``model``'s window counts missing their confusion matrix (as
    a damaged checkpoint could leave them): building its quality figures raises after its
    totals were built."""

    def damaged(window: WindowSnapshot) -> WindowSnapshot:
        return dataclasses.replace(
            window, model_quality={"": ModelQualityCounts(predictions=3, outcomes=3)}
        )

    def broken() -> EngineSnapshot:
        snap = snapshot()
        models = tuple(
            dataclasses.replace(entry, windows=tuple(map(damaged, entry.windows)))
            if entry.model.name == model
            else entry
            for entry in snap.models
        )
        return dataclasses.replace(snap, models=models)

    return broken


class FailingMonitor:
    """A model's monitor whose window report raises."""

    def window_report(self, features: Any) -> None:
        raise RuntimeError("window report failed")


def text_of(collector: ExporterCollector) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry).decode()


def of_model(samples: Samples, model: str) -> Samples:
    """The samples labelled with ``model``, but for the error counter."""
    return {key: v for key, v in samples.items() if ("model", model) in key[1] and key[0] != ERRORS}


def fetch_metrics(collector: ExporterCollector) -> tuple[int, str]:
    """One GET /metrics through the real HTTP server: (status, body)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    server = ExporterHTTPServer(("127.0.0.1", 0), registry, lambda: True)
    server.start_background()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    finally:
        server.shutdown()
        server.server_close()


def test_a_model_whose_figures_raise_loses_only_its_own_samples(engine) -> None:
    """Model b's quality figures raise: /metrics answers 200 and is promtool-clean, model a's
    samples are exactly those of a scrape without the failure, b has no per-model sample
    at all (not even the totals built before the failure), and b's error counter is 1,
    then 2 at the next scrape, while a's stays 0."""
    running, _ = engine
    clean = parse_samples(text_of(ExporterCollector(running.snapshot)))
    assert of_model(clean, "a")
    assert of_model(clean, "b")
    collector = ExporterCollector(corrupt(running.snapshot, "b"))
    for scrape in (1, 2):
        status, text = fetch_metrics(collector)
        assert status == 200
        samples = parse_samples(text)
        assert of_model(samples, "a") == of_model(clean, "a")
        assert of_model(samples, "b") == {}
        assert value(samples, ERRORS, model="b") == scrape
        assert value(samples, ERRORS, model="a") == 0
        assert value(samples, "mlmodel_exporter_build_info", version="0.1.0") == 1
        assert_promtool_clean(text)


def test_a_model_whose_drift_figures_raise_loses_only_those(engine) -> None:
    """Model b's monitor raises: b's data-quality and drift samples are gone and counted,
    b's quality figures and all of model a's samples (drift included) are there."""
    running, monitors = engine
    clean = parse_samples(
        text_of(ExporterCollector(running.snapshot, extra=[MonitorCollector(monitors)]))
    )
    assert value(clean, "mlmodel_feature_out_of_range_ratio", model="b", feature="x", window="1d")
    failing = MonitorCollector({"a": monitors["a"], "b": FailingMonitor()})  # type: ignore[dict-item]
    collector = ExporterCollector(running.snapshot, extra=[failing])
    for scrape in (1, 2):
        text = text_of(collector)
        samples = parse_samples(text)
        assert of_model(samples, "a") == of_model(clean, "a")
        b = of_model(samples, "b")
        assert b == {k: v for k, v in of_model(clean, "b").items() if not drift(k[0])}
        assert any(drift(name) for name, _ in of_model(clean, "b"))
        assert value(samples, ERRORS, model="b") == scrape
        assert value(samples, ERRORS, model="a") == 0
        assert_promtool_clean(text)


def drift(name: str) -> bool:
    return name.startswith(MONITOR_FAMILIES)


def test_both_parts_failing_count_twice_a_scrape(engine) -> None:
    """Quality and drift figures of model b both raising: two failures a scrape, and b has
    no per-model sample at all."""
    running, monitors = engine
    failing = MonitorCollector({"a": monitors["a"], "b": FailingMonitor()})  # type: ignore[dict-item]
    collector = ExporterCollector(corrupt(running.snapshot, "b"), extra=[failing])
    for scrape in (1, 2):
        samples = parse_samples(text_of(collector))
        assert of_model(samples, "b") == {}
        assert of_model(samples, "a")
        assert value(samples, ERRORS, model="b") == 2 * scrape


def test_failures_are_logged_at_most_five_times_a_minute_per_model(
    engine, caplog: pytest.LogCaptureFixture
) -> None:
    """Seven failing scrapes within a minute: seven counted, five logged, each naming the
    model and the exception; a minute later the next is logged with the number left out."""
    running, _ = engine
    now = [0.0]
    errors = ScrapeErrors(logging.getLogger("test.scrape"), lambda: now[0])
    collector = ExporterCollector(corrupt(running.snapshot, "b"))
    collector.errors = errors
    with caplog.at_level(logging.ERROR, logger="test.scrape"):
        for _ in range(7):
            text_of(collector)
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 5
        assert all(
            "model 'b'" in m and "3 outcomes without a confusion matrix" in m for m in messages
        )
        now[0] = 61.0
        samples = parse_samples(text_of(collector))
    assert value(samples, ERRORS, model="b") == 8
    assert [r.getMessage() for r in caplog.records][5:] == [
        "scrape b model_quality: 2 more similar messages suppressed",
        caplog.records[6].getMessage(),
    ]
    assert "model 'b'" in caplog.records[6].getMessage()


def test_the_error_counter_is_there_for_every_model_before_any_failure(engine) -> None:
    """Without failures each configured model has its counter at 0, so rates work from the
    first scrape."""
    running, monitors = engine
    samples = parse_samples(
        text_of(ExporterCollector(running.snapshot, extra=[MonitorCollector(monitors)]))
    )
    assert value(samples, ERRORS, model="a") == 0
    assert value(samples, ERRORS, model="b") == 0
