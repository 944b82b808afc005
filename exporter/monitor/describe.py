"""The data-quality and drift part of ``ml-model-exporter check``: what each model's
monitor compares, by which method and rule."""

from __future__ import annotations

from collections.abc import Mapping

from exporter.config import ModelConfig
from exporter.monitor.baseline import Baseline, FeatureSpec, TargetSpec
from exporter.monitor.monitor import Monitor
from exporter.stats.drift import PVALUE_METHODS
from exporter.stats.reference import CategoricalReference, NumericReference

__all__ = ["describe"]


def describe(model: ModelConfig, monitor: Monitor | None) -> list[str]:
    """Lines for ``ml-model-exporter check``: the reference, each feature's type and where
    it came from, and the drift method and rule of each feature and the prediction."""
    if monitor is None:
        return ["data quality and drift: off (no features and no reference)"]
    baseline = monitor.baseline
    drift = model.drift
    reference = model.reference
    if reference is None:
        source = "reference: none (data quality only, no drift)"
    elif reference.path is not None:
        source = f"reference: {reference.path} ({baseline.reference_rows} rows)"
    else:
        source = f"reference: the first {reference.from_stream} accepted prediction rows"
    lines = [
        source,
        f"drift: method {drift.method}, {drift.bins} PSI bins, no drift figure under "
        f"{drift.min_rows} rows per window",
    ]
    lines.extend(_feature_line(spec, drift.thresholds) for spec in baseline.features)
    for label, target in (("prediction", baseline.prediction), ("outcome", baseline.outcome)):
        if target is not None:
            lines.append(_target_line(model, baseline, label, target))
    mv = baseline.multivariate
    if mv is not None:
        lines.append(
            f"multivariate: PCA of {len(mv.features)} numeric features keeping "
            f"{mv.explained_components} components; drifted when the mean reconstruction "
            f"error > {mv.threshold:.4g}"
        )
    return lines


def _feature_line(spec: FeatureSpec, thresholds: Mapping[str, float]) -> str:
    kind = spec.type or "type unknown until the from_stream reference is fitted"
    text = f"{spec.name}: {kind}" + (f" ({spec.type_source})" if spec.type_source else "")
    if isinstance(spec.ref, NumericReference):
        text += f"; reference {spec.ref.n} values in [{spec.ref.min:g}, {spec.ref.max:g}]"
    elif isinstance(spec.ref, CategoricalReference):
        text += f"; reference {len(spec.ref.categories)} categories"
    if spec.lower is not None or spec.upper is not None:
        low = "-inf" if spec.lower is None else f"{spec.lower:g}"
        high = "inf" if spec.upper is None else f"{spec.upper:g}"
        text += f"; out of range outside [{low}, {high}] ({spec.bounds_source})"
    return text + "; " + _method_text(spec.method, spec.method_note, thresholds)


def _target_line(model: ModelConfig, baseline: Baseline, label: str, target: TargetSpec) -> str:
    text = f"{label} ({target.kind} {target.what}): "
    reference = model.reference
    if target.ref is not None:
        return text + _method_text(target.method, target.method_note, model.drift.thresholds)
    if reference is None:
        return text + "no drift (no reference)"
    if reference.from_stream is not None and not baseline.fitted:
        return text + "drift once the from_stream reference is fitted"
    column = model.columns.prediction if label == "prediction" else model.columns.actual
    return text + f'no drift (the reference has no usable "{column}" column)'


def _method_text(method: str | None, note: str, thresholds: Mapping[str, float]) -> str:
    if method is None:
        return "no drift (no reference values)"
    limit = thresholds.get(method, 0.0)
    rule = f"p < {limit:g}" if method in PVALUE_METHODS else f">= {limit:g}"
    return f"drift by {method} ({rule}" + (f"; {note})" if note else ")")
