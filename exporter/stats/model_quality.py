"""Model-quality statistics: the additive counts a time bucket keeps of one model version,
and the figures scikit-learn would give on the same rows, as pure functions of them.

A window's rows are never kept; each time bucket holds counts and sums that add up
elementwise (confusion matrices, score histograms, error sums), and a window's figures
come from the sum of its buckets.

Undefined figures (precision with no predicted positive, R2 of a constant target) are
returned as absent rather than 0 or NaN, so Prometheus shows no sample instead of a value
that would trip an alert.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter.stats.additive import Additive

# ROC AUC from two score histograms: scores in the same bin count as ties. 4096 equal bins
# on [0, 1] keep the error far below 0.005 for any spread of scores wider than ~1/400.
SCORE_BINS = 4096
_EPS = float(np.finfo(np.float64).eps)


@dataclass(eq=False)
class ScoreCounts(Additive):
    """Binary: histograms of the scores of the positives and of the negatives
    (``SCORE_BINS`` bins on [0, 1]) and the summed cross-entropy."""

    positive: np.ndarray
    negative: np.ndarray
    log_loss_sum: float


@dataclass(eq=False)
class ErrorSums(Additive):
    """Regression: sums over the outcomes, of ``|y_hat - y|``, ``(y_hat - y)^2``,
    ``|y_hat - y| / max(|y|, eps)``, ``y`` and ``y^2``."""

    absolute: float
    squared: float
    absolute_percentage: float
    actual: float
    actual_squared: float


@dataclass(eq=False)
class ModelQualityCounts(Additive):
    """What is known of one model version's quality in a time bucket or a whole window.
    The task's counts stay None until one of its outcomes is counted."""

    predictions: int = 0
    outcomes: int = 0
    confusion: np.ndarray | None = None  # classification: [actual, predicted] counts
    scores: ScoreCounts | None = None  # binary
    errors: ErrorSums | None = None  # regression

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> ModelQualityCounts:
        """The counts ``state()`` gave."""
        confusion, scores, errors = (state.get(k) for k in ("confusion", "scores", "errors"))
        return cls(
            state["predictions"],
            state["outcomes"],
            None if confusion is None else np.asarray(confusion, dtype=np.int64),
            None if scores is None else ScoreCounts(**scores),
            None if errors is None else ErrorSums(**errors),
        )


@dataclass(frozen=True)
class Outcomes:
    """Rows whose outcome is known: the prediction (score, value or class index) and the
    outcome as numbers, and for classification both as class indices."""

    values: np.ndarray
    actual: np.ndarray
    predicted_class: np.ndarray | None
    actual_class: np.ndarray | None

    def subset(self, rows: np.ndarray) -> Outcomes:
        """These rows only (a mask or positions)."""
        return Outcomes(
            self.values[rows],
            self.actual[rows],
            None if self.predicted_class is None else self.predicted_class[rows],
            None if self.actual_class is None else self.actual_class[rows],
        )


def counts_by_group(
    task: str, rows: Outcomes, group: np.ndarray, groups: int, classes: int
) -> list[ModelQualityCounts]:
    """The counts of every group of rows at once (row ``i`` in group ``group[i]``), each
    field from one bincount over all rows; ``classes``: the side of a confusion matrix."""

    def total(weights: np.ndarray | None = None) -> list:
        return np.bincount(group, weights=weights, minlength=groups).tolist()

    def histogram(cells: np.ndarray, size: int, where: np.ndarray | None = None) -> np.ndarray:
        keys = group * size + cells if where is None else (group * size + cells)[where]
        return np.bincount(keys, minlength=groups * size).reshape(groups, size)

    counts = [ModelQualityCounts(outcomes=n) for n in total()]
    predicted, actual = rows.predicted_class, rows.actual_class
    if predicted is not None and actual is not None:
        cells = histogram(actual * classes + predicted, classes * classes)
        for one, matrix in zip(counts, cells.reshape(groups, classes, classes), strict=True):
            one.confusion = matrix
    if task == "binary":
        positive = actual == 1
        bins = score_bins(rows.values)
        score_positive = histogram(bins, SCORE_BINS, positive)
        score_negative = histogram(bins, SCORE_BINS, ~positive)
        log_loss_sums = total(log_loss_terms(rows.values, positive))
        for index, one in enumerate(counts):
            one.scores = ScoreCounts(
                score_positive[index], score_negative[index], log_loss_sums[index]
            )
    elif task == "regression":
        actual_numbers = rows.actual.astype(np.float64)
        error = rows.values - actual_numbers
        sums = zip(
            total(np.abs(error)),
            total(error * error),
            total(absolute_percentage_errors(actual_numbers, rows.values)),
            total(actual_numbers),
            total(actual_numbers * actual_numbers),
            strict=True,
        )
        for one, five in zip(counts, sums, strict=True):
            one.errors = ErrorSums(*five)
    return counts


def window_model_quality(task: str, counts: ModelQualityCounts) -> dict[str, float]:
    """The quality figures of one window and model version, from its summed counts."""
    if counts.outcomes == 0:
        return {}
    if task == "regression":
        if counts.errors is None:
            raise ValueError(f"{counts.outcomes} outcomes without their error sums")
        errors = counts.errors
        return regression_metrics(
            count=counts.outcomes,
            abs_error_sum=errors.absolute,
            squared_error_sum=errors.squared,
            abs_percentage_error_sum=errors.absolute_percentage,
            actual_sum=errors.actual,
            actual_squared_sum=errors.actual_squared,
        )
    if counts.confusion is None:
        raise ValueError(f"{counts.outcomes} outcomes without a confusion matrix")
    if task == "multiclass":
        return multiclass_metrics(counts.confusion)
    result = binary_metrics(counts.confusion)
    if counts.scores is None:
        raise ValueError(f"{counts.outcomes} outcomes without their score histograms")
    auc = roc_auc_from_histograms(counts.scores.positive, counts.scores.negative)
    if auc is not None:
        result["roc_auc"] = auc
    loss = log_loss(counts.scores.log_loss_sum, counts.outcomes)
    if loss is not None:
        result["log_loss"] = loss
    return result


def score_bins(scores: np.ndarray) -> np.ndarray:
    """Histogram bin of each score; scores are probabilities, clipped into [0, 1]."""
    clipped = np.clip(scores, 0.0, 1.0)
    return np.minimum((clipped * SCORE_BINS).astype(np.int64), SCORE_BINS - 1)


def log_loss_terms(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Per-row binary cross-entropy, clipped as scikit-learn clips (machine epsilon)."""
    p = np.clip(scores, _EPS, 1.0 - _EPS)
    return -np.where(positive, np.log(p), np.log1p(-p))


def absolute_percentage_errors(actual: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """As scikit-learn's MAPE: |y - y_hat| / max(|y|, machine epsilon)."""
    return np.abs(predicted - actual) / np.maximum(np.abs(actual), _EPS)


def binary_metrics(confusion: np.ndarray) -> dict[str, float]:
    """Accuracy, precision, recall, F1 of the positive class from a 2x2 [actual, predicted]
    matrix, index 1 = positive."""
    tn, fp, fn, tp = (float(x) for x in confusion.reshape(-1))
    total = tn + fp + fn + tp
    result: dict[str, float] = {}
    if total == 0:
        return result
    result["accuracy"] = (tp + tn) / total
    if tp + fp > 0:
        result["precision"] = tp / (tp + fp)
    if tp + fn > 0:
        result["recall"] = tp / (tp + fn)
    if 2 * tp + fp + fn > 0:
        result["f1"] = 2 * tp / (2 * tp + fp + fn)
    return result


def multiclass_metrics(confusion: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-averaged precision, recall, F1 from a [actual, predicted] matrix.

    As scikit-learn's ``average='macro'``: averaged over every class that occurs as an
    actual or a predicted label in the window; a class's undefined precision or recall
    counts as 0 (scikit-learn's default ``zero_division``)."""
    matrix = confusion.astype(np.float64)
    total = matrix.sum()
    if total == 0:
        return {}
    true_positive = np.diag(matrix)
    actual = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    present = (actual > 0) | (predicted > 0)
    tp, act, pred = true_positive[present], actual[present], predicted[present]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred > 0, tp / pred, 0.0)
        recall = np.where(act > 0, tp / act, 0.0)
        f1 = np.where(act + pred > 0, 2 * tp / (act + pred), 0.0)
    return {
        "accuracy": float(true_positive.sum() / total),
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
    }


def roc_auc_from_histograms(positive: np.ndarray, negative: np.ndarray) -> float | None:
    """Probability that a random positive outscores a random negative, ties counting half
    (the Mann-Whitney form of ROC AUC). None unless both classes occur."""
    pos = positive.astype(np.float64)
    neg = negative.astype(np.float64)
    n_pos, n_neg = pos.sum(), neg.sum()
    if n_pos == 0 or n_neg == 0:
        return None
    negatives_below = np.cumsum(neg) - neg
    wins = float(np.dot(pos, negatives_below)) + 0.5 * float(np.dot(pos, neg))
    return wins / (n_pos * n_neg)


def log_loss(loss_sum: float, count: int) -> float | None:
    return loss_sum / count if count else None


def regression_metrics(
    *,
    count: int,
    abs_error_sum: float,
    squared_error_sum: float,
    abs_percentage_error_sum: float,
    actual_sum: float,
    actual_squared_sum: float,
) -> dict[str, float]:
    """MAE, RMSE, MAPE and R2 from sums; R2 is absent when the window's target is constant."""
    if count == 0:
        return {}
    result = {
        "mae": abs_error_sum / count,
        "rmse": float(np.sqrt(squared_error_sum / count)),
        "mape": abs_percentage_error_sum / count,
    }
    total_variation = actual_squared_sum - actual_sum * actual_sum / count
    if total_variation > 1e-12 * max(actual_squared_sum, 1.0):
        result["r2"] = 1.0 - squared_error_sum / total_variation
    return result
