"""Fitting a model's `Baseline` from its reference: a CSV file, or the first rows of the log.

`ReferenceFile` reads ``reference.path`` once (every problem a `ConfigError`);
`StreamReference` buffers just the needed columns of the first ``reference.from_stream``
accepted prediction rows; both hand a frame to `fit_baseline`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from exporter.config import ConfigError, ModelConfig
from exporter.monitor.baseline import (
    Baseline,
    FeatureSpec,
    TargetSpec,
    UnivariateReference,
    finished,
    with_bounds,
    with_method,
)
from exporter.state.labels import canonical_labels
from exporter.stats.fit import fit_categorical, fit_numeric
from exporter.stats.multivariate import fit_multivariate
from exporter.stats.profile import split_numeric
from exporter.stats.reference_csv import infer_feature_type, read_reference_csv

__all__ = ["StreamReference", "feature_names", "fit_baseline", "read_reference"]

log = logging.getLogger("ml_model_exporter")


def read_reference(model: ModelConfig, path: Path, at: str) -> tuple[pd.DataFrame, str]:
    """The reference CSV as a frame and the sha256 of its content; problems raise
    `ConfigError` under ``{at}.reference.path``."""
    key = f"{at}.reference.path"
    if not path.is_file():
        raise ConfigError([f"{key}: file not found: {path}"])
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        frame = read_reference_csv(path, text=_text_columns(model), na_values=model.na_values)
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as err:
        message = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ConfigError([f"{key}: unreadable CSV ({message})"]) from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, digest


def _text_columns(model: ModelConfig) -> list[str]:
    """Columns read as text: categorical features and class labels."""
    names = [f.name for f in model.features if f.type == "categorical"]
    if model.task == "multiclass":
        names.append(model.columns.prediction)
    if model.task != "regression":
        names.append(model.columns.actual)
    return names


def feature_names(model: ModelConfig, frame: pd.DataFrame | None) -> list[str]:
    """The configured features; without any, the reference's other columns."""
    if model.features or frame is None:
        return [f.name for f in model.features]
    columns = model.columns
    reserved = {
        columns.timestamp,
        columns.id,
        columns.prediction,
        columns.actual,
        columns.model_version,
    }
    return [str(c) for c in frame.columns if str(c) not in reserved]


def fit_baseline(
    model: ModelConfig,
    frame: pd.DataFrame,
    initial: Baseline,
    *,
    at: str,
    fine_bins: int,
    raise_problems: bool,
) -> Baseline:
    """Fit every reference `frame` allows; problems raise (path) or are logged (stream)."""
    problems: list[str] = []
    numeric_columns: dict[str, np.ndarray] = {}
    specs = [
        _fit_feature(
            model,
            frame,
            spec,
            fine_bins=fine_bins,
            at=at,
            problems=problems,
            numeric_columns=numeric_columns,
        )
        for spec in initial.features
    ]
    prediction = _fit_target(model, frame, model.columns.prediction, initial.prediction, fine_bins)
    outcome = initial.outcome
    if outcome is not None:
        outcome = _fit_target(model, frame, model.columns.actual, outcome, fine_bins, actual=True)
    multivariate = None
    mv_names = [s.name for s in specs if s.type == "numeric" and s.ref is not None]
    if len(mv_names) >= 2:
        try:
            multivariate = fit_multivariate(
                pd.DataFrame({name: numeric_columns[name] for name in mv_names})
            )
        except ValueError as err:
            log.warning("model %s: no multivariate drift: %s", model.name, err)
    if problems and raise_problems:
        raise ConfigError(problems)
    for problem in problems:
        log.warning("model %s: from_stream reference: %s", model.name, problem)
    baseline = Baseline(tuple(specs), prediction, outcome, multivariate, reference_rows=len(frame))
    return finished(baseline, fine_bins)


def _fit_feature(
    model: ModelConfig,
    frame: pd.DataFrame,
    spec: FeatureSpec,
    *,
    fine_bins: int,
    at: str,
    problems: list[str],
    numeric_columns: dict[str, np.ndarray],
) -> FeatureSpec:
    """One feature fitted from its reference column; its problems are appended to
    `problems` and its parsed values, if numeric, put in `numeric_columns`."""
    key = f"{at}.reference.path"
    if spec.name not in frame.columns:
        problems.append(f'{key}: no column "{spec.name}" (a feature in {at}.features)')
        if spec.type is None:  # from_stream: a feature that never came in the log
            return replace(spec, type="numeric", type_source="default: not in the reference")
        return spec
    column = frame[spec.name]
    kind, source = spec.type, spec.type_source
    if kind is None:
        kind, source = infer_feature_type(column), "inferred from the reference"
    ref: UnivariateReference | None = None
    try:
        if kind == "numeric":
            values, _ = split_numeric(column.to_numpy())
            ref = fit_numeric(values, bins=model.drift.bins, fine_bins=fine_bins)
            numeric_columns[spec.name] = values
        else:
            ref = fit_categorical(column.to_numpy(dtype=object))
    except ValueError:
        what = "numeric values" if kind == "numeric" else "values"
        problems.append(f'{key}: column "{spec.name}" has no {what}')
    fitted = replace(spec, type=kind, type_source=source, ref=ref)
    return with_bounds(with_method(fitted, model.drift.method))


def _fit_target(
    model: ModelConfig,
    frame: pd.DataFrame,
    column: str,
    spec: TargetSpec,
    fine_bins: int,
    *,
    actual: bool = False,
) -> TargetSpec:
    if column not in frame.columns:
        return spec
    raw = frame[column]
    try:
        if spec.kind == "numeric":
            values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            ref: UnivariateReference = fit_numeric(
                values, bins=model.drift.bins, fine_bins=fine_bins
            )
        elif actual and model.task == "binary":
            ref = fit_categorical(_binary_labels(raw, model.positive_class))
        else:
            ref = fit_categorical(_class_labels(raw))
    except ValueError:
        return spec  # a column without usable values: no drift for it
    return with_method(replace(spec, ref=ref), model.drift.method)


def _class_labels(raw: pd.Series) -> np.ndarray:
    """Reference class labels as the live ones are read (``1.0`` and ``1`` are class
    ``1``), missing cells None."""
    labels = canonical_labels(raw)
    return np.where(labels == "", None, labels).astype(object)


def _binary_labels(raw: pd.Series, positive_class: str) -> np.ndarray:
    """Reference outcomes as the live ones arrive: "1" = positive class, "0" = other."""
    labels = canonical_labels(raw)
    positive = labels == positive_class
    return np.where(labels == "", None, np.where(positive, "1", "0")).astype(object)


class StreamReference:
    """The first `wanted` accepted prediction rows, buffered column by column (only the
    features, the prediction and the actual) until there are enough to fit from."""

    def __init__(self, columns: list[str], wanted: int) -> None:
        self.columns = columns
        self.wanted = wanted
        self.parts: dict[str, list[np.ndarray]] = {}
        self.rows = 0

    def take(self, frame: pd.DataFrame) -> int:
        """Buffer the rows of `frame` still wanted; return how many (its first ones)."""
        n = min(self.wanted - self.rows, len(frame))
        if n <= 0:
            return 0
        rows = frame.iloc[:n]
        for name in self.columns:
            values = (
                rows[name].to_numpy() if name in rows.columns else np.full(n, None, dtype=object)
            )
            self.parts.setdefault(name, []).append(values)
        self.rows += n
        return n

    @property
    def full(self) -> bool:
        return self.rows >= self.wanted

    def frame(self) -> pd.DataFrame:
        """The buffered rows; a column missing from every row was never in the log and
        is left out, as a reference file without it would be."""
        frame = pd.DataFrame(
            {name: pd.Series(_concat_values(parts)) for name, parts in self.parts.items()}
        )
        return frame[[name for name in frame.columns if frame[name].notna().any()]]

    def state(self) -> dict[str, Any]:
        return {name: _concat_values(parts) for name, parts in self.parts.items()}

    def restore(self, buffer: Mapping[str, Any], rows: int) -> None:
        self.parts = {name: [np.asarray(values)] for name, values in buffer.items()}
        self.rows = rows


def _concat_values(parts: list[np.ndarray]) -> np.ndarray:
    if len(parts) == 1:
        return parts[0]
    kinds = {part.dtype.kind for part in parts}
    if kinds <= {"f", "i", "u"}:
        return np.concatenate([part.astype(np.float64) for part in parts])
    return np.concatenate([part.astype(object) for part in parts])
