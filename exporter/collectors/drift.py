"""The data-quality and drift families of every monitored model, built at scrape time.

`MonitorCollector` is an ``extra`` of `exporter.collectors.collector.ExporterCollector`:
called with the engine snapshot, it yields (``# HELP`` shortened)::

    mlmodel_feature_{missing,invalid,out_of_range,unseen_category}_ratio{model,feature,window}
    mlmodel_feature_drift_score{model,feature,window,method}   every method computed
    mlmodel_feature_drift_pvalue{model,feature,window,method}  ks, chisquare
    mlmodel_feature_drifted{model,feature,window}              the configured test
    mlmodel_drifted_features_ratio{model,window}
    mlmodel_prediction_drift_score{model,window,method}
    mlmodel_prediction_drifted{model,window,method}            method = the deciding test
    mlmodel_outcome_drift_score{model,window,method}
    mlmodel_reconstruction_error{model,window}
    mlmodel_multivariate_drifted{model,window}

A window without rows yields nothing; drift needs ``drift.min_rows`` binned rows. Each
model's samples are built apart (`exporter.collectors.isolation.isolated_samples`): a
model whose samples raise is left out of the scrape and the failure goes to ``errors``
(the `ScrapeErrors` of the ExporterCollector), which logs and counts it; the other
models' samples are all there.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily, Metric

from exporter.collectors.isolation import ScrapeErrors, isolated_samples
from exporter.ingest.engine import EngineSnapshot
from exporter.monitor.report import WindowReport
from exporter.state.model_state import ModelSnapshot
from exporter.stats.profile import FeatureCounts

__all__ = ["MonitorCollector"]

FEATURE = ["model", "feature", "window"]
WINDOW = ["model", "window"]

# (key, metric name, help, labels), in the order they are yielded; the data-quality keys
# are those of `exporter.monitor.report.data_quality_ratios`
FAMILIES: tuple[tuple[str, str, str, list[str]], ...] = (
    (
        "missing",
        "mlmodel_feature_missing_ratio",
        "Share of the window's rows whose feature value is missing (null, empty or NaN).",
        FEATURE,
    ),
    (
        "invalid",
        "mlmodel_feature_invalid_ratio",
        "Share of the window's rows whose numeric feature value is not a finite number "
        "(e.g. text).",
        FEATURE,
    ),
    (
        "out_of_range",
        "mlmodel_feature_out_of_range_ratio",
        "Share of the window's rows whose numeric feature value lies outside the configured "
        "min/max, else outside the reference range.",
        FEATURE,
    ),
    (
        "unseen_category",
        "mlmodel_feature_unseen_category_ratio",
        "Share of the window's rows whose categorical feature value never occurs in the reference.",
        FEATURE,
    ),
    (
        "score",
        "mlmodel_feature_drift_score",
        "Drift of the feature in the window from the reference, by method: psi, ks "
        "(statistic), wasserstein (divided by the reference std), jensenshannon "
        "(distance), chisquare (two-sample statistic, reference vs window counts).",
        [*FEATURE, "method"],
    ),
    (
        "pvalue",
        "mlmodel_feature_drift_pvalue",
        "P-value of the feature's drift test (ks, chisquare); small means drifted.",
        [*FEATURE, "method"],
    ),
    (
        "drifted",
        "mlmodel_feature_drifted",
        "1 if the configured drift test (drift.method and its threshold) flags the "
        "feature in the window, else 0.",
        FEATURE,
    ),
    (
        "ratio",
        "mlmodel_drifted_features_ratio",
        "Share of the features with a drift test in the window (enough rows) that drifted.",
        WINDOW,
    ),
    (
        "prediction_score",
        "mlmodel_prediction_drift_score",
        "Drift of the model's output (score, value or class) in the window from the "
        "reference predictions, by method.",
        [*WINDOW, "method"],
    ),
    (
        "prediction_drifted",
        "mlmodel_prediction_drifted",
        "1 if the configured drift test (the method label) flags the model's output in "
        "the window, else 0.",
        [*WINDOW, "method"],
    ),
    (
        "outcome_score",
        "mlmodel_outcome_drift_score",
        "Drift of the actual outcomes (label drift) in the window from the reference "
        "outcomes, by method.",
        [*WINDOW, "method"],
    ),
    (
        "reconstruction",
        "mlmodel_reconstruction_error",
        "Mean squared error of the window's rows (standardized numeric features) "
        "reconstructed through a PCA fitted on the reference; rises when the relations "
        "between features change.",
        WINDOW,
    ),
    (
        "multivariate",
        "mlmodel_multivariate_drifted",
        "1 if the window's mean reconstruction error exceeds the reference's mean + 3 std.",
        WINDOW,
    ),
)


class WindowReporter(Protocol):
    """What the collector needs of a model's monitor (`exporter.monitor.monitor.Monitor`)."""

    def window_report(self, window: FeatureCounts) -> WindowReport | None: ...


class MonitorCollector:
    """Data-quality and drift families of the models in ``monitors`` (module docstring)."""

    def __init__(self, monitors: Mapping[str, WindowReporter]) -> None:
        self._monitors = dict(monitors)

    def __call__(self, snapshot: EngineSnapshot, errors: ScrapeErrors) -> Iterator[Metric]:
        families: dict[str, Metric] = {
            key: GaugeMetricFamily(name, text, labels=labels)
            for key, name, text, labels in FAMILIES
        }
        for model in snapshot.models:
            monitor = self._monitors.get(model.model.name)
            if monitor is None:
                continue
            isolated_samples(
                errors,
                model.model.name,
                "drift",
                families,
                functools.partial(_add_model_samples, model=model, monitor=monitor),
            )
        yield from families.values()


def _add_model_samples(
    families: Mapping[str, Metric], model: ModelSnapshot, monitor: WindowReporter
) -> None:
    """Every sample of one model, added to ``families``."""
    for window in model.windows:
        report = monitor.window_report(window.features)
        if report is not None:
            _add_window_samples(families, [model.model.name, window.window.name], report)


def _add_window_samples(
    families: Mapping[str, Metric], at: list[str], report: WindowReport
) -> None:
    """One window's samples; `at` is the ``[model, window]`` label values."""
    name, where = at
    for feature in report.features:
        labels = [name, feature.name, where]
        for key, value in feature.data_quality.items():
            families[key].add_metric(labels, value)
        result = feature.drift
        if result is None:
            continue
        _add_by_method(families["score"], labels, feature.scores)
        _add_by_method(families["pvalue"], labels, result.pvalues)
        families["drifted"].add_metric(labels, int(result.drifted))
    if report.drifted_features_ratio is not None:
        families["ratio"].add_metric(at, report.drifted_features_ratio)
    if report.prediction is not None:
        _add_by_method(families["prediction_score"], at, report.prediction_scores)
        families["prediction_drifted"].add_metric(
            [*at, report.prediction.method], int(report.prediction.drifted)
        )
    if report.outcome is not None:
        _add_by_method(families["outcome_score"], at, report.outcome_scores)
    if report.multivariate is not None:
        families["reconstruction"].add_metric(at, report.multivariate.error)
        families["multivariate"].add_metric(at, int(report.multivariate.drifted))


def _add_by_method(family: Metric, labels: list[str], values: Mapping[str, float]) -> None:
    for method, value in sorted(values.items()):
        family.add_metric([*labels, method], value)
