"""One window's data-quality ratios and drift results, from its summed counts.

Data-quality ratios: **every denominator is the window's row count**, missing and
invalid rows included, so the ratios of one feature add up to at most 1 and read the same
way: "share of this window's rows that ...". Each row was checked by the rules in force
when it was ingested (`exporter.monitor.encoding`), so the ratios are exact under that
rule. A feature has ``missing``; a numeric one ``invalid``, and ``out_of_range`` when it
has bounds; a categorical one with a reference ``unseen_category``.

Drift is computed from the window's rows binned against the current reference only,
and ``drift.min_rows`` applies to those rows. So the ``from_stream`` rows that form the
reference are never compared with it, a window that still holds rows from before the
fit gets drift from its later rows, and buckets restored from a checkpoint taken with
another reference file can never be mixed with the new one (their counts are ignored
and age out of the window). Drift statistics see only valid, non-missing values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from exporter.config.schema import DriftConfig
from exporter.monitor.baseline import Baseline, FeatureSpec, UnivariateReference
from exporter.monitor.profiling import binned_profiles
from exporter.stats.drift import DriftResult, MultivariateDrift, feature_drift, multivariate_drift
from exporter.stats.profile import FeatureCounts, Profile

__all__ = ["FeatureReport", "WindowReport", "data_quality_ratios", "window_report"]


@dataclass(frozen=True)
class FeatureReport:
    """One feature in one window: data-quality ratios (over all rows) and drift (if any)."""

    name: str
    data_quality: dict[str, float]
    drift: DriftResult | None = None
    scores: dict[str, float] = field(default_factory=dict)  # as exported (all finite)


@dataclass(frozen=True)
class WindowReport:
    """What is exported for one model and window (None: no sample)."""

    rows: int
    features: tuple[FeatureReport, ...]
    drifted_features_ratio: float | None
    prediction: DriftResult | None
    prediction_scores: dict[str, float]
    outcome: DriftResult | None
    outcome_scores: dict[str, float]
    multivariate: MultivariateDrift | None


def data_quality_ratios(spec: FeatureSpec, counts: np.ndarray, rows: int) -> dict[str, float]:
    """A feature's ratios from its window counts of missing, invalid, out of range and
    unseen values (module docstring)."""
    ratios = {"missing": float(counts[0]) / rows}
    if spec.type == "numeric":
        ratios["invalid"] = float(counts[1]) / rows
        if spec.lower is not None or spec.upper is not None:
            ratios["out_of_range"] = float(counts[2]) / rows
    elif spec.type == "categorical" and spec.ref is not None:
        ratios["unseen_category"] = float(counts[3]) / rows
    return ratios


def window_report(
    window: FeatureCounts, baseline: Baseline, drift: DriftConfig, features_key: str
) -> WindowReport | None:
    """Data-quality ratios and drift of one window's summed counts; None without rows."""
    rows = window.rows
    if rows <= 0:
        return None
    counts = window.data_quality.get(features_key)
    if counts is None:
        counts = np.zeros((len(baseline.features), 4), dtype=np.int64)
    binned = binned_profiles(window, baseline)
    reports = []
    for spec, feature_counts in zip(baseline.features, counts, strict=True):
        result, scores = None, {}
        entry = binned.features.get(spec.name)
        if spec.ref is not None and entry is not None:
            result, scores = _drift(spec.ref, entry, spec.method, drift)
        ratios = data_quality_ratios(spec, feature_counts, rows)
        reports.append(FeatureReport(spec.name, ratios, result, scores))
    decided = [r.drift for r in reports if r.drift is not None]
    ratio = sum(r.drifted for r in decided) / len(decided) if decided else None
    prediction, prediction_scores = None, {}
    if baseline.prediction.ref is not None and binned.prediction is not None:
        prediction, prediction_scores = _drift(
            baseline.prediction.ref, binned.prediction, baseline.prediction.method, drift
        )
    outcome, outcome_scores = None, {}
    target = baseline.outcome
    if target is not None and target.ref is not None and binned.outcome is not None:
        outcome, outcome_scores = _drift(target.ref, binned.outcome, target.method, drift)
    multivariate = None
    if baseline.multivariate is not None and binned.multivariate is not None:
        multivariate = multivariate_drift(
            baseline.multivariate, binned.multivariate, min_rows=drift.min_rows
        )
    return WindowReport(
        rows,
        tuple(reports),
        ratio,
        prediction,
        prediction_scores,
        outcome,
        outcome_scores,
        multivariate,
    )


def _drift(
    ref: UnivariateReference,
    profile: Profile,
    method: str | None,
    drift: DriftConfig,
) -> tuple[DriftResult | None, dict[str, float]]:
    """Drift of one binned profile, and the scores as exported (every one finite: the
    two-sample chi-square has no +Inf, an unseen category being one more table column)."""
    result = feature_drift(
        ref,
        profile,
        method or "auto",
        thresholds=drift.thresholds,
        min_rows=drift.min_rows,
    )
    if result is None:
        return None, {}
    return result, dict(result.method_scores)
