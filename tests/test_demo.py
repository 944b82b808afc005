"""The demo's simulated model: rate, outcome delay, join, quality before/after drift, files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, precision_score, recall_score

from exporter.demo import (
    CATEGORICAL_FEATURE,
    DEMO_MODEL,
    LOG_COLUMNS,
    NUMERIC_FEATURES,
    REFERENCE_COLUMNS,
    THRESHOLDS,
    DemoSimulator,
    demo_config,
)

T0 = 1_700_000_000.0
RATE = 5.0
DRIFT_AFTER = 120.0
DELAY = 20.0


class FakeClock:
    def __init__(self, start: float = T0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(tmp_path: Path, seed: int = 0, **kwargs: float) -> tuple[DemoSimulator, FakeClock]:
    clock = FakeClock()
    sim = DemoSimulator(tmp_path, clock=clock, seed=seed, **kwargs)
    return sim, clock


def run(sim: DemoSimulator, clock: FakeClock, seconds: float, step: float = 1.0) -> None:
    for _ in range(round(seconds / step)):
        clock.advance(step)
        sim.step()


def epoch(series: pd.Series) -> np.ndarray:
    stamps = pd.to_datetime(series, utc=True, format="ISO8601")
    return (stamps - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy()


def read_logs(tmp_path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    outcomes = pd.read_json(tmp_path / "outcomes.jsonl", lines=True, dtype={"timestamp": str})
    return predictions, outcomes


@pytest.fixture(scope="module")
def ten_minutes(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoSimulator, pd.DataFrame]:
    """Ten minutes of default traffic (drift at +2m), joined with all outcomes."""
    tmp_path = tmp_path_factory.mktemp("demo")
    sim, clock = make(tmp_path)
    run(sim, clock, 600)
    predictions, outcomes = read_logs(tmp_path)
    joined = predictions.merge(outcomes, on="request_id", how="inner", suffixes=("", "_outcome"))
    joined["t"] = epoch(joined["timestamp"]) - T0
    return sim, joined


def test_training_is_fast_and_writes_reference_and_header(tmp_path: Path) -> None:
    started = time.perf_counter()
    sim, _ = make(tmp_path)
    assert time.perf_counter() - started < 2.0
    reference = pd.read_csv(tmp_path / "reference.csv")
    assert tuple(reference.columns) == REFERENCE_COLUMNS
    assert len(reference) > 200
    assert not reference.isna().any().any()
    assert set(reference["actual"]) == {0, 1}
    assert reference["prediction"].between(0, 1).all()
    assert accuracy_score(reference["actual"], reference["prediction"] >= 0.5) > 0.93
    assert (tmp_path / "predictions.csv").read_text() == ",".join(LOG_COLUMNS) + "\n"
    assert (tmp_path / "outcomes.jsonl").read_text() == ""
    assert sim.step() == 0  # no time has passed


def test_rows_appear_at_the_configured_rate(tmp_path: Path) -> None:
    sim, clock = make(tmp_path, rate=4.0)
    counts = []
    for dt in (0.1, 0.2, 0.7, 2.5, 0.0, 10.0):
        clock.advance(dt)
        counts.append(sim.step())
    assert counts == [0, 1, 3, 10, 0, 40]
    predictions, _ = read_logs(tmp_path)
    assert len(predictions) == 54  # 13.5 s x 4/s
    times = epoch(predictions["timestamp"])
    np.testing.assert_allclose(times - T0, np.arange(1, 55) / 4.0, atol=1e-3)
    assert predictions["timestamp"].str.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$").all()
    assert predictions["request_id"].is_unique
    assert (predictions["model_version"] == 1).all()


def test_same_seed_same_logs_however_often_stepped(tmp_path: Path) -> None:
    a, clock_a = make(tmp_path / "a", seed=7)
    b, clock_b = make(tmp_path / "b", seed=7)
    c, clock_c = make(tmp_path / "c", seed=8)
    run(a, clock_a, 200, step=0.25)
    run(b, clock_b, 200, step=5.0)
    run(c, clock_c, 200, step=5.0)
    for name in ("predictions.csv", "outcomes.jsonl", "reference.csv"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "b" / name).read_text()
    assert (tmp_path / "a" / "predictions.csv").read_text() != (
        tmp_path / "c" / "predictions.csv"
    ).read_text()


def test_outcomes_arrive_only_after_the_delay(tmp_path: Path) -> None:
    sim, clock = make(tmp_path, outcome_delay=DELAY)
    seen = 0
    written_at: dict[str, float] = {}
    for _ in range(100):
        clock.advance(0.7)
        sim.step()
        lines = (tmp_path / "outcomes.jsonl").read_text().splitlines()
        for line in lines[seen:]:
            written_at[json.loads(line)["request_id"]] = clock.now
        seen = len(lines)
    predictions, outcomes = read_logs(tmp_path)
    assert len(outcomes) > 0
    predicted_at = dict(
        zip(predictions["request_id"], epoch(predictions["timestamp"]), strict=True)
    )
    arrival = dict(zip(outcomes["request_id"], epoch(outcomes["timestamp"]), strict=True))
    for request_id, now in written_at.items():
        assert now >= predicted_at[request_id] + DELAY
        assert predicted_at[request_id] + DELAY - 1e-3 <= arrival[request_id] <= now + 1e-3
        assert arrival[request_id] <= predicted_at[request_id] + 1.5 * DELAY + 1e-3
    # nothing older than the longest delay is still missing
    horizon = clock.now - 1.5 * DELAY
    overdue = [rid for rid, t in predicted_at.items() if t <= horizon and rid not in arrival]
    assert overdue == []


def test_every_prediction_gets_exactly_one_outcome(tmp_path: Path) -> None:
    sim, clock = make(tmp_path)
    run(sim, clock, 150, step=2.0)
    ids = set(pd.read_csv(tmp_path / "predictions.csv")["request_id"])
    run(sim, clock, 1.5 * DELAY + 1)
    predictions, outcomes = read_logs(tmp_path)
    assert outcomes["request_id"].is_unique
    assert ids <= set(outcomes["request_id"])
    assert set(outcomes["request_id"]) <= set(predictions["request_id"])
    assert set(outcomes["actual"]) == {0, 1}


def test_accuracy_is_high_before_the_drift_and_low_after(
    ten_minutes: tuple[DemoSimulator, pd.DataFrame],
) -> None:
    sim, joined = ten_minutes
    predicted = (joined["prediction"] >= 0.5).astype(int)
    before = joined["t"] < DRIFT_AFTER
    after = joined["t"] >= DRIFT_AFTER
    assert before.sum() >= 500
    assert after.sum() >= 2000
    scores = {
        name: {
            "accuracy": accuracy_score(joined["actual"][mask], predicted[mask]),
            "precision": precision_score(joined["actual"][mask], predicted[mask]),
            "recall": recall_score(joined["actual"][mask], predicted[mask]),
        }
        for name, mask in (("before", before), ("after", after))
    }
    margin = 0.03
    for metric in ("accuracy", "precision", "recall"):
        assert scores["before"][metric] >= THRESHOLDS[metric] + margin, (metric, scores)
    assert scores["after"]["accuracy"] <= THRESHOLDS["accuracy"] - 0.1, scores
    assert scores["after"]["precision"] <= THRESHOLDS["precision"] - 0.1, scores
    # the figures the story quotes match what the logs show
    for name in ("before", "after"):
        assert abs(sim.expected_quality[name]["accuracy"] - scores[name]["accuracy"]) < 0.05


def test_only_the_drifting_features_move(ten_minutes: tuple[DemoSimulator, pd.DataFrame]) -> None:
    sim, joined = ten_minutes
    reference = pd.read_csv(sim.reference_path)
    assert sim.drifting_features
    assert set(sim.drifting_features) < set(NUMERIC_FEATURES)
    before = joined[joined["t"] < DRIFT_AFTER]
    after = joined[joined["t"] >= DRIFT_AFTER]
    for feature in NUMERIC_FEATURES:
        mean, std = reference[feature].mean(), reference[feature].std()
        assert abs(before[feature].mean() - mean) < 0.2 * std, feature
        moved = (after[feature].mean() - mean) / std
        if feature in sim.drifting_features:
            assert moved >= 1.0, feature
        else:
            assert abs(moved) < 0.2, feature
    shares = reference[CATEGORICAL_FEATURE].value_counts(normalize=True)
    for part in (before, after):
        live = part[CATEGORICAL_FEATURE].value_counts(normalize=True)
        assert set(live.index) == set(shares.index)
        assert (live - shares).abs().max() < 0.05
    # the labels (the population) do not drift; only the inputs do
    assert abs(before["actual"].mean() - after["actual"].mean()) < 0.06


def test_a_few_values_are_missing(ten_minutes: tuple[DemoSimulator, pd.DataFrame]) -> None:
    _, joined = ten_minutes
    rows_with_missing = joined[list(NUMERIC_FEATURES)].isna().any(axis=1).mean()
    assert 0.003 <= rows_with_missing <= 0.02
    assert joined["prediction"].notna().all()
    assert joined[CATEGORICAL_FEATURE].notna().all()


def test_files_are_valid_csv_and_jsonl_with_complete_lines(tmp_path: Path) -> None:
    sim, clock = make(tmp_path)
    run(sim, clock, 60, step=0.9)
    for name in ("predictions.csv", "outcomes.jsonl", "reference.csv"):
        assert (tmp_path / name).read_text().endswith("\n")
    predictions, outcomes = read_logs(tmp_path)
    assert tuple(predictions.columns) == LOG_COLUMNS
    for feature in NUMERIC_FEATURES:
        assert pd.api.types.is_float_dtype(predictions[feature]), feature
    assert predictions["prediction"].between(0, 1).all()
    assert set(predictions[CATEGORICAL_FEATURE]) <= {"web", "app", "branch"}
    assert list(outcomes.columns) == ["request_id", "actual", "timestamp"]
    for line in (tmp_path / "outcomes.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert record["actual"] in (0, 1)
        assert record["timestamp"].endswith("Z")


def test_demo_config_has_exactly_the_spec_keys(tmp_path: Path) -> None:
    config = demo_config(tmp_path)
    assert set(config) == {"state_dir", "models"}
    assert config["state_dir"] == str(tmp_path / "state")
    (model,) = config["models"]
    assert set(model) == {
        "name", "task", "threshold", "positive_class", "predictions", "outcomes", "columns",
        "features", "reference", "windows", "drift", "thresholds",
    }  # fmt: skip
    assert model["name"] == DEMO_MODEL
    assert model["task"] == "binary"
    assert model["predictions"] == {"path": str(tmp_path / "predictions.csv"), "format": "csv"}
    assert model["outcomes"] == {
        "path": str(tmp_path / "outcomes.jsonl"),
        "format": "jsonl",
        "max_delay": "1h",
    }
    assert model["reference"] == {"path": str(tmp_path / "reference.csv")}
    assert model["columns"] == {"id": "request_id"}
    assert model["features"] == {
        **dict.fromkeys(NUMERIC_FEATURES, "numeric"),
        CATEGORICAL_FEATURE: "categorical",
    }
    assert set(model["thresholds"]) == {
        "accuracy", "precision", "recall", "min_outcomes", "stale_after",
        "drifted_features_ratio", "missing_ratio",
    }  # fmt: skip
    # every configured feature and the default column names are in the log
    assert set(model["features"]) <= set(LOG_COLUMNS)
    assert {"timestamp", "prediction", "model_version", "request_id"} <= set(LOG_COLUMNS)
    # the config is plain data (YAML/JSON-serialisable)
    assert json.loads(json.dumps(config)) == config


def test_story_tells_what_happens_when(tmp_path: Path) -> None:
    sim, _ = make(tmp_path)
    story = sim.story()
    text = "\n".join(story)
    assert all(isinstance(line, str) and line for line in story)
    assert str(tmp_path) in text
    for feature in sim.drifting_features:
        assert feature in text
    assert "+2m " in text  # the drift
    for alert in ("MLModelAccuracyLow", "MLModelDataDrift", "MLModelPrecisionLow"):
        assert alert in text
    assert sim.step() == 0  # telling the story writes nothing


def test_bad_arguments_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rate"):
        DemoSimulator(tmp_path, rate=0)
    with pytest.raises(ValueError, match="drift_after"):
        DemoSimulator(tmp_path, drift_after=-1)
