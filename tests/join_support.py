"""Helpers for the join tests: logs written from pandas frames, an in-process engine with
an injected clock and chunk size, its figures read through the real collector, and the
offline pandas oracle those figures must equal.

A case is two frames: predictions ``{timestamp, id, prediction[, model_version]}`` and
outcomes ``{id, actual[, timestamp]}``, timestamps in epoch seconds (whole numbers, so the
log text and the oracle hold the same values). Predictions are written in time order and
outcomes in outcome-time order, as a model server and a labelling job write them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from itertools import count
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, generate_latest
from support import Samples, parse_samples, select, value

from exporter.collectors.collector import ExporterCollector
from exporter.config import Config, config_from_mapping, parse_duration
from exporter.ingest.engine import Engine
from exporter.ingest.tailer import Tailer

START = 1_717_200_000  # 2024-06-01T00:00:00Z
MODEL = "m"
WINDOW_BUCKETS = 60  # the exporter's default
THRESHOLD = 0.5
JOIN_METRICS = ("pending", "waiting", "expired", "unmatched")


# --- log text ----------------------------------------------------------------------
def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def prediction_bytes(predictions: pd.DataFrame) -> bytes:
    """The prediction log: CSV, epoch-second timestamps."""
    versioned = "model_version" in predictions.columns
    header = "timestamp,id,prediction" + (",model_version" if versioned else "")
    lines = [header]
    for row in predictions.itertuples(index=False):
        line = f"{int(row.timestamp)},{row.id},{row.prediction}"
        if versioned:
            line += f",{row.model_version}"
        lines.append(line)
    return ("\n".join(lines) + "\n").encode()


def outcome_bytes(outcomes: pd.DataFrame, fmt: str = "csv", *, timed: bool = True) -> bytes:
    """The outcome log (CSV or JSONL), ISO 8601 timestamps when ``timed``."""
    if fmt == "jsonl":
        records = []
        for row in outcomes.itertuples(index=False):
            record: dict[str, Any] = {"id": row.id, "actual": int(row.actual)}
            if timed:
                record["timestamp"] = iso(row.timestamp)
            records.append(json.dumps(record) + "\n")
        return "".join(records).encode()
    lines = ["id,actual,timestamp" if timed else "id,actual"]
    for row in outcomes.itertuples(index=False):
        lines.append(f"{row.id},{int(row.actual)}" + (f",{iso(row.timestamp)}" if timed else ""))
    return ("\n".join(lines) + "\n").encode()


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


# --- cases --------------------------------------------------------------------------
def backlog_case(
    hours: float = 6,
    *,
    seed: int = 1,
    late: tuple[int, int] = (60, 900),
    missing: float = 0.0,
    unknown: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One prediction a second for ``hours``; each outcome ``late`` seconds after it (a
    ``missing`` share never comes), plus ``unknown`` outcomes for ids never predicted."""
    rng = np.random.default_rng(seed)
    n = int(hours * 3600)
    timestamps = START + np.arange(n)
    actual = rng.integers(0, 2, n)
    # a model that is right about 80% of the time, so the confusion cells all differ
    right = rng.random(n) < 0.8
    positive = np.where(right, actual == 1, actual == 0)
    scores = np.round(np.where(positive, 0.5 + 0.5 * rng.random(n), 0.5 * rng.random(n)), 4)
    scores = np.minimum(scores, 0.9999)
    predictions = pd.DataFrame(
        {"timestamp": timestamps, "id": [f"r{i}" for i in range(n)], "prediction": scores}
    )
    keep = rng.random(n) >= missing
    delay = rng.integers(late[0], late[1] + 1, n)
    outcomes = pd.DataFrame(
        {
            "id": predictions["id"][keep].to_numpy(),
            "actual": actual[keep],
            "timestamp": (timestamps + delay)[keep],
        }
    )
    if unknown:
        ghosts = pd.DataFrame(
            {
                "id": [f"ghost{i}" for i in range(unknown)],
                "actual": rng.integers(0, 2, unknown),
                "timestamp": START + rng.integers(0, n, unknown),
            }
        )
        outcomes = pd.concat([outcomes, ghosts], ignore_index=True)
    return predictions, sort_outcomes(outcomes)


def sort_outcomes(outcomes: pd.DataFrame) -> pd.DataFrame:
    return outcomes.sort_values("timestamp", kind="stable").reset_index(drop=True)


# --- the engine ---------------------------------------------------------------------
def join_config(
    directory: Path,
    *,
    max_delay: str = "30m",
    max_pending: int = 5000,
    windows: Iterable[str] = ("1h", "1d"),
    outcome_format: str = "csv",
    model_version: str | None = None,
    top: dict[str, Any] | None = None,
) -> Config:
    model: dict[str, Any] = {
        "name": MODEL,
        "task": "binary",
        "threshold": THRESHOLD,
        "predictions": {"path": "predictions.csv", "format": "csv"},
        "outcomes": {
            "path": f"outcomes.{outcome_format}",
            "format": outcome_format,
            "max_delay": max_delay,
            "max_pending": max_pending,
        },
        "windows": list(windows),
    }
    if model_version is not None:
        model["model_version"] = model_version
    raw = {"state_dir": str(directory / "state"), "models": [model], **(top or {})}
    return config_from_mapping(raw, base_dir=directory)


def ticking(step: float = 1.0) -> Callable[[], float]:
    """A monotonic clock that moves ``step`` seconds at every reading."""
    ticks = count()
    return lambda: float(next(ticks)) * step


def make_engine(
    config: Config,
    *,
    chunk_bytes: int = 8 << 20,
    now: float = START + 30 * 86400,
    monotonic: Callable[[], float] | None = None,
    checkpoints: bool = False,
) -> Engine:
    """The engine as the tests drive it: wall clock pinned, chunk size chosen, no threads."""
    return Engine(
        config,
        clock=lambda: now,
        monotonic=monotonic or ticking(),
        tailer_factory=lambda *a, **k: Tailer(*a, chunk_bytes=chunk_bytes, **k),
        checkpoints=checkpoints,
        parse_ahead=None,
    )


def scrape(engine: Engine) -> Samples:
    """What /metrics would show, through the real collector on a private registry."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(engine.snapshot))
    return parse_samples(generate_latest(registry).decode())


# --- figures -------------------------------------------------------------------------
def join_figures(samples: Samples, windows: Iterable[str] = ("1h", "1d")) -> dict[str, Any]:
    """The join's figures for model ``m``, summed over model versions."""
    m = {"model": MODEL}
    confusion: dict[tuple[str, str], float] = {}
    for labels, count_ in select(samples, "mlmodel_confusion_total", **m).items():
        cell = dict(labels)
        key = (cell["actual"], cell["predicted"])
        confusion[key] = confusion.get(key, 0) + count_
    figures: dict[str, Any] = {
        "predictions": sum(select(samples, "mlmodel_predictions_total", **m).values()),
        "outcomes": sum(select(samples, "mlmodel_outcomes_total", **m).values()),
        "confusion": {k: v for k, v in confusion.items() if v},
        "pending": value(samples, "mlmodel_exporter_pending_outcomes", **m),
        "waiting": value(samples, "mlmodel_exporter_waiting_outcomes", **m),
        "expired": value(samples, "mlmodel_exporter_expired_predictions_total", **m),
        "unmatched": value(samples, "mlmodel_exporter_unmatched_outcomes_total", **m),
    }
    for window in windows:
        labels = {**m, "model_version": "", "window": window}
        figures[f"window_predictions {window}"] = value(
            samples, "mlmodel_window_predictions", **labels
        )
        figures[f"window_outcomes {window}"] = value(samples, "mlmodel_window_outcomes", **labels)
        accuracy = value(samples, "mlmodel_accuracy_ratio", **labels)
        figures[f"accuracy {window}"] = None if accuracy is None else round(accuracy, 9)
    return figures


def oracle(
    predictions: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    max_delay: str = "30m",
    windows: Iterable[str] = ("1h", "1d"),
    timed: bool = True,
) -> dict[str, Any]:
    """The same figures from an offline pandas merge on id, for logs in time order with
    every outcome within max_delay of its prediction and fewer than max_pending in flight:

    - matched: ids on both sides (timed: with ``outcome - prediction <= max_delay``);
    - expired: predictions never matched that the outcome stream's newest timestamp is
      more than max_delay past (untimed outcomes: the prediction watermark, once the
      outcome log has been read to its end); pending: the other unmatched predictions;
    - unmatched: timed outcomes never matched that the prediction watermark is more than
      max_delay past; waiting: the other unmatched outcomes;
    - a window holds the rows in its ``WINDOW_BUCKETS`` epoch-aligned buckets up to the
      watermark's (``exporter.state.windows``)."""
    delay = parse_duration(max_delay)
    merged = predictions.merge(outcomes, on="id", how="inner", suffixes=("", "_outcome"))
    if timed:
        merged = merged[merged["timestamp_outcome"] - merged["timestamp"] <= delay]
    predicted = (merged["prediction"] >= THRESHOLD).astype(int)
    cells = pd.crosstab(merged["actual"].astype(int), predicted)
    confusion = {
        (str(a), str(p)): float(cells.loc[a, p])
        for a in cells.index
        for p in cells.columns
        if cells.loc[a, p]
    }
    watermark = float(predictions["timestamp"].max())
    lone_predictions = predictions[~predictions["id"].isin(merged["id"])]
    lone_outcomes = outcomes[~outcomes["id"].isin(merged["id"])]
    outcome_time = float(outcomes["timestamp"].max()) if timed else watermark
    if not len(outcomes):
        outcome_time = -math.inf
    expired = int((lone_predictions["timestamp"] < outcome_time - delay).sum())
    unmatched = int((lone_outcomes["timestamp"] < watermark - delay).sum()) if timed else 0
    figures: dict[str, Any] = {
        "predictions": float(len(predictions)),
        "outcomes": float(len(merged)),
        "confusion": confusion,
        "pending": float(len(lone_predictions) - expired),
        "waiting": float(len(lone_outcomes) - unmatched),
        "expired": float(expired),
        "unmatched": float(unmatched),
    }
    for window in windows:
        width = parse_duration(window) / WINDOW_BUCKETS
        oldest = math.floor(watermark / width) - WINDOW_BUCKETS + 1

        def live(timestamps: pd.Series, width: float = width, oldest: int = oldest) -> pd.Series:
            return np.floor(timestamps.to_numpy(dtype=np.float64) / width) >= oldest

        in_window = merged[live(merged["timestamp"])]
        n_predictions = int(live(predictions["timestamp"]).sum())
        right = int(
            ((in_window["prediction"] >= THRESHOLD).astype(int) == in_window["actual"]).sum()
        )
        figures[f"window_predictions {window}"] = float(n_predictions) if n_predictions else None
        figures[f"window_outcomes {window}"] = float(len(in_window)) if n_predictions else None
        figures[f"accuracy {window}"] = round(right / len(in_window), 9) if len(in_window) else None
    return figures
