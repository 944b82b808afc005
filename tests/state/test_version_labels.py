"""Model-version label values follow deployments: the ``max_label_values``
(default 20) versions seen most recently in event time keep their own series; when a
newer version arrives the least recent one folds into ``__other__``, and what was counted
under it (totals, confusion cells, window buckets, predictions still waiting for their
outcome) moves there. A checkpoint and restart change nothing."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from join_support import START, append, iso, make_engine, scrape
from support import Samples, select, value

from exporter.config import config_from_mapping
from exporter.state.labels import OTHER, RecentLabels, canonical_label, canonical_labels

OUTCOMES_CSV = b"id,actual,timestamp\n"


def block_sizes(versions: int = 25) -> dict[str, int]:
    """v1..v25, each with its own number of rows, so a misattributed row shows."""
    return {f"v{k}": 30 + 7 * k for k in range(1, versions + 1)}


def deployment_rows(sizes: dict[str, int], *, with_ids: bool = False, start_hour: int = 0) -> bytes:
    """One block of rows per version, each block an hour after the previous one."""
    lines = []
    for hour, (version, size) in enumerate(sizes.items(), start=start_hour):
        for i in range(size):
            ts = START + hour * 3600 + i * 10
            score = 0.8 if i % 3 else 0.2
            if with_ids:
                lines.append(f"{iso(ts)},{version}-{i},{score},{version}\n")
            else:
                lines.append(f"{iso(ts)},{score},{i % 2},{version}\n")
    return "".join(lines).encode()


def versioned_config(directory: Path, *, outcomes: bool = False, limit: int | None = None):
    model: dict = {
        "name": "m",
        "task": "binary",
        "predictions": {"path": "predictions.csv"},
        "windows": ["30d", "1h"],
    }
    if outcomes:
        model["outcomes"] = {"path": "outcomes.csv"}
    raw: dict = {"state_dir": str(directory / "state"), "models": [model]}
    if limit is not None:
        raw["max_label_values"] = limit
    return config_from_mapping(raw, base_dir=directory)


def per_version(samples: Samples, name: str, **labels: str) -> dict[str, float]:
    return {
        dict(key)["model_version"]: v
        for key, v in select(samples, name, model="m", **labels).items()
        if v
    }


def confusion_by_version(samples: Samples) -> dict[str, float]:
    totals: dict[str, float] = {}
    for key, count in select(samples, "mlmodel_confusion_total", model="m").items():
        version = dict(key)["model_version"]
        totals[version] = totals.get(version, 0) + count
    return totals


UNSTABLE = {"mlmodel_exporter_ready", "mlmodel_exporter_last_checkpoint_timestamp_seconds"}


def model_samples(samples: Samples) -> dict:
    """Every sample about the model (none about a log file, whose path differs between
    runs), floats to 12 significant digits."""
    return {
        key: float(f"{v:.12g}")
        for key, v in samples.items()
        if key[0].startswith("mlmodel_")
        and key[0] not in UNSTABLE
        and not any(label == "source" for label, _ in key[1])
    }


@pytest.mark.parametrize("chunk_bytes", [1024, 8 << 20])
def test_25_deployments_keep_the_20_most_recent_versions_and_fold_the_rest(
    tmp_path: Path, chunk_bytes: int
) -> None:
    """v1..v25 deployed in sequence, one block of rows each: v6..v25 keep their own
    series with exact counts (totals, confusion, 30d window), ``__other__`` holds the sum
    of v1..v5, v1..v5 have no series, and the series add up to the number of rows."""
    sizes = block_sizes()
    (tmp_path / "predictions.csv").write_bytes(
        b"timestamp,prediction,actual,model_version\n" + deployment_rows(sizes)
    )
    engine = make_engine(versioned_config(tmp_path), chunk_bytes=chunk_bytes)
    try:
        engine.step()
        samples = scrape(engine)
    finally:
        engine.close()
    kept = {f"v{k}": sizes[f"v{k}"] for k in range(6, 26)}
    expected = {**kept, OTHER: sum(sizes[f"v{k}"] for k in range(1, 6))}
    assert per_version(samples, "mlmodel_predictions_total") == expected
    assert per_version(samples, "mlmodel_outcomes_total") == expected
    assert confusion_by_version(samples) == expected
    assert per_version(samples, "mlmodel_window_predictions", window="30d") == expected
    assert per_version(samples, "mlmodel_window_outcomes", window="30d") == expected
    assert sum(per_version(samples, "mlmodel_predictions_total").values()) == sum(sizes.values())
    # the 1h window holds the newest block only
    assert per_version(samples, "mlmodel_window_predictions", window="1h") == {"v25": sizes["v25"]}


def test_waiting_predictions_of_a_folded_version_are_counted_under_other(tmp_path: Path) -> None:
    """v1's predictions wait for outcomes from another log while v2..v21 are deployed
    (v1 folds into ``__other__``); when v1's outcomes arrive they count under
    ``__other__`` (totals, confusion, window), never under a version that took v1's slot."""
    sizes = block_sizes(21)
    first = {"v1": sizes["v1"]}
    later = {k: v for k, v in sizes.items() if k != "v1"}
    predictions = tmp_path / "predictions.csv"
    predictions.write_bytes(
        b"timestamp,id,prediction,model_version\n" + deployment_rows(first, with_ids=True)
    )
    outcomes = tmp_path / "outcomes.csv"
    outcomes.write_bytes(OUTCOMES_CSV)
    engine = make_engine(versioned_config(tmp_path, outcomes=True), chunk_bytes=4096)
    try:
        engine.step()
        before = scrape(engine)
        assert value(before, "mlmodel_exporter_pending_outcomes", model="m") == sizes["v1"]
        append(predictions, deployment_rows(later, with_ids=True, start_hour=1))
        engine.step()
        folded = scrape(engine)
        assert per_version(folded, "mlmodel_predictions_total")[OTHER] == sizes["v1"]
        assert "v1" not in per_version(folded, "mlmodel_predictions_total")
        # now v1's outcomes (within max_delay, 7d by default), all of them positive
        append(
            outcomes,
            "".join(
                f"v1-{i},1,{iso(START + 21 * 3600 + i)}\n" for i in range(sizes["v1"])
            ).encode(),
        )
        engine.step()
        samples = scrape(engine)
    finally:
        engine.close()
    assert value(samples, "mlmodel_exporter_pending_outcomes", model="m") == sum(later.values())
    assert per_version(samples, "mlmodel_outcomes_total") == {OTHER: sizes["v1"]}
    assert confusion_by_version(samples) == {OTHER: sizes["v1"]}
    assert per_version(samples, "mlmodel_window_outcomes", window="30d") == {OTHER: sizes["v1"]}
    positives_predicted = sum(1 for i in range(sizes["v1"]) if i % 3)
    cell = value(
        samples,
        "mlmodel_confusion_total",
        model="m",
        model_version=OTHER,
        actual="1",
        predicted="1",
    )
    assert cell == positives_predicted


def test_folded_versions_survive_a_checkpoint_and_restart(tmp_path: Path) -> None:
    """v1..v22 read, the engine closed and recreated on the same state_dir, then v23..v25
    and the outcomes: every model sample equals an uninterrupted run's, and a version
    folded before the restart stays folded (its waiting predictions included)."""
    sizes = block_sizes()
    head = {k: v for k, v in sizes.items() if int(k[1:]) <= 22}
    tail = {k: v for k, v in sizes.items() if int(k[1:]) > 22}
    header = b"timestamp,id,prediction,model_version\n"
    outcome_rows = "".join(
        f"{version}-{i},{i % 2},{iso(START + 25 * 3600 + n)}\n"
        for n, (version, i) in enumerate(
            (version, i) for version, size in sizes.items() for i in range(0, size, 2)
        )
    ).encode()

    restarted_dir = tmp_path / "restarted"
    restarted_dir.mkdir()
    (restarted_dir / "predictions.csv").write_bytes(header + deployment_rows(head, with_ids=True))
    (restarted_dir / "outcomes.csv").write_bytes(OUTCOMES_CSV)
    config = versioned_config(restarted_dir, outcomes=True)
    engine = make_engine(config, chunk_bytes=4096, checkpoints=True)
    engine.step()
    before_restart = model_samples(scrape(engine))
    assert engine.close()
    engine = make_engine(config, chunk_bytes=4096, checkpoints=True)
    try:
        assert model_samples(scrape(engine)) == before_restart
        append(
            restarted_dir / "predictions.csv", deployment_rows(tail, with_ids=True, start_hour=22)
        )
        append(restarted_dir / "outcomes.csv", outcome_rows)
        engine.step()
        after = scrape(engine)
    finally:
        engine.close()

    calm_dir = tmp_path / "calm"
    calm_dir.mkdir()
    (calm_dir / "predictions.csv").write_bytes(header + deployment_rows(sizes, with_ids=True))
    (calm_dir / "outcomes.csv").write_bytes(OUTCOMES_CSV + outcome_rows)
    calm = make_engine(versioned_config(calm_dir, outcomes=True), chunk_bytes=4096)
    try:
        calm.step()
        uninterrupted = scrape(calm)
    finally:
        calm.close()

    assert model_samples(after) == model_samples(uninterrupted)
    kept = {f"v{k}": sizes[f"v{k}"] for k in range(6, 26)}
    expected = {**kept, OTHER: sum(sizes[f"v{k}"] for k in range(1, 6))}
    assert per_version(after, "mlmodel_predictions_total") == expected
    answered = {k: (v + 1) // 2 for k, v in expected.items() if k != OTHER}
    answered[OTHER] = sum((sizes[f"v{k}"] + 1) // 2 for k in range(1, 6))
    assert per_version(after, "mlmodel_outcomes_total") == answered


def test_a_least_recent_version_seen_in_the_same_chunk_as_a_new_one_is_not_relabelled(
    tmp_path: Path,
) -> None:
    """max_label_values 2; chunk 1: a (t=10), b (t=20); chunk 2: a (t=11), c (t=30). The
    least recent version is then a (11 < 20): it folds, and its row of chunk 2 counts
    under ``__other__`` with its first one, never as c."""
    log = tmp_path / "predictions.csv"
    log.write_text(
        f"timestamp,prediction,actual,model_version\n{START + 10},0.8,1,a\n{START + 20},0.8,1,b\n"
    )
    engine = make_engine(versioned_config(tmp_path, limit=2))
    try:
        engine.step()
        append(log, f"{START + 11},0.8,1,a\n{START + 30},0.8,1,c\n".encode())
        engine.step()
        samples = scrape(engine)
    finally:
        engine.close()
    assert per_version(samples, "mlmodel_predictions_total") == {"b": 1, "c": 1, OTHER: 2}


# --- RecentLabels, the unit ----------------------------------------------------------
def assign(labels: RecentLabels, values: list[str], times: list[float]):
    slots, folded = labels.assign(np.array(values, dtype=object), np.array(times, dtype=float))
    return [labels.label(int(s)) for s in slots], folded


def test_recent_labels_fill_their_slots_then_give_up_the_least_recent() -> None:
    """Up to ``limit`` values get a slot; a newer value takes the slot of the one seen
    least recently (reported as folded); each row's label is its own value's."""
    labels = RecentLabels(3)
    assert assign(labels, ["v1", "v2", "v1"], [1, 2, 3]) == (["v1", "v2", "v1"], {})
    assert assign(labels, ["v3"], [4]) == (["v3"], {})
    named, folded = assign(labels, ["v4", "v4"], [5, 6])
    assert named == ["v4", "v4"]
    # v2 (last seen at 2) is the least recent: v1 was seen at 3
    assert list(folded.values()) == ["v2"]
    assert sorted(labels.values) == ["v1", "v3", "v4"]
    slot = next(iter(folded))
    assert labels.label(slot) == "v4"


def test_recent_labels_send_a_value_older_than_every_kept_one_to_other() -> None:
    labels = RecentLabels(2)
    assign(labels, ["a", "b"], [10, 20])
    assert assign(labels, ["old"], [5]) == ([OTHER], {})
    assert sorted(labels.values) == ["a", "b"]


def test_recent_labels_keep_the_newest_of_many_newcomers_in_one_call() -> None:
    """25 versions in one call with room for 20: the 20 newest get slots, the 5 oldest go
    to ``__other__``, nothing already kept is folded."""
    labels = RecentLabels(20)
    versions = [f"v{k}" for k in range(1, 26)]
    named, folded = assign(labels, versions, [float(k) for k in range(1, 26)])
    assert folded == {}
    assert named == [OTHER] * 5 + versions[5:]
    assert sorted(labels.values) == sorted(versions[5:])


def test_recent_labels_restored_from_their_state_decide_alike() -> None:
    """Values and last-seen times (the checkpoint) restore the same decisions."""
    labels = RecentLabels(3)
    assign(labels, ["a", "b", "c"], [1, 2, 3])
    assign(labels, ["a"], [4])
    restored = RecentLabels(3, list(labels.values), list(labels.last_seen))
    assert assign(restored, ["d"], [5]) == assign(labels, ["d"], [5])
    assert restored.values == labels.values


def test_recent_labels_never_give_a_row_the_label_of_the_value_that_took_its_slot() -> None:
    """a and b kept (last seen 10 and 20); one call with a at 11 and c at 30: a is the
    least recent and gives its slot to c, so a's row must be ``__other__``, not c."""
    labels = RecentLabels(2)
    assign(labels, ["a", "b"], [10, 20])
    named, folded = assign(labels, ["a", "c"], [11, 30])
    assert list(folded.values()) == ["a"]
    assert named == [OTHER, "c"]


LABEL_TEXTS = ["1e20", "-1e20", "9.3e18", "1e300", "9007199254740993", "3.0", "0.5", " 7 "]


@pytest.mark.parametrize("text", [*LABEL_TEXTS, "-0", "v1", "inf"])
def test_a_column_of_labels_reads_each_as_the_single_label_does(text: str) -> None:
    """Versions and class labels read in bulk as one at a time, numbers past int64 too."""
    bulk = canonical_labels(pd.Series([text], dtype=object))
    assert list(bulk) == [canonical_label(text.strip())]


def test_labels_that_are_not_finite_numbers_read_as_text_without_a_numpy_warning() -> None:
    """An `inf` or `nan` actual label is text; numpy's "invalid value" warning once leaked
    to stderr from reading such a column (found by the differential tester)."""
    column = pd.Series(["inf", "nan", "-inf", "1e400", "1.0", None])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        labels = canonical_labels(column)
    assert list(labels) == ["inf", "nan", "-inf", "1e400", "1", ""]
