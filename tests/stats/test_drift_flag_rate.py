"""How often `method: auto` flags undrifted data: the size of the drift tests.

Each trial draws a fresh 500-row reference and a fresh 2,000-row window from the same
population and sends them the way production does: the reference as a CSV file fitted
by `build_monitor`, the window as CSV text through `parse_csv` into a `ModelState`, the
verdict read from the scraped ``mlmodel_feature_drifted``. With a <= 1000-row reference
``auto`` picks chi-square (p < 0.05) for categorical features and KS (p < 0.05) for
numeric ones, so with no drift about 5% of windows should be flagged.

A fresh reference per trial is what makes the trials independent: with one fixed
reference every window is compared with the same sampled reference, and the share of
windows flagged is that reference's own luck (over 20 references of 500 rows with 400
windows each: 0% to 18% for a continuous feature, 0% to 44% for a categorical one), not
the test's size. One trial holds `COLUMNS` independent features of each kind, so
n = `TRIALS` x `COLUMNS` = 1,000 (reference, window) pairs per kind; the binomial
standard deviation at 5% is then 0.0069, and the tests allow 3 of them (0.0207).

Flag rates of this test (n = 1,000 per kind): categorical 83.5% with the former
goodness-of-fit chi-square, 5.5% with the two-sample one; continuous KS 4.3%; discrete
KS 1.2%. On 3,000 other pairs, scipy's ``ks_2samp`` flagged 4.9% of the continuous
ones (the monitor's 250-point fine grid puts the binned statistic up to 0.006 below the
exact one, so slightly fewer flags) and as many discrete ones as the binned KS: KS is
conservative when values tie.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prometheus_client import CollectorRegistry

from exporter.collectors.collector import ExporterCollector
from exporter.collectors.drift import MonitorCollector
from exporter.config import config_from_mapping
from exporter.ingest.csv_rows import parse_csv
from exporter.ingest.engine import EngineSnapshot
from exporter.ingest.model_schemas import prediction_schema
from exporter.monitor.build import build_monitor
from exporter.state.model_state import ModelState

REFERENCE_ROWS = 500
WINDOW_ROWS = 2000
TRIALS = 100
COLUMNS = 10  # independent features of each kind per trial
NOMINAL = 0.05
PAIRS = TRIALS * COLUMNS
TOLERANCE = 3 * math.sqrt(NOMINAL * (1 - NOMINAL) / PAIRS)
START = 1_717_200_000.0

CATEGORIES = np.array(["a", "b", "c", "d", "e", "f"], dtype=object)
SHARES = [0.4, 0.25, 0.15, 0.1, 0.07, 0.03]
KINDS = ("categorical", "continuous", "discrete")


def draw(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """`COLUMNS` features of each kind, all from one fixed population, and a prediction."""
    columns: dict[str, np.ndarray] = {}
    for i in range(COLUMNS):
        columns[f"categorical{i}"] = rng.choice(CATEGORIES, rows, p=SHARES)
        columns[f"continuous{i}"] = rng.lognormal(0, 1, rows)
        columns[f"discrete{i}"] = rng.poisson(3, rows)
    columns["prediction"] = rng.random(rows).round(4)
    return pd.DataFrame(columns)


def flags_of_one_trial(rng: np.random.Generator, tmp_path: Path) -> dict[str, list[bool]]:
    """Fit a fresh reference, feed a fresh window, and read each feature's verdict."""
    reference = tmp_path / "reference.csv"
    draw(rng, REFERENCE_ROWS).to_csv(reference, index=False)
    features = {
        f"{kind}{i}": "categorical" if kind == "categorical" else "numeric"
        for kind in KINDS
        for i in range(COLUMNS)
    }
    config = config_from_mapping(
        {
            "state_dir": str(tmp_path / "state"),
            "models": [
                {
                    "name": "m",
                    "task": "binary",
                    "predictions": {"path": str(tmp_path / "predictions.csv")},
                    "windows": ["1h"],
                    "features": features,
                    "reference": {"path": str(reference)},
                }
            ],
        },
        base_dir=tmp_path,
    )
    model = config.models[0]
    monitor = build_monitor(model, 0)
    assert monitor is not None
    state = ModelState(model, monitor=monitor)
    window = draw(rng, WINDOW_ROWS)
    window.insert(0, "timestamp", START + np.arange(WINDOW_ROWS) * 0.5)
    header, body = window.to_csv(index=False).encode().split(b"\n", 1)
    rows = parse_csv(header, body, prediction_schema(model))
    assert len(rows.frame) == WINDOW_ROWS, rows.rejected
    state.add_predictions(rows, now=time.time())
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        ExporterCollector(
            lambda: EngineSnapshot((state.snapshot(),), (), True, None),
            extra=[MonitorCollector({"m": monitor})],
        )
    )
    drifted = {
        s.labels["feature"]: s.value == 1
        for family in registry.collect()
        for s in family.samples
        if s.name == "mlmodel_feature_drifted"
    }
    assert len(drifted) == len(features)
    return {kind: [drifted[f"{kind}{i}"] for i in range(COLUMNS)] for kind in KINDS}


@pytest.fixture(scope="module")
def flag_rates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, float]:
    rng = np.random.default_rng(20240610)
    tmp_path = tmp_path_factory.mktemp("flag_rate")
    flags: dict[str, list[bool]] = {kind: [] for kind in KINDS}
    for _ in range(TRIALS):
        for kind, trial in flags_of_one_trial(rng, tmp_path).items():
            flags[kind].extend(trial)
    return {kind: float(np.mean(values)) for kind, values in flags.items()}


@pytest.mark.parametrize("kind", ["categorical", "continuous"])
def test_undrifted_windows_are_flagged_at_the_nominal_rate(
    kind: str, flag_rates: dict[str, float]
) -> None:
    """Chi-square (categories, unequal shares) and KS (continuous values) flag about 5%."""
    assert abs(flag_rates[kind] - NOMINAL) <= TOLERANCE, flag_rates


def test_ks_on_tied_values_is_conservative(flag_rates: dict[str, float]) -> None:
    """KS on a discrete feature flags fewer than 5% (ties make it conservative), never more."""
    assert flag_rates["discrete"] <= NOMINAL + TOLERANCE, flag_rates
