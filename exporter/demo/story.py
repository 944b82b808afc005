"""What the terminal says when the demo starts: what to open, then a timeline of what will
happen when.

The times are estimates from :mod:`exporter.demo.outlook` (the expected figures before and
after the drift and the outcome delays); alerts also wait for their ``for:``.
"""

from __future__ import annotations

import math

from exporter.config import DEFAULT_DRIFT_THRESHOLDS, parse_duration
from exporter.demo.config import REFERENCE_ROWS, WINDOWS
from exporter.demo.outlook import ClassifierOutlook, Outlook, RegressionOutlook, first_time
from exporter.demo.traffic import OUTCOME_JITTER

Event = tuple[float | None, str]


def duration(seconds: float) -> str:
    """``135`` -> ``2m15s``; ``120`` -> ``2m``; ``3600`` -> ``1h``."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{unit}" for v, unit in ((hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return "".join(parts) or "0s"


def _shifts(outlook: Outlook) -> str:
    shift = outlook.model.drift_shift
    return ", ".join(f"{f} +{shift[f]:g}" for f in outlook.model.drifting_features)


def _figures_event(outlook: Outlook, prefix: str, note: str, what: str) -> list[Event]:
    """When the short window first has ``drift.min_rows`` rows, if before the drift."""
    min_rows = outlook.model.drift_min_rows
    figures = min_rows / outlook.rate  # while the window still holds every row
    if figures < min(outlook.drift_after, parse_duration(WINDOWS[0])):
        return [
            (
                figures,
                f"{prefix}the {WINDOWS[0]} window has {min_rows} rows{note}: drift figures "
                f"appear, no {what} drifted",
            )
        ]
    return []


def _multivariate_event(outlook: Outlook, prefix: str) -> Event:
    """When the short window's mean reconstruction error passes the model's multivariate
    threshold or, if it never does, what it settles at."""
    window = WINDOWS[0]
    seconds = parse_duration(window)
    expected = outlook.reconstruction
    before, after, limit = expected["before"], expected["after"], expected["threshold"]
    crossing = outlook.multivariate_crossing(seconds)
    if crossing is not None:
        return (
            crossing,
            f"{prefix}the {window} window's mean reconstruction error passes {limit:.2f} "
            f"(the reference's mean + 3 std; ~{before:.2f} before the drift, ~{after:.2f} "
            "after): mlmodel_multivariate_drifted 1, MLModelMultivariateDrift would fire",
        )
    return (
        outlook.drift_after + seconds,
        f"{prefix}the {window} reconstruction error has risen from ~{before:.2f} to "
        f"~{after:.2f}, still under its threshold {limit:.2f} (the reference's mean + 3 "
        "std): mlmodel_multivariate_drifted stays 0; this shift is caught per feature",
    )


def _classifier_events(outlook: ClassifierOutlook) -> list[Event]:
    before, after = outlook.model_quality["before"], outlook.model_quality["after"]
    limits = outlook.model.thresholds
    short, long_ = WINDOWS
    short_seconds = parse_duration(short)
    delay = outlook.server.outcome_delay
    delay_hi = delay * (1 + OUTCOME_JITTER)
    drift = outlook.drift_after

    def crossing(metric: str, window: str) -> float | None:
        seconds = parse_duration(window)
        return first_time(
            drift,
            drift + seconds + delay_hi + 60,
            lambda t: outlook.window(t, seconds)[1].get(metric, math.nan) < limits[metric],
        )

    ready = first_time(
        0.0,
        drift + short_seconds + delay_hi,
        lambda t: outlook.window(t, short_seconds)[0] >= limits["min_outcomes"],
    )
    accuracy_short, accuracy_long = crossing("accuracy", short), crossing("accuracy", long_)
    also_long = f" (and the {long_} window)" if accuracy_long == accuracy_short else ""
    ratio = len(outlook.model.drifting_features) / (len(outlook.model.features) + 1)
    settled = ", ".join(f"{m} ~{after[m]:.2f}" for m in ("accuracy", "precision", "recall"))
    events: list[Event] = [
        (
            0.0,
            f"predictions start at {outlook.rate:g}/s; labels follow after "
            f"{duration(delay)}-{duration(delay_hi)}",
        ),
        (
            ready,
            f"the {short} window has {limits['min_outcomes']} outcomes: accuracy "
            f"~{before['accuracy']:.2f} (threshold {limits['accuracy']:g}), precision "
            f"~{before['precision']:.2f}, recall ~{before['recall']:.2f}",
        ),
        (
            drift,
            f"the imaging device is recalibrated: {_shifts(outlook)} reference std; the other "
            "features, channel and the labels stay as they were",
        ),
        (
            outlook.drift_detection_time(short_seconds),
            f"the drift shows in the {short} window (normed Wasserstein >= "
            f"{DEFAULT_DRIFT_THRESHOLDS['wasserstein']:g}); drifted_features_ratio "
            f"{ratio:.2f} > {limits['drifted_features_ratio']:g}: MLModelDataDrift would "
            "fire, and MLModelPredictionDrift as the scores rise",
        ),
        _multivariate_event(outlook, ""),
        (
            crossing("precision", short),
            f"the {short} precision falls under {limits['precision']:g} (benign cases "
            "flagged malignant): MLModelPrecisionLow would fire",
        ),
        (
            accuracy_short,
            f"the {short} accuracy{also_long} falls under {limits['accuracy']:g}: "
            "MLModelAccuracyLow would fire",
        ),
        (
            drift + short_seconds + delay_hi,
            f"the {short} window holds only drifted rows: {settled}",
        ),
        *_figures_event(outlook, "", " (drift.min_rows)", "feature"),
    ]
    if not also_long:
        events.append((accuracy_long, f"the {long_} accuracy falls under {limits['accuracy']:g}"))
    return events


def _regression_events(outlook: RegressionOutlook) -> list[Event]:
    before, after = outlook.model_quality["before"], outlook.model_quality["after"]
    limits = outlook.model.thresholds
    name, short = outlook.model.name, WINDOWS[0]
    seconds = parse_duration(short)
    drift = outlook.drift_after
    ready = first_time(
        0.0, drift + seconds, lambda t: outlook.window(t, seconds)[0] >= limits["min_outcomes"]
    )
    crossing = first_time(
        drift, drift + seconds, lambda t: outlook.window(t, seconds)[1]["mae"] > limits["mae"]
    )
    return [
        *_figures_event(outlook, f"{name}: ", "", "input"),
        (
            ready,
            f"{name}: the {short} window has {limits['min_outcomes']} "
            f"outcomes: MAE ~{before['mae']:.0f} (threshold {limits['mae']:g}), RMSE "
            f"~{before['rmse']:.0f} ({limits['rmse']:g}), MAPE ~{before['mape']:.2f} "
            f"({limits['mape']:g})",
        ),
        (
            drift,
            f"{name}: the lab recalibrates {_shifts(outlook)} reference std; the "
            "outcomes stay as they were",
        ),
        (
            crossing,
            f"{name}: the {short} MAE rises above {limits['mae']:g} "
            f"(towards ~{after['mae']:.0f}): MLModelRegressionErrorHigh would fire",
        ),
        _multivariate_event(outlook, f"{name}: "),
    ]


def tell(classifier: ClassifierOutlook, regression: RegressionOutlook) -> list[str]:
    """The lines for the terminal, the timeline in order of time."""
    events = _classifier_events(classifier) + _regression_events(regression)
    timeline = sorted(
        ((t, text) for t, text in events if t is not None), key=lambda event: event[0]
    )
    width = max(len(duration(t)) for t, _ in timeline) + 1
    server, regression_server = classifier.server, regression.server
    return [
        f"Simulated model {classifier.model.name!r}: scikit-learn LogisticRegression on "
        f"{len(classifier.model.features)} features of the breast cancer data (1 = malignant), "
        "a 'channel' categorical, model_version 1.",
        f"It writes {server.predictions_path} and {server.outcomes_path}; "
        f"its reference is {server.reference_path} ({REFERENCE_ROWS} rows drawn as the "
        f"pre-drift traffic is, from {server.traffic.trained.size} held-out validation rows).",
        "Watch mlmodel_accuracy_ratio, mlmodel_precision_ratio, "
        "mlmodel_feature_drift_score, mlmodel_drifted_features_ratio and "
        "mlmodel_reconstruction_error on /metrics "
        f"(windows {', '.join(WINDOWS)}).",
        f"Second model {regression.model.name!r}: scikit-learn Ridge regression on "
        f"{len(regression.model.features)} inputs of the diabetes data (disease progression "
        f"a year later), a 'clinic' categorical; it writes {regression_server.predictions_path} "
        f"with the outcome in each row at {regression.rate:g}/s. Watch mlmodel_mae, "
        "mlmodel_rmse and mlmodel_mape_ratio.",
        "Timeline:",
        *(f"  {'+' + duration(t):>{width}}  {text}" for t, text in timeline),
    ]
