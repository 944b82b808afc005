"""Label values from log data are bounded in length as well as in number: a
model_version or class label longer than 128 characters is exported as its first 115
characters, ``…`` and 12 hex digits of the SHA-256 of the whole value. The same value
always gets the same label, two long values with the same beginning keep apart, and the
cap on the number of values (``max_label_values``) applies to the bounded values.

The scenarios go through the real engine and collector: twenty 50 KB model versions, and
a multiclass model with twenty 50 KB class labels, give a /metrics of a few tens of KB
that passes ``promtool check metrics``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from join_support import START, make_engine
from prometheus_client import CollectorRegistry, generate_latest
from support import assert_promtool_clean, parse_samples, select

from exporter.collectors.collector import ExporterCollector
from exporter.config import config_from_mapping
from exporter.ingest.engine import Engine
from exporter.state.labels import MAX_LABEL_LENGTH, OTHER, LabelCapper, RecentLabels, bounded_label

LONG = 50_000  # characters in each long value
ROWS = 6  # rows per value
SMALL = 100_000  # bytes: the most /metrics may take in these scenarios


def long_value(k: int) -> str:
    """A 50 KB value that differs from the others only at its end, so a plain prefix
    would merge them all."""
    return "v" * (LONG - 8) + f"{k:08d}"


def metrics_text(engine: Engine) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ExporterCollector(engine.snapshot))
    return generate_latest(registry).decode()


def label_values(text: str, name: str, label: str) -> set[str]:
    return {dict(key)[label] for key in select(parse_samples(text), name, model="m")}


def versioned_log(path: Path, versions: list[str]) -> None:
    """ROWS binary predictions per version, each version an hour after the previous one."""
    lines = ["timestamp,prediction,actual,model_version\n"]
    for hour, version in enumerate(versions):
        for i in range(ROWS):
            lines.append(f"{START + hour * 3600 + i * 10},{0.8 if i % 2 else 0.2},1,{version}\n")
    path.write_text("".join(lines))


def binary_config(directory: Path, *, limit: int | None = None):
    model = {
        "name": "m",
        "task": "binary",
        "predictions": {"path": "predictions.csv"},
        "windows": ["30d", "1h"],
    }
    raw: dict = {"state_dir": str(directory / "state"), "models": [model]}
    if limit is not None:
        raw["max_label_values"] = limit
    return config_from_mapping(raw, base_dir=directory)


def run_engine(directory: Path, config, *, chunk_bytes: int = 8 << 20) -> str:
    engine = make_engine(config, chunk_bytes=chunk_bytes)
    try:
        engine.step()
        return metrics_text(engine)
    finally:
        engine.close()


# --- bounded_label, the rule -------------------------------------------------------
def test_a_value_up_to_128_characters_is_its_own_label() -> None:
    for text in ("", "v1", "x" * MAX_LABEL_LENGTH, "é" * MAX_LABEL_LENGTH):
        assert bounded_label(text) == text


def test_a_longer_value_is_its_beginning_a_marker_and_a_hash_of_the_whole() -> None:
    """129+ characters: the first 115, ``…``, 12 hex digits of SHA-256 (128 in all); the
    same every time, and bounded again to itself."""
    text = "a" * 129
    label = bounded_label(text)
    assert len(label) == MAX_LABEL_LENGTH
    assert label == "a" * 115 + "…" + hashlib.sha256(text.encode()).hexdigest()[:12]
    assert bounded_label(text) == label
    assert bounded_label(label) == label


def test_long_values_with_the_same_beginning_get_distinct_labels() -> None:
    labels = {bounded_label(long_value(k)) for k in range(1000)}
    assert len(labels) == 1000
    assert {len(label) for label in labels} == {MAX_LABEL_LENGTH}


def test_cappers_count_bounded_values_against_their_limit() -> None:
    """25 long values through both cappers with room for 20: 20 bounded labels and
    ``__other__``; a value seen again (also in another call) maps to its slot."""
    values = np.array([long_value(k) for k in range(25)], dtype=object)
    classes = LabelCapper(20)
    first = classes.indices(values)
    assert first.tolist() == [*range(20), 20, 20, 20, 20, 20]
    assert classes.indices(values[::-1]).tolist() == first[::-1].tolist()
    assert classes.values == [bounded_label(v) for v in values[:20]]
    versions = RecentLabels(20)
    slots, folded = versions.assign(values, np.arange(25, dtype=float))
    assert folded == {}
    assert [versions.label(int(s)) for s in slots] == [OTHER] * 5 + [
        bounded_label(v) for v in values[5:]
    ]
    again, _ = versions.assign(values[5:], np.full(20, 30.0))
    assert again.tolist() == slots[5:].tolist()


def test_cappers_restored_from_long_values_bound_them() -> None:
    """A checkpoint from before the bound holds raw long values: restored, they are bounded
    and a new row with the same value finds its slot."""
    value = long_value(7)
    assert LabelCapper(3, [value]).index_of(value) == 0
    restored = RecentLabels(3, ["short", value], [1.0, 2.0])
    assert restored.values == ["short", bounded_label(value)]
    slots, folded = restored.assign(np.array([value], dtype=object), np.array([3.0]))
    assert (slots.tolist(), folded) == ([1], {})


# --- through the engine and the collector -------------------------------------------
def test_twenty_50kb_versions_give_a_small_promtool_clean_scrape(tmp_path: Path) -> None:
    """Twenty 50 KB model versions (about 20 MB of /metrics unbounded): every version keeps
    its own series under a bounded label with its exact count, and /metrics is < 100 KB."""
    versions = [long_value(k) for k in range(20)]
    versioned_log(tmp_path / "predictions.csv", versions)
    text = run_engine(tmp_path, binary_config(tmp_path), chunk_bytes=256 << 10)
    assert len(text.encode()) < SMALL
    counts = {
        dict(key)["model_version"]: v
        for key, v in select(parse_samples(text), "mlmodel_predictions_total", model="m").items()
    }
    assert counts == {bounded_label(v): ROWS for v in versions}
    assert_promtool_clean(text)


def test_the_cap_on_the_number_of_versions_still_applies_to_long_versions(
    tmp_path: Path,
) -> None:
    """25 long versions with max_label_values 20: the 20 most recent keep a bounded label
    each, the 5 oldest fold into ``__other__``."""
    versions = [long_value(k) for k in range(25)]
    versioned_log(tmp_path / "predictions.csv", versions)
    text = run_engine(tmp_path, binary_config(tmp_path, limit=20))
    counts = {
        dict(key)["model_version"]: v
        for key, v in select(parse_samples(text), "mlmodel_predictions_total", model="m").items()
    }
    assert counts == {**{bounded_label(v): ROWS for v in versions[5:]}, OTHER: 5 * ROWS}


def test_the_same_long_version_keeps_its_label_across_chunks_and_a_restart(
    tmp_path: Path,
) -> None:
    """One long version read in many small chunks, then more rows of it after a restart
    from the checkpoint: one series, one label, every row counted."""
    version = long_value(1)
    log = tmp_path / "predictions.csv"
    versioned_log(log, [version])
    config = binary_config(tmp_path)
    engine = make_engine(config, chunk_bytes=64 << 10, checkpoints=True)
    try:
        engine.step()
    finally:
        engine.close()
    with log.open("a") as handle:
        handle.write(f"{START + 600},0.9,1,{version}\n")
    engine = make_engine(config, chunk_bytes=64 << 10, checkpoints=True)
    try:
        engine.step()
        text = metrics_text(engine)
    finally:
        engine.close()
    samples = select(parse_samples(text), "mlmodel_predictions_total", model="m")
    assert {dict(key)["model_version"]: v for key, v in samples.items()} == {
        bounded_label(version): ROWS + 1
    }


def test_a_multiclass_model_with_twenty_50kb_classes_gives_a_small_scrape(
    tmp_path: Path,
) -> None:
    """Twenty 50 KB class labels as predictions and outcomes (78.7 MB of /metrics was seen
    unbounded): the confusion cells carry bounded labels with their exact counts, and
    /metrics is < 100 KB and promtool-clean."""
    classes = [long_value(k) for k in range(20)]
    lines = ["timestamp,prediction,actual\n"]
    expected: dict[tuple[str, str], int] = {}
    for i in range(20 * ROWS):
        predicted, actual = classes[i % 20], classes[(i + i // 20) % 20]
        lines.append(f"{START + i * 10},{predicted},{actual}\n")
        key = (bounded_label(actual), bounded_label(predicted))
        expected[key] = expected.get(key, 0) + 1
    (tmp_path / "predictions.csv").write_text("".join(lines))
    model = {
        "name": "m",
        "task": "multiclass",
        "predictions": {"path": "predictions.csv"},
        "windows": ["30d"],
    }
    config = config_from_mapping(
        {"state_dir": str(tmp_path / "state"), "models": [model]}, base_dir=tmp_path
    )
    text = run_engine(tmp_path, config, chunk_bytes=256 << 10)
    assert len(text.encode()) < SMALL
    confusion = {
        (dict(key)["actual"], dict(key)["predicted"]): v
        for key, v in select(parse_samples(text), "mlmodel_confusion_total", model="m").items()
    }
    assert confusion == expected
    assert label_values(text, "mlmodel_confusion_total", "predicted") == {
        bounded_label(c) for c in classes
    }
    assert_promtool_clean(text)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_short_labels_are_unchanged(tmp_path: Path, task: str) -> None:
    """Versions and classes of ordinary length are exported as they are."""
    lines = ["timestamp,prediction,actual,model_version\n"]
    for i in range(10):
        prediction = ("0.8" if i % 2 else "0.2") if task == "binary" else f"class-{i % 3}"
        actual = "1" if task == "binary" else f"class-{i % 2}"
        lines.append(f"{START + i},{prediction},{actual},release-2024.{i % 2}\n")
    (tmp_path / "predictions.csv").write_text("".join(lines))
    model = {"name": "m", "task": task, "predictions": {"path": "predictions.csv"}}
    config = config_from_mapping(
        {"state_dir": str(tmp_path / "state"), "models": [model]}, base_dir=tmp_path
    )
    text = run_engine(tmp_path, config)
    assert label_values(text, "mlmodel_predictions_total", "model_version") == {
        "release-2024.0",
        "release-2024.1",
    }
    if task == "multiclass":
        assert label_values(text, "mlmodel_confusion_total", "predicted") == {
            "class-0",
            "class-1",
            "class-2",
        }
