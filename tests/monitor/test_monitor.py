"""Tests for exporter.monitor: log rows in, data-quality and drift samples out.

Rows go the way the exporter sends them: CSV text through `parse_csv` into `ModelState`
(which calls the monitor), then a scrape of `ExporterCollector` with the monitor's
`MonitorCollector` as an extra, read from a private `CollectorRegistry`. Statistics are
compared with scipy on the same rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from scipy import stats
from scipy.spatial.distance import jensenshannon
from support import assert_promtool_clean, read_everything

from exporter.collectors.collector import ExporterCollector
from exporter.collectors.drift import MonitorCollector
from exporter.config import ConfigError, ModelConfig, config_from_mapping
from exporter.ingest.csv_rows import parse_csv
from exporter.ingest.engine import EngineSnapshot
from exporter.ingest.model_schemas import outcome_schema, prediction_schema
from exporter.monitor.baseline import MONITOR_FINE_BINS
from exporter.monitor.build import build_monitor, build_monitors
from exporter.monitor.describe import describe
from exporter.monitor.encoding import category_counts
from exporter.monitor.monitor import Monitor
from exporter.monitor.profiling import binned_profiles
from exporter.state.model_state import ModelState
from exporter.stats.fine_grid import fine_histogram
from exporter.stats.profile import CategoricalProfile, FeatureCounts, NumericProfile, Profile
from exporter.stats.reference import CategoricalReference, NumericReference

START = 1_717_200_000.0
PLANS = np.array(["basic", "pro", "team", "enterprise"], dtype=object)
REGIONS = np.array(["north", "south", "east", "west"], dtype=object)


# --- helpers -------------------------------------------------------------------------------


def model_config(tmp_path: Path, index: int = 0, **model: Any) -> ModelConfig:
    """A validated model config; `model` overrides the defaults of a binary model."""
    entry = {
        "name": "credit",
        "task": "binary",
        "predictions": {"path": str(tmp_path / "predictions.csv")},
        "windows": ["1h"],
        **model,
    }
    models = [dict(entry, name=f"other{i}") for i in range(index)] + [entry]
    config = config_from_mapping(
        {"state_dir": str(tmp_path / "state"), "models": models}, base_dir=tmp_path
    )
    return config.models[index]


def write_reference(tmp_path: Path, frame: pd.DataFrame, name: str = "reference.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def with_times(frame: pd.DataFrame, start: float = START, step: float = 0.5) -> pd.DataFrame:
    """`frame` with a timestamp column first (every row inside one 1h window by default)."""
    stamped = frame.copy()
    stamped.insert(0, "timestamp", start + np.arange(len(frame)) * step)
    return stamped


def feed(state: ModelState, frame: pd.DataFrame) -> None:
    """Send rows the way the engine does: CSV text, parsed, into the model state."""
    text = frame.to_csv(index=False).encode()
    header, body = text.split(b"\n", 1)
    rows = parse_csv(header, body, prediction_schema(state.model))
    assert len(rows.frame) == len(frame), rows.rejected
    state.add_predictions(rows, now=time.time())


def feed_outcomes(state: ModelState, frame: pd.DataFrame) -> None:
    text = frame.to_csv(index=False).encode()
    header, body = text.split(b"\n", 1)
    state.add_outcomes(parse_csv(header, body, outcome_schema(state.model)), now=time.time())


def registry_of(states: Iterable[ModelState], monitors: Mapping[str, Monitor]) -> CollectorRegistry:
    states = tuple(states)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        ExporterCollector(
            lambda: EngineSnapshot(tuple(s.snapshot() for s in states), (), True, None),
            extra=[MonitorCollector(monitors)],
        )
    )
    return registry


def scrape(state: ModelState) -> dict[tuple[str, frozenset], float]:
    """Every monitor sample of one model state, keyed by (name, labels)."""
    assert isinstance(state.monitor, Monitor)
    registry = registry_of([state], {state.model.name: state.monitor})
    samples = {}
    for family in registry.collect():
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def sample(samples: Mapping, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def names_of(samples: Mapping) -> set[str]:
    return {name for name, _ in samples}


def monitored(model: ModelConfig) -> ModelState:
    monitor = build_monitor(model, 0)
    assert monitor is not None
    return ModelState(model, monitor=monitor)


def credit_rows(rng: np.random.Generator, rows: int, drifted: bool) -> pd.DataFrame:
    """A credit model's features; with `drifted`, income and region change."""
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, rows).round(2),
            "income": rng.lognormal(10.5 if drifted else 10, 1, rows).round(2),
            "tenure": rng.poisson(4, rows),
            "score": rng.uniform(0, 1, rows).round(4),
            "plan": rng.choice(PLANS, rows, p=[0.4, 0.3, 0.2, 0.1]),
            "region": rng.choice(REGIONS, rows, p=[0.55, 0.15, 0.15, 0.15] if drifted else None),
            "prediction": rng.beta(2, 5, rows).round(4),
        }
    )


CREDIT_FEATURES = {
    "age": "numeric",
    "income": "numeric",
    "tenure": "numeric",
    "score": "numeric",
    "plan": "categorical",
    "region": "categorical",
}
CREDIT_DRIFTED = {"income", "region"}


def numeric(profile: Profile) -> NumericProfile:
    assert isinstance(profile, NumericProfile)
    return profile


# --- data quality ----------------------------------------------------------------------------


def test_quality_ratios_are_exact_with_injected_problems(tmp_path: Path) -> None:
    """Missing, invalid, out-of-range and unseen ratios count exactly the injected rows."""
    rng = np.random.default_rng(1)
    reference = pd.DataFrame(
        {
            "age": rng.uniform(18, 90, 2000).round(1),
            "income": rng.uniform(0, 1000, 2000).round(1),
            "plan": rng.choice(PLANS, 2000),
            "prediction": rng.random(2000).round(3),
        }
    )
    model = model_config(
        tmp_path,
        features={"age": {"type": "numeric", "min": 18}, "income": "numeric", "plan": None},
        reference={"path": write_reference(tmp_path, reference)},
    )
    rows = 400
    live = pd.DataFrame(
        {
            "age": rng.uniform(18, 90, rows).round(1).astype(object),
            "income": rng.uniform(0, 1000, rows).round(1).astype(object),
            "plan": rng.choice(PLANS, rows),
            "prediction": rng.random(rows).round(3),
        }
    )
    live.loc[0:9, "age"] = ""  # 10 missing
    live.loc[10:14, "age"] = "forty"  # 5 invalid
    live.loc[15:17, "age"] = 12.0  # 3 below the configured min
    live.loc[18:19, "age"] = 95.0  # 2 above the reference max (no max configured)
    live.loc[20:26, "income"] = "n/a!"  # 7 invalid
    live.loc[27:30, "income"] = -5.0  # 4 below the reference min
    live.loc[31:32, "income"] = "inf"  # 2 invalid (not finite)
    live.loc[0:5, "plan"] = "premium"  # 6 unseen
    live.loc[6:8, "plan"] = ""  # 3 missing
    state = monitored(model)
    feed(state, with_times(live))
    samples = scrape(state)
    labels = {"model": "credit", "window": "1h"}
    expected = {
        ("mlmodel_feature_missing_ratio", "age"): 10 / rows,
        ("mlmodel_feature_invalid_ratio", "age"): 5 / rows,
        ("mlmodel_feature_out_of_range_ratio", "age"): 5 / rows,
        ("mlmodel_feature_missing_ratio", "income"): 0.0,
        ("mlmodel_feature_invalid_ratio", "income"): 9 / rows,
        ("mlmodel_feature_out_of_range_ratio", "income"): 4 / rows,
        ("mlmodel_feature_missing_ratio", "plan"): 3 / rows,
        ("mlmodel_feature_unseen_category_ratio", "plan"): 6 / rows,
    }
    for (name, feature), value in expected.items():
        assert sample(samples, name, feature=feature, **labels) == value, (name, feature)
    assert sample(samples, "mlmodel_feature_invalid_ratio", feature="plan", **labels) is None
    assert sample(samples, "mlmodel_feature_unseen_category_ratio", feature="age", **labels) is None


def test_without_reference_only_data_quality(tmp_path: Path) -> None:
    """No reference: missing and invalid always, out of range only with min/max, no drift;
    a feature without a type is numeric."""
    model = model_config(
        tmp_path, features={"age": {"type": "numeric", "max": 100}, "debt": "numeric", "c": None}
    )
    live = pd.DataFrame(
        {
            "age": [30, 140, "", 50] * 50,
            "debt": [1.0, "x", 2.0, 3.0] * 50,
            "c": ["a", "b", "", "c"] * 50,
            "prediction": [0.1, 0.2, 0.3, 0.4] * 50,
        }
    )
    state = monitored(model)
    feed(state, with_times(live))
    samples = scrape(state)
    labels = {"model": "credit", "window": "1h"}
    assert sample(samples, "mlmodel_feature_out_of_range_ratio", feature="age", **labels) == 0.25
    assert sample(samples, "mlmodel_feature_missing_ratio", feature="age", **labels) == 0.25
    assert sample(samples, "mlmodel_feature_invalid_ratio", feature="debt", **labels) == 0.25
    assert sample(samples, "mlmodel_feature_out_of_range_ratio", feature="debt", **labels) is None
    assert sample(samples, "mlmodel_feature_missing_ratio", feature="c", **labels) == 0.25
    assert sample(samples, "mlmodel_feature_invalid_ratio", feature="c", **labels) == 0.75
    assert not {n for n in names_of(samples) if "drift" in n or "reconstruction" in n}


# --- drift through the whole path -------------------------------------------------------------


@pytest.fixture(scope="module")
def credit_scrape(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Reference 20k rows, window 5k rows with income and region drifted, scraped once."""
    tmp_path = tmp_path_factory.mktemp("credit")
    reference = credit_rows(np.random.default_rng(11), 20_000, drifted=False)
    window = credit_rows(np.random.default_rng(12), 5000, drifted=True)
    model = model_config(
        tmp_path,
        features=CREDIT_FEATURES,
        reference={"path": write_reference(tmp_path, reference)},
    )
    state = monitored(model)
    feed(state, with_times(window[:3000]))
    feed(state, with_times(window[3000:], start=START + 1500))
    return {"reference": reference, "window": window, "samples": scrape(state)}


@pytest.mark.parametrize("feature", ["age", "income", "tenure", "score"])
def test_numeric_drift_matches_scipy(credit_scrape: dict[str, Any], feature: str) -> None:
    """KS within 0.01 of ks_2samp with the same decision at 0.05; Wasserstein within 5%."""
    samples, labels = credit_scrape["samples"], {"model": "credit", "window": "1h"}
    ref = credit_scrape["reference"][feature].to_numpy(dtype=float)
    cur = credit_scrape["window"][feature].to_numpy(dtype=float)
    exact = stats.ks_2samp(ref, cur)
    ks = sample(samples, "mlmodel_feature_drift_score", feature=feature, method="ks", **labels)
    pvalue = sample(samples, "mlmodel_feature_drift_pvalue", feature=feature, method="ks", **labels)
    assert ks is not None
    assert pvalue is not None
    assert abs(ks - exact.statistic) <= 0.01
    assert (pvalue < 0.05) == (exact.pvalue < 0.05)
    wasserstein = sample(
        samples, "mlmodel_feature_drift_score", feature=feature, method="wasserstein", **labels
    )
    expected = stats.wasserstein_distance(ref, cur) / ref.std()
    assert wasserstein == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("feature", ["plan", "region"])
def test_categorical_drift_matches_scipy(credit_scrape: dict[str, Any], feature: str) -> None:
    """Jensen-Shannon and the two-sample chi-square over the categories equal scipy's
    (``jensenshannon``, ``chi2_contingency`` without continuity correction) within 1e-6."""
    samples, labels = credit_scrape["samples"], {"model": "credit", "window": "1h"}
    ref_counts = credit_scrape["reference"][feature].value_counts()
    cur_counts = credit_scrape["window"][feature].value_counts().reindex(ref_counts.index)
    js = sample(
        samples, "mlmodel_feature_drift_score", feature=feature, method="jensenshannon", **labels
    )
    assert js == pytest.approx(jensenshannon(ref_counts, cur_counts), abs=1e-6)
    chi = stats.chi2_contingency([ref_counts, cur_counts], correction=False)
    score = sample(
        samples, "mlmodel_feature_drift_score", feature=feature, method="chisquare", **labels
    )
    assert score == pytest.approx(chi.statistic, rel=1e-6)
    pvalue = sample(
        samples, "mlmodel_feature_drift_pvalue", feature=feature, method="chisquare", **labels
    )
    assert pvalue == pytest.approx(chi.pvalue, rel=1e-6, abs=1e-12)


def test_auto_flags_exactly_the_drifted_features(credit_scrape: dict[str, Any]) -> None:
    """With a 20k-row reference, auto = normed Wasserstein / Jensen-Shannon >= 0.1."""
    samples, labels = credit_scrape["samples"], {"model": "credit", "window": "1h"}
    flagged = {
        feature
        for feature in CREDIT_FEATURES
        if sample(samples, "mlmodel_feature_drifted", feature=feature, **labels) == 1
    }
    assert flagged == CREDIT_DRIFTED
    ratio = sample(samples, "mlmodel_drifted_features_ratio", **labels)
    assert ratio == pytest.approx(len(CREDIT_DRIFTED) / len(CREDIT_FEATURES))
    methods = {
        dict(labels_)["method"]
        for name, labels_ in samples
        if name == "mlmodel_feature_drift_score" and dict(labels_)["feature"] == "age"
    }
    assert methods == {"psi", "ks", "wasserstein", "jensenshannon", "chisquare"}


def test_auto_with_a_small_reference_uses_the_tests(tmp_path: Path) -> None:
    """A <= 1000-row reference: KS and chi-square p < 0.05 decide, and flag the drift."""
    reference = credit_rows(np.random.default_rng(5), 800, drifted=False)
    model = model_config(
        tmp_path, features=CREDIT_FEATURES, reference={"path": write_reference(tmp_path, reference)}
    )
    state = monitored(model)
    feed(state, with_times(credit_rows(np.random.default_rng(6), 2000, drifted=True)))
    samples = scrape(state)
    labels = {"model": "credit", "window": "1h"}
    flagged = {
        f
        for f in CREDIT_FEATURES
        if sample(samples, "mlmodel_feature_drifted", feature=f, **labels)
    }
    assert flagged == CREDIT_DRIFTED
    lines = "\n".join(describe(model, state.monitor))  # type: ignore[arg-type]
    assert "age: numeric (configured)" in lines
    assert "drift by ks (p < 0.05; auto: 800 reference values <= 1000)" in lines
    assert "drift by chisquare (p < 0.05" in lines


def test_configured_method_and_thresholds_decide(tmp_path: Path) -> None:
    """drift.method psi with its threshold decides for numeric and categorical features."""
    reference = credit_rows(np.random.default_rng(7), 5000, drifted=False)
    model = model_config(
        tmp_path,
        features=CREDIT_FEATURES,
        reference={"path": write_reference(tmp_path, reference)},
        drift={"method": "psi", "thresholds": {"psi": 10.0}},
    )
    state = monitored(model)
    feed(state, with_times(credit_rows(np.random.default_rng(8), 2000, drifted=True)))
    samples = scrape(state)
    labels = {"model": "credit", "window": "1h"}
    assert all(
        sample(samples, "mlmodel_feature_drifted", feature=f, **labels) == 0
        for f in CREDIT_FEATURES
    )
    assert sample(samples, "mlmodel_drifted_features_ratio", **labels) == 0


def test_correlation_change_fires_only_multivariate_drift(tmp_path: Path) -> None:
    """Two features swap correlation 0.8 -> -0.8, marginals unchanged: only PCA notices."""
    rng = np.random.default_rng(13)

    def rows(count: int, rho: float) -> pd.DataFrame:
        x = rng.normal(size=count)
        y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=count)
        return pd.DataFrame(
            {
                "income": (50 + 10 * x).round(3),
                "debt": (20 + 4 * y).round(3),
                "age": rng.normal(40, 10, count).round(2),
                "prediction": rng.random(count).round(3),
            }
        )

    path = write_reference(tmp_path, rows(20_000, 0.8))
    model = model_config(tmp_path, features=["income", "debt", "age"], reference={"path": path})
    changed, stable = monitored(model), monitored(model)
    feed(changed, with_times(rows(5000, -0.8)))
    feed(stable, with_times(rows(5000, 0.8)))
    labels = {"model": "credit", "window": "1h"}
    for state, expected in ((changed, 1), (stable, 0)):
        samples = scrape(state)
        assert sample(samples, "mlmodel_multivariate_drifted", **labels) == expected
        assert sample(samples, "mlmodel_drifted_features_ratio", **labels) == 0
    error = sample(scrape(changed), "mlmodel_reconstruction_error", **labels)
    assert error is not None
    assert error > 3 * sample(scrape(stable), "mlmodel_reconstruction_error", **labels)  # type: ignore[operator]


def test_min_rows_guard(tmp_path: Path) -> None:
    """Under drift.min_rows binned rows no drift sample; quality ratios are there."""
    reference = credit_rows(np.random.default_rng(3), 3000, drifted=False)
    model = model_config(
        tmp_path, features=CREDIT_FEATURES, reference={"path": write_reference(tmp_path, reference)}
    )
    state = monitored(model)
    live = with_times(credit_rows(np.random.default_rng(4), 100, drifted=False))
    feed(state, live[:99])
    samples = scrape(state)
    assert "mlmodel_feature_missing_ratio" in names_of(samples)
    drift_names = {
        "mlmodel_feature_drift_score",
        "mlmodel_feature_drift_pvalue",
        "mlmodel_feature_drifted",
        "mlmodel_drifted_features_ratio",
        "mlmodel_prediction_drift_score",
        "mlmodel_prediction_drifted",
        "mlmodel_reconstruction_error",
        "mlmodel_multivariate_drifted",
    }
    assert not names_of(samples) & drift_names
    feed(state, live[99:])
    assert drift_names <= names_of(scrape(state))


def test_window_without_rows_exports_nothing(tmp_path: Path) -> None:
    """A model whose windows hold no rows yields no data-quality or drift sample."""
    reference = credit_rows(np.random.default_rng(3), 500, drifted=False)
    model = model_config(
        tmp_path, features=CREDIT_FEATURES, reference={"path": write_reference(tmp_path, reference)}
    )
    state = monitored(model)
    assert not {n for n in names_of(scrape(state)) if n.startswith("mlmodel_feature")}
    assert not names_of(scrape(state)) & {"mlmodel_reconstruction_error"}
    assert state.monitor.window_report(FeatureCounts()) is None  # type: ignore[union-attr]


# --- prediction and outcome drift ------------------------------------------------------------


def test_prediction_drift(tmp_path: Path) -> None:
    """Scores that move flag prediction drift, with the deciding method as label."""
    rng = np.random.default_rng(17)
    reference = pd.DataFrame({"x": rng.normal(size=5000), "prediction": rng.beta(2, 5, 5000)})
    model = model_config(
        tmp_path, features=["x"], reference={"path": write_reference(tmp_path, reference)}
    )
    moved, same = monitored(model), monitored(model)
    feed(
        moved,
        with_times(
            pd.DataFrame({"x": rng.normal(size=2000), "prediction": rng.beta(5, 2, 2000).round(4)})
        ),
    )
    feed(
        same,
        with_times(
            pd.DataFrame({"x": rng.normal(size=2000), "prediction": rng.beta(2, 5, 2000).round(4)})
        ),
    )
    labels = {"model": "credit", "window": "1h", "method": "wasserstein"}
    assert sample(scrape(moved), "mlmodel_prediction_drifted", **labels) == 1
    assert sample(scrape(same), "mlmodel_prediction_drifted", **labels) == 0
    score = sample(scrape(moved), "mlmodel_prediction_drift_score", **labels)
    assert score is not None
    assert score > 1


def test_outcome_drift_for_binary_outcomes_joined_later(tmp_path: Path) -> None:
    """Late outcomes joined by id count against the reference's actual column."""
    rng = np.random.default_rng(19)
    reference = pd.DataFrame(
        {
            "x": rng.normal(size=4000),
            "prediction": rng.random(4000).round(3),
            "actual": np.where(rng.random(4000) < 0.2, "yes", "no"),
        }
    )
    model = model_config(
        tmp_path,
        positive_class="yes",
        features=["x"],
        reference={"path": write_reference(tmp_path, reference)},
        outcomes={"path": str(tmp_path / "outcomes.csv")},
    )
    states, actuals = {}, {}
    for share in (0.2, 0.6):
        state = monitored(model)
        ids = [f"r{i}" for i in range(1000)]
        live = pd.DataFrame({"id": ids, "x": rng.normal(size=1000), "prediction": 0.5})
        feed(state, with_times(live))
        actuals[share] = np.where(rng.random(1000) < share, "yes", "no")
        feed_outcomes(state, pd.DataFrame({"id": ids, "actual": actuals[share]}))
        states[share] = scrape(state)
    labels = {"model": "credit", "window": "1h"}
    quiet = sample(states[0.2], "mlmodel_outcome_drift_score", method="jensenshannon", **labels)
    loud = sample(states[0.6], "mlmodel_outcome_drift_score", method="jensenshannon", **labels)
    assert quiet is not None
    assert loud is not None
    assert quiet < 0.05
    assert loud > 0.2
    ref_counts = reference["actual"].value_counts()
    cur_counts = pd.Series(actuals[0.6]).value_counts().reindex(ref_counts.index)
    expected = stats.chi2_contingency([ref_counts, cur_counts], correction=False)
    chi = sample(states[0.6], "mlmodel_outcome_drift_score", method="chisquare", **labels)
    assert chi == pytest.approx(expected.statistic, rel=1e-9)


def test_multiclass_predictions_drift_by_label(tmp_path: Path) -> None:
    """Multiclass predictions are class labels, and so are outcomes (the model state maps
    its class indices back to labels); an array of indices is not counted."""
    rng = np.random.default_rng(23)
    classes = np.array(["cat", "dog", "bird"], dtype=object)
    reference = pd.DataFrame(
        {
            "x": rng.normal(size=3000),
            "prediction": rng.choice(classes, 3000, p=[0.6, 0.3, 0.1]),
            "actual": rng.choice(classes, 3000),
        }
    )
    model = model_config(
        tmp_path,
        task="multiclass",
        features=["x"],
        reference={"path": write_reference(tmp_path, reference)},
    )
    state = monitored(model)
    live = pd.DataFrame(
        {
            "x": rng.normal(size=1000),
            "prediction": rng.choice(classes, 1000, p=[0.2, 0.3, 0.5]),
            "actual": rng.choice(classes, 1000),
        }
    )
    feed(state, with_times(live))
    samples = scrape(state)
    labels = {"model": "credit", "window": "1h", "method": "jensenshannon"}
    assert sample(samples, "mlmodel_prediction_drifted", **labels) == 1
    monitor = state.monitor
    assert isinstance(monitor, Monitor)
    assert monitor.profile_outcomes(np.array([0.0, 1.0])).binned == {}  # indices: not mappable
    labelled = monitor.profile_outcomes(np.array(["cat", "dog", "cat", "fish"], dtype=object))
    assert monitor.baseline.tag is not None
    profile = labelled.binned[monitor.baseline.tag].outcome
    assert isinstance(profile, CategoricalProfile)
    counts = profile.counts
    outcome = monitor.baseline.outcome
    assert outcome is not None
    assert isinstance(outcome.ref, CategoricalReference)
    by_label = dict(zip([*outcome.ref.categories, "other", "unseen"], counts.tolist(), strict=True))
    assert by_label == {"cat": 2, "dog": 1, "bird": 0, "other": 0, "unseen": 1}


# --- from_stream ----------------------------------------------------------------------------


def stream_rows(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": rng.normal(shift, 1, rows).round(4),
            "c": rng.choice(PLANS, rows),
            "y": rng.integers(0, 50, rows),  # untyped: inferred when the reference is fitted
            "prediction": rng.random(rows).round(3),
            "actual": rng.integers(0, 2, rows),
        }
    )


def test_from_stream_reference_survives_restarts(tmp_path: Path) -> None:
    """The buffer, then the fitted reference, round-trip through state(); drift only
    counts rows after the reference, and a restarted monitor gives the same figures."""
    model = model_config(
        tmp_path,
        features={"x": "numeric", "c": "categorical", "y": None},
        reference={"from_stream": 1000},
    )
    rng = np.random.default_rng(29)
    first = with_times(stream_rows(rng, 600))
    second = with_times(stream_rows(rng, 600, shift=1.0), start=START + 300)
    third = with_times(stream_rows(rng, 300, shift=1.0), start=START + 600)
    labels = {"model": "credit", "window": "1h"}

    steady = monitored(model)
    feed(steady, first)
    samples = scrape(steady)
    assert sample(samples, "mlmodel_feature_missing_ratio", feature="y", **labels) == 0
    assert sample(samples, "mlmodel_feature_invalid_ratio", feature="y", **labels) is None
    assert not {n for n in names_of(samples) if "drift" in n}

    restarted = monitored(model)
    restarted.restore(steady.state())  # mid-buffer
    for state in (steady, restarted):
        feed(state, second)  # 400 more reference rows, then 200 live rows
    monitor = steady.monitor
    assert isinstance(monitor, Monitor)
    assert isinstance(restarted.monitor, Monitor)
    tag = monitor.baseline.tag
    assert tag is not None
    assert restarted.monitor.baseline.tag == tag
    window = steady.snapshot().windows[0].features
    assert window.rows == 1200
    binned = numeric(binned_profiles(window, monitor.baseline).features["x"]).fine_counts
    assert int(binned.sum()) == 200
    assert any(
        line.startswith("y: numeric (inferred from the reference)")
        for line in describe(model, monitor)
    )

    again = monitored(model)
    again.restore(restarted.state())  # after the fit
    assert isinstance(again.monitor, Monitor)
    assert again.monitor.baseline.tag == tag
    for state in (steady, restarted, again):
        feed(state, third)
    figures = [scrape(state) for state in (steady, restarted, again)]
    assert figures[0] == figures[1] == figures[2]
    assert sample(figures[0], "mlmodel_feature_drifted", feature="x", **labels) == 1
    assert sample(figures[0], "mlmodel_feature_drifted", feature="c", **labels) == 0
    assert sample(figures[0], "mlmodel_feature_invalid_ratio", feature="y", **labels) == 0


# --- engine, bins, safety ----------------------------------------------------------------------


def test_bucket_profiles_count_every_value_once(tmp_path: Path) -> None:
    """Encode-once bucket profiles add up to the chunk's fine histogram / category counts."""
    rng = np.random.default_rng(31)
    reference = credit_rows(rng, 5000, drifted=False)
    model = model_config(
        tmp_path,
        features=CREDIT_FEATURES,
        reference={"path": write_reference(tmp_path, reference)},
        windows=["1d", "2h"],
    )
    state = monitored(model)
    live = credit_rows(rng, 3000, drifted=True)
    feed(state, with_times(live, step=2.0))  # 100 min: several buckets of both windows
    monitor = state.monitor
    assert isinstance(monitor, Monitor)
    for window in state.snapshot().windows:
        binned = binned_profiles(window.features, monitor.baseline).features
        for spec in monitor.baseline.features:
            values = live[spec.name].to_numpy()
            if isinstance(spec.ref, NumericReference):
                finite = values.astype(float)
                counts, offsets = fine_histogram(spec.ref.fine_edges, finite[np.isfinite(finite)])
                got = numeric(binned[spec.name])
                assert np.array_equal(got.fine_counts, counts)
                np.testing.assert_allclose(got.fine_offsets, offsets, rtol=1e-9, atol=1e-6)
            else:
                assert isinstance(spec.ref, CategoricalReference)
                expected = category_counts(values, spec.ref)
                profile = binned[spec.name]
                assert isinstance(profile, CategoricalProfile)
                assert np.array_equal(profile.counts, expected)


def test_grid_is_coarse_but_bounded(tmp_path: Path) -> None:
    """The per-bucket grid has ~MONITOR_FINE_BINS points: KS error bound under 0.01."""
    reference = credit_rows(np.random.default_rng(37), 20_000, drifted=False)
    model = model_config(
        tmp_path, features=CREDIT_FEATURES, reference={"path": write_reference(tmp_path, reference)}
    )
    monitor = build_monitor(model, 0)
    assert monitor is not None
    for spec in monitor.baseline.features:
        if spec.type == "numeric":
            assert len(spec.ref.fine_edges) <= MONITOR_FINE_BINS + 12  # type: ignore[union-attr]
            assert spec.ref.ks_error_bound <= 2 / MONITOR_FINE_BINS  # type: ignore[union-attr]


def test_a_changed_reference_never_mixes_with_old_bins(tmp_path: Path) -> None:
    """Buckets checkpointed against another reference file are ignored, never summed."""
    path = tmp_path / "reference.csv"
    credit_rows(np.random.default_rng(41), 3000, drifted=False).to_csv(path, index=False)
    model = model_config(tmp_path, features=CREDIT_FEATURES, reference={"path": str(path)})
    old = monitored(model)
    feed(old, with_times(credit_rows(np.random.default_rng(42), 500, drifted=False)))
    saved = old.state()
    credit_rows(np.random.default_rng(43), 2000, drifted=True).to_csv(path, index=False)
    new = monitored(model)
    assert isinstance(new.monitor, Monitor)
    assert isinstance(old.monitor, Monitor)
    assert new.monitor.fingerprint != old.monitor.fingerprint
    new.restore(saved)
    feed(
        new,
        with_times(credit_rows(np.random.default_rng(44), 300, drifted=False), start=START + 400),
    )
    window = new.snapshot().windows[0].features
    assert window.rows == 800
    binned = numeric(binned_profiles(window, new.monitor.baseline).features["age"]).fine_counts
    assert int(binned.sum()) == 300
    assert scrape(new)  # computes without error


def test_unseen_category_is_one_more_chisquare_column(tmp_path: Path) -> None:
    """An unseen category is a column the reference has 0 in: the exported chi-square is
    scipy's contingency test on that table (finite). The window repeats the reference's
    shares otherwise, so the unseen values alone decide: 3 in 300 rows against a 500-row
    reference are weak evidence (p about 0.17), 60 are drift."""
    rng = np.random.default_rng(47)
    reference = pd.DataFrame({"plan": rng.choice(PLANS[:3], 500), "prediction": 0.5})
    model = model_config(
        tmp_path,
        features={"plan": "categorical"},
        reference={"path": write_reference(tmp_path, reference)},
    )
    ref_counts = reference["plan"].value_counts().reindex(PLANS[:3]).to_numpy()
    labels = {"model": "credit", "window": "1h", "feature": "plan"}
    verdicts = {}
    for unseen in (3, 60):
        seen = np.round(ref_counts / ref_counts.sum() * (300 - unseen)).astype(int)
        unseen_plans = np.where(np.arange(unseen) % 2, "enterprise", "free")
        plans = rng.permutation(np.concatenate([np.repeat(PLANS[:3], seen), unseen_plans]))
        state = monitored(model)
        feed(state, with_times(pd.DataFrame({"plan": plans, "prediction": 0.5})))
        samples = scrape(state)
        expected = stats.chi2_contingency([[*ref_counts, 0], [*seen, unseen]], correction=False)
        score = sample(samples, "mlmodel_feature_drift_score", method="chisquare", **labels)
        pvalue = sample(samples, "mlmodel_feature_drift_pvalue", method="chisquare", **labels)
        assert score is not None
        assert np.isfinite(score)
        assert score == pytest.approx(expected.statistic, rel=1e-9)
        assert pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
        verdicts[unseen] = sample(samples, "mlmodel_feature_drifted", **labels)
        ratio = sample(samples, "mlmodel_feature_unseen_category_ratio", **labels)
        assert ratio == pytest.approx(unseen / len(plans))
    assert verdicts == {3: 0, 60: 1}


def test_engine_end_to_end_with_files_passes_promtool(tmp_path: Path) -> None:
    """Real files through the Engine; /metrics text passes `promtool check metrics`."""
    rng = np.random.default_rng(53)
    write_reference(tmp_path, credit_rows(rng, 3000, drifted=False))
    with_times(credit_rows(rng, 1000, drifted=True)).to_csv(
        tmp_path / "predictions.csv", index=False
    )
    config = config_from_mapping(
        {
            "state_dir": str(tmp_path / "state"),
            "models": [
                {
                    "name": "credit",
                    "task": "binary",
                    "predictions": {"path": "predictions.csv"},
                    "features": CREDIT_FEATURES,
                    "reference": {"path": "reference.csv"},
                    "windows": ["1h", "1d"],
                }
            ],
        },
        base_dir=tmp_path,
    )
    registry = read_everything(config, now=time.time())
    labels = {"model": "credit", "window": "1d"}
    for feature in CREDIT_FEATURES:
        drifted = registry.get_sample_value(
            "mlmodel_feature_drifted", {**labels, "feature": feature}
        )
        assert drifted == (feature in CREDIT_DRIFTED), feature
    assert_promtool_clean(generate_latest(registry).decode())


# --- building and describing ---------------------------------------------------------------


def test_reference_problems_are_reported_at_once(tmp_path: Path) -> None:
    """Missing file, unreadable CSV and missing feature columns: one error, key paths."""
    (tmp_path / "empty.csv").write_text("")
    write_reference(tmp_path, pd.DataFrame({"age": [1.0, 2.0], "prediction": [0.1, 0.2]}))
    entry = {"task": "binary", "predictions": {"path": "p.csv"}, "windows": ["1h"]}
    config = config_from_mapping(
        {
            "state_dir": str(tmp_path / "state"),
            "models": [
                dict(entry, name="a", features=["age"], reference={"path": "nowhere.csv"}),
                dict(entry, name="b", features=["age"], reference={"path": "empty.csv"}),
                dict(
                    entry,
                    name="c",
                    features={"age": "numeric", "plan": "categorical", "zip": None},
                    reference={"path": "reference.csv"},
                ),
                dict(entry, name="d"),
            ],
        },
        base_dir=tmp_path,
    )
    with pytest.raises(ConfigError) as error:
        build_monitors(config)
    problems = error.value.problems
    assert problems[0] == f"models[0].reference.path: file not found: {tmp_path / 'nowhere.csv'}"
    assert problems[1].startswith("models[1].reference.path: unreadable CSV (")
    assert problems[2:] == [
        'models[2].reference.path: no column "plan" (a feature in models[2].features)',
        'models[2].reference.path: no column "zip" (a feature in models[2].features)',
    ]
    assert build_monitor(config.models[3], 3) is None


def test_describe_says_where_types_come_from(tmp_path: Path) -> None:
    """check lines: reference rows, each feature's type (inferred or not) and drift method."""
    rng = np.random.default_rng(59)
    reference = pd.DataFrame(
        {
            "age": rng.normal(40, 10, 2000).round(1),
            "plan": rng.choice(PLANS, 2000),
            "debt": rng.random(2000).round(3),
            "prediction": rng.random(2000).round(3),
            "actual": rng.integers(0, 2, 2000),
        }
    )
    model = model_config(
        tmp_path,
        features={"age": None, "plan": None, "debt": {"min": 0}},
        reference={"path": write_reference(tmp_path, reference)},
        drift={"method": "ks"},
    )
    lines = describe(model, build_monitor(model, 0))
    text = "\n".join(lines)
    assert f"({tmp_path / 'reference.csv'}) 2000 rows" in text or "(2000 rows)" in text
    assert any(line.startswith("age: numeric (inferred from the reference)") for line in lines)
    assert any(line.startswith("plan: categorical (inferred from the reference)") for line in lines)
    assert any(line.startswith("debt: numeric (implied by min/max)") for line in lines)
    assert "drift by ks (p < 0.05)" in text
    assert "ks applies to numeric values only" in text  # plan falls back to auto's choice
    assert "multivariate: PCA of 2 numeric features" in text
    assert describe(model_config(tmp_path), None) == [
        "data quality and drift: off (no features and no reference)"
    ]
