"""The Prometheus collector: every sample is built at scrape time from an engine snapshot.

Nothing is kept between scrapes, so a window that empties or a label value that goes away
simply stops being exported. The samples are the model's own (`exporter.collectors.model_quality`),
the exporter's (`exporter.collectors.health`) and those of any ``extra`` collector, such as
`exporter.collectors.drift.MonitorCollector`.

A scrape never fails whole because of one model: each model's samples are built apart and
added only once all of them are built; a model whose samples raise is left out of that
scrape (nothing half-built), the failure is logged (rate-limited) and counted in
``mlmodel_exporter_scrape_errors_total{model}``, kept across scrapes. Extras get the same
`ScrapeErrors` to isolate their own per-model sections.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from exporter.collectors import health
from exporter.collectors.isolation import ScrapeErrors, isolated_samples
from exporter.collectors.model_quality import add_model_quality_samples, model_quality_families
from exporter.ingest.engine import EngineSnapshot
from exporter.state.model_state import ModelSnapshot

ExtraCollector = Callable[[EngineSnapshot, ScrapeErrors], Iterable[Metric]]


class ExporterCollector(Collector):
    """Yields every ``mlmodel_*`` family from a fresh engine snapshot on each scrape."""

    def __init__(
        self,
        snapshot: Callable[[], EngineSnapshot],
        extra: Iterable[ExtraCollector] = (),
    ) -> None:
        self._snapshot = snapshot
        self._extra = tuple(extra)
        self.errors = ScrapeErrors()

    def describe(self) -> list[Metric]:
        return []  # families depend on config and data; no checks at registration

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        families = {**model_quality_families(), **health.join_families()}
        for model in snap.models:
            build = functools.partial(_model_samples, model=model)
            isolated_samples(self.errors, model.model.name, "model_quality", families, build)
        yield from families.values()
        for extra in self._extra:
            yield from extra(snap, self.errors)
        yield health.scrape_errors(snap.models, self.errors)
        yield from health.exporter_metrics(snap)


def _model_samples(families: Mapping[str, Metric], model: ModelSnapshot) -> None:
    """Every per-model sample but those of its monitor: one model's part
    ``model_quality`` of a scrape (its model-quality and join figures)."""
    add_model_quality_samples(families, model)
    health.add_join_samples(families, model)
