"""How a model's task reads its log columns as numbers: predictions as scores (binary),
values (regression) or class indices (multiclass), and outcomes in the same terms."""

from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from exporter.config import ModelConfig
from exporter.state.labels import LabelCapper, canonical_labels
from exporter.stats.model_quality import Outcomes


class TaskValues:
    """Reads prediction and outcome columns for one model; multiclass labels take class
    indices from a `LabelCapper` (``limit``: ``__other__``), kept in the checkpoint."""

    def __init__(self, model: ModelConfig, max_label_values: int) -> None:
        self.model = model
        self.binary = model.task == "binary"
        self.multiclass = model.task == "multiclass"
        self.classes = LabelCapper(max_label_values)

    @property
    def confusion_size(self) -> int:
        """The side of a confusion matrix: two classes, or every class index and ``__other__``."""
        return 2 if self.binary else self.classes.limit + 1

    def predictions(self, column: pd.Series) -> np.ndarray:
        """Scores, values or class indices (as float); NaN where there is none."""
        if self.multiclass:
            return self.classes.indices(canonical_labels(column)).astype(np.float64)
        return _numbers(column)

    def outcomes(self, frame: pd.DataFrame) -> np.ndarray:
        """Each row's outcome (binary: 1.0 = positive class); NaN where the row has none."""
        name = self.model.columns.actual
        if name not in frame.columns:
            return np.full(len(frame), np.nan)
        column = frame[name]
        if self.binary:
            positive_number = _as_number(self.model.positive_class)
            if is_numeric_dtype(column) and positive_number is not None:  # fast path: 0/1 columns
                numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
                return np.where(np.isnan(numbers), np.nan, (numbers == positive_number) * 1.0)
            labels = canonical_labels(column)
            return np.where(
                labels == "", np.nan, (labels == self.model.positive_class).astype(np.float64)
            )
        if self.multiclass:
            labels = canonical_labels(column)
            classes = self.classes.indices(labels).astype(np.float64)
            return np.where(labels == "", np.nan, classes)
        return _numbers(column)

    def joined(self, values: np.ndarray, actual: np.ndarray) -> Outcomes:
        """Predictions with their known outcomes, with class indices for classification."""
        if self.binary:
            predicted = (values >= self.model.threshold).astype(np.int64)
            return Outcomes(values, actual, predicted, actual.astype(np.int64))
        if self.multiclass:
            return Outcomes(values, actual, values.astype(np.int64), actual.astype(np.int64))
        return Outcomes(values, actual, None, None)

    def class_labels(self) -> np.ndarray:
        """The label of every class index (``limit``: ``__other__``)."""
        labels = [self.classes.label(i) for i in range(self.classes.limit + 1)]
        return np.array(labels, dtype=object)

    def confusion_label(self, index: int) -> str:
        """The ``actual``/``predicted`` label of a class index (binary: 1 = positive)."""
        return str(index) if self.binary else self.classes.label(index)


def _numbers(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
