"""What the engine derives from a model's configuration: the logs it reads with the row
schema of each, and the fingerprint of what its stored aggregates depend on."""

from __future__ import annotations

import hashlib
import json

from exporter.config import ModelConfig, SourceConfig
from exporter.ingest.rows import RowSchema
from exporter.state.model_state import FeatureMonitor


def model_logs(model: ModelConfig, *, features: bool) -> list[tuple[str, SourceConfig, RowSchema]]:
    """``(kind, source, schema)`` of each log the model reads: its predictions, and its
    outcomes when it has them; ``features`` as in `prediction_schema`."""
    logs = [("predictions", model.predictions, prediction_schema(model, features=features))]
    if model.outcomes is not None:
        logs.append(("outcomes", model.outcomes, outcome_schema(model)))
    return logs


def prediction_schema(model: ModelConfig, *, features: bool = True) -> RowSchema:
    """What a prediction row must carry; ``features=False`` when nothing reads the feature
    columns (a model without a monitor), which are then not parsed at all."""
    columns = model.columns
    required = [columns.prediction]
    if model.outcomes is not None:
        required.append(columns.id)
    numeric = () if model.task == "multiclass" else (columns.prediction,)
    return RowSchema(
        timestamp=columns.timestamp,
        required=tuple(required),
        numeric=numeric,
        text=_text_columns(model),
        categories=tuple(f.name for f in model.features if f.type == "categorical"),
        numeric_features=tuple(f.name for f in model.features if f.type == "numeric"),
        columns=_read_columns(model, features=features),
        na_values=model.na_values,
    )


def outcome_schema(model: ModelConfig) -> RowSchema:
    columns = model.columns
    return RowSchema(
        timestamp=columns.timestamp,
        required=(columns.id, columns.actual),
        numeric=(columns.actual,) if model.task == "regression" else (),
        text=(columns.id,),
        timestamp_required=False,
        columns=frozenset({columns.timestamp, columns.id, columns.actual}),
        na_values=model.na_values,
    )


def _read_columns(model: ModelConfig, *, features: bool) -> frozenset[str] | None:
    """The prediction log's columns the model state and the monitor read; None (all) when
    the monitor reads features that are not configured (then every other column is one)."""
    columns = model.columns
    names = {columns.timestamp, columns.prediction, columns.actual, columns.model_version}
    if model.outcomes is not None:
        names.add(columns.id)
    if not features:
        return frozenset(names)
    if not model.features:
        return None
    return frozenset(names | {f.name for f in model.features})


def _text_columns(model: ModelConfig) -> tuple[str, ...]:
    columns = model.columns
    names = [columns.id, columns.model_version]
    if model.task == "multiclass":
        names += [columns.actual, columns.prediction]
    names += [f.name for f in model.features if f.type == "categorical"]
    return tuple(names)


def model_fingerprint(model: ModelConfig, monitor: FeatureMonitor | None = None) -> str:
    """What the stored aggregates depend on; a change discards them and re-reads the logs."""
    relevant = {
        "task": model.task,
        "threshold": model.threshold,
        "positive_class": model.positive_class,
        "model_version": model.model_version,
        "columns": vars(model.columns),
        "predictions": model.predictions.path,
        "outcomes": model.outcomes.path if model.outcomes else None,
        "features": [vars(f) for f in model.features],
        "windows": [w.seconds for w in model.windows],
        "reference": vars(model.reference) if model.reference else None,
        "drift": {"method": model.drift.method, "bins": model.drift.bins},
        "na_values": list(model.na_values),
        # the reference file's content and the binning (the monitor's own fingerprint)
        "monitor": getattr(monitor, "fingerprint", None),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()
