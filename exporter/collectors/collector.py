"""The Prometheus collector: every sample is built at scrape time from an engine snapshot.

Nothing is kept between scrapes, so a window that empties or a label value that goes away
simply stops being exported. Exposed families (``# HELP`` lines as yielded)::

    mlmodel_predictions_total{model,model_version}            counter
    mlmodel_outcomes_total{model,model_version}               counter
    mlmodel_confusion_total{model,model_version,actual,predicted}  counter
    mlmodel_last_prediction_timestamp_seconds{model}          gauge
    mlmodel_last_outcome_timestamp_seconds{model}             gauge
    mlmodel_window_predictions / mlmodel_window_outcomes{model,model_version,window}
    mlmodel_{accuracy,precision,recall,f1,roc_auc}_ratio, mlmodel_log_loss,
    mlmodel_mae, mlmodel_rmse, mlmodel_mape_ratio, mlmodel_r2 {model,model_version,window}
    mlmodel_alert_threshold{model,metric}
    mlmodel_exporter_scrape_errors_total{model}               counter
    mlmodel_exporter_* (self-metrics)

A scrape never fails whole because of one model: each model's samples are built apart and
added only once all of them are built; a model whose samples raise is left out of that
scrape (nothing half-built), the failure is logged (rate-limited) and counted in
``mlmodel_exporter_scrape_errors_total{model}``, kept across scrapes. Extras such as
`exporter.monitor.monitor.MonitorCollector` get the same `ScrapeErrors` to isolate their own
per-model sections.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.collectors.isolation import ScrapeErrors, isolated_samples
from exporter.ingest.engine import EngineSnapshot
from exporter.state.model_state import ModelSnapshot
from exporter.stats import quality

log = logging.getLogger("ml_model_exporter")

REJECT_REASONS = ("parse", "schema", "timestamp", "too_long", "encoding", "duplicate", "late")

QUALITY_METRICS = (
    # (name in the aggregate result, metric name, help)
    ("accuracy", "mlmodel_accuracy_ratio", "Share of predictions that match the outcome."),
    (
        "precision",
        "mlmodel_precision_ratio",
        "Precision (binary: positive class; multiclass: macro average).",
    ),
    (
        "recall",
        "mlmodel_recall_ratio",
        "Recall (binary: positive class; multiclass: macro average).",
    ),
    ("f1", "mlmodel_f1_ratio", "F1 score (binary: positive class; multiclass: macro average)."),
    ("roc_auc", "mlmodel_roc_auc_ratio", "Area under the ROC curve of the scores (binary)."),
    ("log_loss", "mlmodel_log_loss", "Mean binary cross-entropy of the scores (binary)."),
    ("mae", "mlmodel_mae", "Mean absolute error (regression)."),
    ("rmse", "mlmodel_rmse", "Root mean squared error (regression)."),
    ("mape", "mlmodel_mape_ratio", "Mean absolute percentage error as a ratio (regression)."),
    ("r2", "mlmodel_r2", "Coefficient of determination (regression)."),
)

WINDOW_LABELS = ["model", "model_version", "window"]


ExtraCollector = Callable[[EngineSnapshot, ScrapeErrors], Iterable[Metric]]


def window_quality(task: str, aggregate: dict[str, Any]) -> dict[str, float]:
    """The quality figures of one window and model version, from its summed aggregate."""
    outcomes = int(aggregate.get("outcomes", 0))
    if outcomes == 0:
        return {}
    if task == "regression":
        return quality.regression_metrics(
            count=outcomes,
            abs_error_sum=float(aggregate["abs_error_sum"]),
            squared_error_sum=float(aggregate["squared_error_sum"]),
            abs_percentage_error_sum=float(aggregate["abs_percentage_error_sum"]),
            actual_sum=float(aggregate["actual_sum"]),
            actual_squared_sum=float(aggregate["actual_squared_sum"]),
        )
    confusion = np.asarray(aggregate["confusion"])
    if task == "multiclass":
        return quality.multiclass_metrics(confusion)
    result = quality.binary_metrics(confusion)
    auc = quality.roc_auc_from_histograms(
        np.asarray(aggregate["score_positive"]), np.asarray(aggregate["score_negative"])
    )
    if auc is not None:
        result["roc_auc"] = auc
    loss = quality.log_loss(float(aggregate["log_loss_sum"]), outcomes)
    if loss is not None:
        result["log_loss"] = loss
    return result


def _model_families() -> dict[str, Metric]:
    """The per-model families, empty, in the order they are yielded."""
    families: dict[str, Metric] = {
        "predictions": CounterMetricFamily(
            "mlmodel_predictions", "Predictions ingested.", labels=["model", "model_version"]
        ),
        "outcomes": CounterMetricFamily(
            "mlmodel_outcomes",
            "Predictions whose outcome is known.",
            labels=["model", "model_version"],
        ),
        "confusion": CounterMetricFamily(
            "mlmodel_confusion",
            "Classification outcomes by actual and predicted class (binary: 1 = positive "
            "class, 0 = other); sum across exporter shards.",
            labels=["model", "model_version", "actual", "predicted"],
        ),
        "last_prediction": GaugeMetricFamily(
            "mlmodel_last_prediction_timestamp_seconds",
            "Event time of the newest prediction (the model's watermark).",
            labels=["model"],
        ),
        "last_outcome": GaugeMetricFamily(
            "mlmodel_last_outcome_timestamp_seconds",
            "Time of the newest outcome (its event time if the log gives one, else arrival).",
            labels=["model"],
        ),
        "window_predictions": GaugeMetricFamily(
            "mlmodel_window_predictions", "Predictions in the window.", labels=WINDOW_LABELS
        ),
        "window_outcomes": GaugeMetricFamily(
            "mlmodel_window_outcomes",
            "Predictions in the window whose outcome is known.",
            labels=WINDOW_LABELS,
        ),
    }
    for key, name, text in QUALITY_METRICS:
        families[key] = GaugeMetricFamily(name, text, labels=WINDOW_LABELS)
    families["thresholds"] = GaugeMetricFamily(
        "mlmodel_alert_threshold",
        "Configured alert thresholds (durations in seconds), for rules and dashboards.",
        labels=["model", "metric"],
    )
    families["pending"] = GaugeMetricFamily(
        "mlmodel_exporter_pending_outcomes",
        "Predictions waiting for their outcome.",
        labels=["model"],
    )
    families["waiting"] = GaugeMetricFamily(
        "mlmodel_exporter_waiting_outcomes",
        "Outcomes read before their prediction, waiting for it.",
        labels=["model"],
    )
    families["expired"] = CounterMetricFamily(
        "mlmodel_exporter_expired_predictions",
        "Predictions dropped unjoined after max_delay or max_pending.",
        labels=["model"],
    )
    families["unmatched"] = CounterMetricFamily(
        "mlmodel_exporter_unmatched_outcomes",
        "Outcomes dropped without their prediction after max_delay or max_pending.",
        labels=["model"],
    )
    return families


def _add_model_samples(families: Mapping[str, Metric], model: ModelSnapshot) -> None:
    """Every per-model sample of one model, added to ``families`` (`_model_families`)."""
    name = model.model.name
    for version, count in sorted(model.predictions_total.items()):
        families["predictions"].add_metric([name, version], count)
        families["outcomes"].add_metric([name, version], model.outcomes_total.get(version, 0))
    for (version, actual, predicted), count in sorted(model.confusion_total.items()):
        families["confusion"].add_metric([name, version, actual, predicted], count)
    if model.watermark is not None:
        families["last_prediction"].add_metric([name], model.watermark)
    if model.last_outcome_timestamp is not None:
        families["last_outcome"].add_metric([name], model.last_outcome_timestamp)
    for window in model.windows:
        for version, aggregate in sorted(window.quality.items()):
            labels = [name, version, window.window.name]
            n_predictions = int(aggregate.get("predictions", 0))
            n_outcomes = int(aggregate.get("outcomes", 0))
            if n_predictions == 0 and n_outcomes == 0:
                continue
            families["window_predictions"].add_metric(labels, n_predictions)
            families["window_outcomes"].add_metric(labels, n_outcomes)
            for key, value in window_quality(model.model.task, aggregate).items():
                families[key].add_metric(labels, value)
    for metric, value in sorted(model.model.thresholds.items()):
        families["thresholds"].add_metric([name, metric], value)
    families["pending"].add_metric([name], model.pending)
    families["waiting"].add_metric([name], model.waiting_outcomes)
    families["expired"].add_metric([name], model.expired_total)
    families["unmatched"].add_metric([name], model.unmatched_total)


class ExporterCollector(Collector):
    """Yields every ``mlmodel_*`` family from a fresh engine snapshot on each scrape."""

    def __init__(
        self,
        snapshot: Callable[[], EngineSnapshot],
        extra: Iterable[ExtraCollector] = (),
        *,
        errors: ScrapeErrors | None = None,
    ) -> None:
        self._snapshot = snapshot
        self._extra = tuple(extra)
        self.errors = errors if errors is not None else ScrapeErrors()

    def describe(self) -> list[Metric]:
        return []  # families depend on config and data; no checks at registration

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        yield from self._model_metrics(snap.models)
        for extra in self._extra:
            yield from extra(snap, self.errors)
        yield self._scrape_errors(snap.models)
        yield from self._source_metrics(snap)

    # --- per model -------------------------------------------------------------
    def _model_metrics(self, models: tuple[ModelSnapshot, ...]) -> Iterator[Metric]:
        families = _model_families()
        for model in models:
            isolated_samples(
                self.errors,
                model.model.name,
                "quality",
                families,
                functools.partial(_add_model_samples, model=model),
            )
        yield from families.values()

    def _scrape_errors(self, models: tuple[ModelSnapshot, ...]) -> Metric:
        """Failures so far, by model: every configured model (0 until one fails), and any
        other that failed."""
        errors = CounterMetricFamily(
            "mlmodel_exporter_scrape_errors",
            "Times building a model's samples failed; each time the model's samples (of "
            "that part: quality or drift) were left out of the scrape.",
            labels=["model"],
        )
        counts = dict.fromkeys((model.model.name for model in models), 0)
        counts.update(self.errors.counts())
        for name, count in sorted(counts.items()):
            errors.add_metric([name], count)
        return errors

    # --- exporter itself -----------------------------------------------------------
    def _source_metrics(self, snap: EngineSnapshot) -> Iterator[Metric]:
        build = GaugeMetricFamily(
            "mlmodel_exporter_build_info", "Always 1; the exporter's version.", labels=["version"]
        )
        build.add_metric([__version__], 1)
        lines = CounterMetricFamily(
            "mlmodel_exporter_lines", "Lines read from the source.", labels=["source"]
        )
        rejected = CounterMetricFamily(
            "mlmodel_exporter_rejected_lines",
            "Lines rejected, by reason.",
            labels=["source", "reason"],
        )
        rotations = CounterMetricFamily(
            "mlmodel_exporter_rotations",
            "Rotations and truncations seen.",
            labels=["source"],
        )
        up = GaugeMetricFamily(
            "mlmodel_exporter_source_up",
            "1 while the source exists and is readable.",
            labels=["source"],
        )
        lag = GaugeMetricFamily(
            "mlmodel_exporter_lag_bytes", "Bytes written but not yet read.", labels=["source"]
        )
        merged: dict[str, dict[str, Any]] = {}
        for source in snap.sources:  # two models may read one file: one series per file
            entry = merged.setdefault(
                source.source,
                {
                    "lines": 0,
                    "rejected": dict.fromkeys(REJECT_REASONS, 0),
                    "rotations": 0,
                    "up": 1,
                    "lag": 0,
                },
            )
            entry["lines"] += source.lines
            for reason, count in source.rejected.items():
                entry["rejected"][reason] = entry["rejected"].get(reason, 0) + count
            entry["rotations"] += source.stats.rotations
            entry["up"] = min(entry["up"], int(source.stats.up))
            entry["lag"] = max(entry["lag"], source.stats.lag_bytes)
        for label, entry in sorted(merged.items()):
            lines.add_metric([label], entry["lines"])
            for reason, count in sorted(entry["rejected"].items()):
                rejected.add_metric([label, reason], count)
            rotations.add_metric([label], entry["rotations"])
            up.add_metric([label], entry["up"])
            lag.add_metric([label], entry["lag"])
        ready = GaugeMetricFamily(
            "mlmodel_exporter_ready", "1 once the first pass over every source is done."
        )
        ready.add_metric([], int(snap.ready))
        failures = CounterMetricFamily(
            "mlmodel_exporter_checkpoint_failures",
            "Checkpoint writes that failed (each is retried a checkpoint interval later).",
        )
        failures.add_metric([], snap.checkpoint_failures)
        yield from (build, lines, rejected, rotations, up, lag, ready, failures)
        if snap.last_checkpoint_seconds is not None:
            checkpoint = GaugeMetricFamily(
                "mlmodel_exporter_last_checkpoint_timestamp_seconds",
                "Wall-clock time of the last checkpoint written.",
            )
            checkpoint.add_metric([], snap.last_checkpoint_seconds)
            yield checkpoint
