"""Window metrics equal scikit-learn's on the same rows, through parse -> buckets -> collector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics

from exporter.config import config_from_mapping
from exporter.ingest.csv_rows import parse_csv
from exporter.ingest.model_schemas import prediction_schema
from exporter.state.model_state import ModelState
from exporter.stats import model_quality
from exporter.stats.model_quality import window_model_quality

START = 1_717_200_000.0  # 2024-06-01


def _model(tmp_path: Path, **overrides: object):
    raw = {"name": "m", "predictions": {"path": "p.csv"}, "windows": ["1d"], **overrides}
    return config_from_mapping({"models": [raw]}, base_dir=tmp_path).models[0]


def _ingest(model, frame: pd.DataFrame, chunks: int = 3) -> dict[str, float]:
    """Feed the rows as CSV in several chunks; return the 1d window's figures."""
    state = ModelState(model)
    text = frame.to_csv(index=False)
    header, _, body = text.partition("\n")
    lines = body.splitlines(keepends=True)
    for part in np.array_split(np.arange(len(lines)), chunks):
        data = "".join(lines[i] for i in part).encode()
        rows = parse_csv(header.encode(), data, prediction_schema(model))
        assert not rows.rejected
        state.add_predictions(rows, now=START + 10 * 86400)
    snapshot = state.snapshot()
    (window,) = snapshot.windows
    (counts,) = window.model_quality.values()
    assert counts.predictions == len(frame)
    return window_model_quality(model.task, counts)


def _timestamps(n: int, rng: np.random.Generator) -> np.ndarray:
    return START + np.sort(rng.uniform(0, 80_000, n))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_equal_scikit_learn(tmp_path: Path, seed: int) -> None:
    """Accuracy, precision, recall, F1 exact; ROC AUC within 0.005; log loss within 1e-6."""
    rng = np.random.default_rng(seed)
    n = 5000
    actual = rng.integers(0, 2, n)
    scores = np.clip(actual * 0.25 + rng.beta(2, 3, n), 0, 1).round(4)
    frame = pd.DataFrame({"timestamp": _timestamps(n, rng), "prediction": scores, "actual": actual})
    got = _ingest(_model(tmp_path, task="binary", threshold=0.6), frame)
    predicted = (scores >= 0.6).astype(int)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(actual, predicted), abs=1e-12)
    assert got["precision"] == pytest.approx(metrics.precision_score(actual, predicted), abs=1e-12)
    assert got["recall"] == pytest.approx(metrics.recall_score(actual, predicted), abs=1e-12)
    assert got["f1"] == pytest.approx(metrics.f1_score(actual, predicted), abs=1e-12)
    assert abs(got["roc_auc"] - metrics.roc_auc_score(actual, scores)) < 0.005
    assert got["log_loss"] == pytest.approx(metrics.log_loss(actual, scores), abs=1e-6)


def test_binary_with_string_positive_class(tmp_path: Path) -> None:
    """positive_class names a label; everything else is the negative class."""
    frame = pd.DataFrame(
        {
            "timestamp": ["2024-06-01T00:00:00Z", "2024-06-01T01:00:00Z", "2024-06-01T02:00:00Z"],
            "prediction": [0.9, 0.2, 0.7],
            "actual": ["churn", "stay", "stay"],
        }
    )
    got = _ingest(_model(tmp_path, task="binary", positive_class="churn"), frame, chunks=1)
    assert got["accuracy"] == pytest.approx(2 / 3)
    assert got["precision"] == pytest.approx(0.5)
    assert got["recall"] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_macro_metrics_equal_scikit_learn(tmp_path: Path, seed: int) -> None:
    """Macro precision/recall/F1 over the classes present, as scikit-learn averages them."""
    rng = np.random.default_rng(seed)
    n = 4000
    classes = np.array(["cat", "dog", "bird", "fish"])
    actual = classes[rng.integers(0, 4, n)]
    predicted = np.where(rng.random(n) < 0.7, actual, classes[rng.integers(0, 3, n)])
    frame = pd.DataFrame(
        {"timestamp": _timestamps(n, rng), "prediction": predicted, "actual": actual}
    )
    got = _ingest(_model(tmp_path, task="multiclass"), frame)
    assert got["accuracy"] == pytest.approx(metrics.accuracy_score(actual, predicted), abs=1e-12)
    for key, fn in (
        ("precision", metrics.precision_score),
        ("recall", metrics.recall_score),
        ("f1", metrics.f1_score),
    ):
        expected = fn(actual, predicted, average="macro", zero_division=0)
        assert got[key] == pytest.approx(expected, abs=1e-12), key


def test_multiclass_numeric_labels_compare_canonically(tmp_path: Path) -> None:
    """Class 1 written as 1 in one column and 1.0 in the other is one class."""
    frame = pd.DataFrame(
        {
            "timestamp": [START, START + 1, START + 2],
            "prediction": ["1", "2", "3"],
            "actual": ["1.0", "2.0", "2.0"],
        }
    )
    got = _ingest(_model(tmp_path, task="multiclass"), frame, chunks=1)
    assert got["accuracy"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_regression_metrics_equal_scikit_learn(tmp_path: Path, seed: int) -> None:
    """MAE, RMSE, MAPE and R2 within 1e-6 of scikit-learn."""
    rng = np.random.default_rng(seed)
    n = 5000
    actual = rng.normal(50, 10, n).round(3)
    predicted = (actual + rng.normal(0, 3, n)).round(3)
    frame = pd.DataFrame(
        {"timestamp": _timestamps(n, rng), "prediction": predicted, "actual": actual}
    )
    got = _ingest(_model(tmp_path, task="regression"), frame)
    assert got["mae"] == pytest.approx(metrics.mean_absolute_error(actual, predicted), abs=1e-6)
    rmse = np.sqrt(metrics.mean_squared_error(actual, predicted))
    assert got["rmse"] == pytest.approx(rmse, abs=1e-6)
    mape = metrics.mean_absolute_percentage_error(actual, predicted)
    assert got["mape"] == pytest.approx(mape, abs=1e-6)
    assert got["r2"] == pytest.approx(metrics.r2_score(actual, predicted), abs=1e-6)


def test_course_log_gives_three_predictions_and_accuracy_one(tmp_path: Path) -> None:
    """The classic course log, with a config of only name, task and predictions.path."""
    model = config_from_mapping(
        {"models": [{"name": "m", "task": "binary", "predictions": {"path": "p.csv"}}]},
        base_dir=tmp_path,
    ).models[0]
    log = "timestamp,prediction,actual\n2024-06-01 12:00,0.8,1\n2024-06-01 13:00,0.4,0\n"
    log += "2024-06-01 14:00,0.9,1\n"
    header, _, body = log.partition("\n")
    state = ModelState(model)
    state.add_predictions(
        parse_csv(header.encode(), body.encode(), prediction_schema(model)), now=START + 86400
    )
    snapshot = state.snapshot()
    assert snapshot.predictions_total == {"": 3}
    by_window = {w.window.name: w for w in snapshot.windows}
    day = window_model_quality("binary", by_window["1d"].model_quality[""])
    assert by_window["1d"].model_quality[""].predictions == 3
    assert day["accuracy"] == 1.0


def test_undefined_figures_are_absent() -> None:
    """Precision with no predicted positive and R2 of a constant target export no sample."""
    assert "precision" not in model_quality.binary_metrics(np.array([[5, 0], [2, 0]]))
    assert "r2" not in model_quality.regression_metrics(
        count=3,
        abs_error_sum=1.0,
        squared_error_sum=1.0,
        abs_percentage_error_sum=0.1,
        actual_sum=30.0,
        actual_squared_sum=300.0,
    )


def test_only_the_columns_the_model_reads_are_parsed(tmp_path: Path) -> None:
    """With features configured, other columns (request ids, free text) are skipped and
    cannot reject a row; without, every column is kept for the monitor to infer from."""
    header = b"timestamp,id,note,age,prediction,actual\n"
    data = b'2024-06-01T00:00:00Z,r1,"a, b",31,0.9,1\n2024-06-01T00:00:01Z,r2,x,40,0.2,0\n'
    configured = _model(tmp_path, task="binary", features={"age": "numeric"})
    rows = parse_csv(header, data, prediction_schema(configured))
    assert not rows.rejected
    assert sorted(rows.frame.columns) == ["actual", "age", "prediction", "timestamp"]
    with_outcomes = _model(
        tmp_path, task="binary", features={"age": "numeric"}, outcomes={"path": "o.csv"}
    )
    assert "id" in parse_csv(header, data, prediction_schema(with_outcomes)).frame.columns
    unmonitored = prediction_schema(configured, features=False)  # no monitor: no features
    assert sorted(parse_csv(header, data, unmonitored).frame.columns) == [
        "actual",
        "prediction",
        "timestamp",
    ]
    inferred = parse_csv(header, data, prediction_schema(_model(tmp_path, task="binary")))
    assert list(inferred.frame.columns) == [
        "timestamp",
        "id",
        "note",
        "age",
        "prediction",
        "actual",
    ]
