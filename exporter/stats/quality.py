"""Model-quality statistics as pure functions over additive aggregates.

A window's rows are never kept; each time bucket holds counts and sums that add up
elementwise (confusion matrices, score histograms, error sums). These functions turn a
window's summed aggregate into the figures scikit-learn would give on the same rows.

Undefined figures (precision with no predicted positive, R2 of a constant target) are
returned as absent rather than 0 or NaN, so Prometheus shows no sample instead of a value
that would trip an alert.
"""

from __future__ import annotations

import numpy as np

# ROC AUC from two score histograms: scores in the same bin count as ties. 4096 equal bins
# on [0, 1] keep the error far below 0.005 for any spread of scores wider than ~1/400.
SCORE_BINS = 4096
_EPS = float(np.finfo(np.float64).eps)


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
