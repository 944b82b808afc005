"""The ``mlmodel_exporter_*`` samples: how the exporter itself is doing.

Per model: the outcome join (predictions and outcomes waiting, dropped unjoined) and the
scrape errors; per source file: lines read and rejected, rotations, whether it is up,
bytes not yet read; and the build, readiness and checkpoint writes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter import __version__
from exporter.collectors.isolation import ScrapeErrors
from exporter.ingest.engine import EngineSnapshot
from exporter.ingest.sources import SourceSnapshot
from exporter.state.model_state import ModelSnapshot

# every reason a line can be rejected for: each is exported, at 0 until it happens
REJECT_REASONS = ("parse", "schema", "timestamp", "too_long", "encoding", "duplicate", "late")

# key, kind, name, help: one sample per model each
JOIN_FAMILIES = (
    (
        "pending",
        GaugeMetricFamily,
        "mlmodel_exporter_pending_outcomes",
        "Predictions waiting for their outcome.",
    ),
    (
        "waiting",
        GaugeMetricFamily,
        "mlmodel_exporter_waiting_outcomes",
        "Outcomes read before their prediction, waiting for it.",
    ),
    (
        "expired",
        CounterMetricFamily,
        "mlmodel_exporter_expired_predictions",
        "Predictions dropped unjoined after max_delay or max_pending.",
    ),
    (
        "unmatched",
        CounterMetricFamily,
        "mlmodel_exporter_unmatched_outcomes",
        "Outcomes dropped without their prediction after max_delay or max_pending.",
    ),
)


def join_families() -> dict[str, Metric]:
    """The per-model join families, empty."""
    return {key: kind(name, text, labels=["model"]) for key, kind, name, text in JOIN_FAMILIES}


def add_join_samples(families: Mapping[str, Metric], model: ModelSnapshot) -> None:
    """One model's join samples, added to ``families`` (`join_families`)."""
    name = [model.model.name]
    families["pending"].add_metric(name, model.pending)
    families["waiting"].add_metric(name, model.waiting_outcomes)
    families["expired"].add_metric(name, model.expired_total)
    families["unmatched"].add_metric(name, model.unmatched_total)


def scrape_errors(models: tuple[ModelSnapshot, ...], errors: ScrapeErrors) -> Metric:
    """Failures so far, by model: every configured model (0 until one fails), and any
    other that failed."""
    family = CounterMetricFamily(
        "mlmodel_exporter_scrape_errors",
        "Times building a model's samples failed; each time the model's samples of "
        "that part (its model-quality and join figures, or its data-quality and drift "
        "figures) were left out of the scrape.",
        labels=["model"],
    )
    counts = dict.fromkeys((model.model.name for model in models), 0)
    counts.update(errors.counts())
    for name, count in sorted(counts.items()):
        family.add_metric([name], count)
    return family


@dataclass
class _File:
    """One source file's figures; two models may read one file: one series per file."""

    lines: int = 0
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REJECT_REASONS, 0))
    rotations: int = 0
    up: int = 1
    lag: int = 0

    def add(self, source: SourceSnapshot) -> None:
        self.lines += source.lines
        for reason, count in source.rejected.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + count
        self.rotations += source.stats.rotations
        self.up = min(self.up, int(source.stats.up))
        self.lag = max(self.lag, source.stats.lag_bytes)


def exporter_metrics(snap: EngineSnapshot) -> Iterator[Metric]:
    """The build, every source file's figures, readiness and the checkpoint writes."""
    build = GaugeMetricFamily(
        "mlmodel_exporter_build_info", "Always 1; the exporter's version.", labels=["version"]
    )
    build.add_metric([__version__], 1)
    yield build
    files: dict[str, _File] = {}
    for source in snap.sources:
        files.setdefault(source.source, _File()).add(source)
    yield from _file_metrics(files)
    ready = GaugeMetricFamily(
        "mlmodel_exporter_ready", "1 once the first pass over every source is done."
    )
    ready.add_metric([], int(snap.ready))
    failures = CounterMetricFamily(
        "mlmodel_exporter_checkpoint_failures",
        "Checkpoint writes that failed (each is retried a checkpoint interval later).",
    )
    failures.add_metric([], snap.checkpoint_failures)
    yield from (ready, failures)
    if snap.last_checkpoint_seconds is not None:
        checkpoint = GaugeMetricFamily(
            "mlmodel_exporter_last_checkpoint_timestamp_seconds",
            "Wall-clock time of the last checkpoint written.",
        )
        checkpoint.add_metric([], snap.last_checkpoint_seconds)
        yield checkpoint


def _file_metrics(files: Mapping[str, _File]) -> Iterator[Metric]:
    source = ["source"]
    lines = CounterMetricFamily(
        "mlmodel_exporter_lines", "Lines read from the source.", labels=source
    )
    rejected = CounterMetricFamily(
        "mlmodel_exporter_rejected_lines", "Lines rejected, by reason.", labels=[*source, "reason"]
    )
    rotations = CounterMetricFamily(
        "mlmodel_exporter_rotations", "Rotations and truncations seen.", labels=source
    )
    up = GaugeMetricFamily(
        "mlmodel_exporter_source_up", "1 while the source exists and is readable.", labels=source
    )
    lag = GaugeMetricFamily(
        "mlmodel_exporter_lag_bytes", "Bytes written but not yet read.", labels=source
    )
    for label, figures in sorted(files.items()):
        lines.add_metric([label], figures.lines)
        for reason, count in sorted(figures.rejected.items()):
            rejected.add_metric([label, reason], count)
        rotations.add_metric([label], figures.rotations)
        up.add_metric([label], figures.up)
        lag.add_metric([label], figures.lag)
    yield from (lines, rejected, rotations, up, lag)
