"""The ``mlmodel_*`` samples of one model: its totals, timestamps, and each window's counts
and quality figures (by model version), plus its configured alert thresholds.

Exposed families::

    mlmodel_predictions_total{model,model_version}            counter
    mlmodel_outcomes_total{model,model_version}               counter
    mlmodel_confusion_total{model,model_version,actual,predicted}  counter
    mlmodel_last_prediction_timestamp_seconds{model}          gauge
    mlmodel_last_outcome_timestamp_seconds{model}             gauge
    mlmodel_window_predictions / mlmodel_window_outcomes{model,model_version,window}
    mlmodel_{accuracy,precision,recall,f1,roc_auc}_ratio, mlmodel_log_loss,
    mlmodel_mae, mlmodel_rmse, mlmodel_mape_ratio, mlmodel_r2 {model,model_version,window}
    mlmodel_alert_threshold{model,metric}
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from exporter.state.model_state import ModelSnapshot
from exporter.stats.model_quality import window_model_quality

MODEL_VERSION = ["model", "model_version"]
WINDOW_LABELS = ["model", "model_version", "window"]

# (key: the figure's name in `window_model_quality`, or the family's role here), kind,
# name, help, labels
FAMILIES = (
    (
        "predictions",
        CounterMetricFamily,
        "mlmodel_predictions",
        "Predictions ingested.",
        MODEL_VERSION,
    ),
    (
        "outcomes",
        CounterMetricFamily,
        "mlmodel_outcomes",
        "Predictions whose outcome is known.",
        MODEL_VERSION,
    ),
    (
        "confusion",
        CounterMetricFamily,
        "mlmodel_confusion",
        "Classification outcomes by actual and predicted class (binary: 1 = positive "
        "class, 0 = other); sum across exporter shards.",
        [*MODEL_VERSION, "actual", "predicted"],
    ),
    (
        "last_prediction",
        GaugeMetricFamily,
        "mlmodel_last_prediction_timestamp_seconds",
        "Event time of the newest prediction (the model's watermark).",
        ["model"],
    ),
    (
        "last_outcome",
        GaugeMetricFamily,
        "mlmodel_last_outcome_timestamp_seconds",
        "Time of the newest outcome (its event time if the log gives one, else arrival).",
        ["model"],
    ),
    (
        "window_predictions",
        GaugeMetricFamily,
        "mlmodel_window_predictions",
        "Predictions in the window.",
        WINDOW_LABELS,
    ),
    (
        "window_outcomes",
        GaugeMetricFamily,
        "mlmodel_window_outcomes",
        "Predictions in the window whose outcome is known.",
        WINDOW_LABELS,
    ),
    *(
        (key, GaugeMetricFamily, name, text, WINDOW_LABELS)
        for key, name, text in (
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
            (
                "f1",
                "mlmodel_f1_ratio",
                "F1 score (binary: positive class; multiclass: macro average).",
            ),
            (
                "roc_auc",
                "mlmodel_roc_auc_ratio",
                "Area under the ROC curve of the scores (binary).",
            ),
            ("log_loss", "mlmodel_log_loss", "Mean binary cross-entropy of the scores (binary)."),
            ("mae", "mlmodel_mae", "Mean absolute error (regression)."),
            ("rmse", "mlmodel_rmse", "Root mean squared error (regression)."),
            (
                "mape",
                "mlmodel_mape_ratio",
                "Mean absolute percentage error as a ratio (regression).",
            ),
            ("r2", "mlmodel_r2", "Coefficient of determination (regression)."),
        )
    ),
    (
        "thresholds",
        GaugeMetricFamily,
        "mlmodel_alert_threshold",
        "Configured alert thresholds (durations in seconds), for rules and dashboards.",
        ["model", "metric"],
    ),
)


def model_quality_families() -> dict[str, Metric]:
    """The families, empty, in the order they are yielded."""
    return {key: kind(name, text, labels=labels) for key, kind, name, text, labels in FAMILIES}


def add_model_quality_samples(families: Mapping[str, Metric], model: ModelSnapshot) -> None:
    """Every ``mlmodel_*`` sample of one model, added to ``families`` (`model_quality_families`)."""
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
        for version, counts in sorted(window.model_quality.items()):
            labels = [name, version, window.window.name]
            if counts.predictions == 0 and counts.outcomes == 0:
                continue
            families["window_predictions"].add_metric(labels, counts.predictions)
            families["window_outcomes"].add_metric(labels, counts.outcomes)
            for key, value in window_model_quality(model.model.task, counts).items():
                families[key].add_metric(labels, value)
    for metric, value in sorted(model.model.thresholds.items()):
        families["thresholds"].add_metric([name, metric], value)
