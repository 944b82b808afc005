"""The checkpoint is data, never code.

Every value type the state holds comes back exactly (type, dict order and key types,
dtype, shape, float bits); a pickle at the checkpoint path runs nothing; a flipped bit, a
truncated file, a FIFO, a directory or a symbolic link is a ``CheckpointError`` naming the
file, never a different state or a hang; ``run`` then exits 2 with one line on stderr.
Properties are bounded so that the file runs in seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import pickle
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import cli, free_port

import exporter.state.checkpoint
from exporter.config import config_from_mapping
from exporter.ingest.engine import Engine
from exporter.monitor.build import build_monitors, monitor_factory
from exporter.state.checkpoint import (
    FILE_NAME,
    FORMAT_VERSION,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)

START = 1_717_200_000
PROPERTY = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --- exact equality ------------------------------------------------------------------
def assert_same(expected: Any, got: Any, where: str = "state") -> None:
    """``got`` is ``expected`` to the bit: same types all the way down, dict order and
    key types, array dtypes and shapes, float bits (NaN payloads and -0.0 included)."""
    assert type(got) is type(expected), f"{where}: {type(got)} instead of {type(expected)}"
    if isinstance(expected, dict):
        assert len(got) == len(expected), where
        for (key, value), (got_key, got_value) in zip(expected.items(), got.items(), strict=True):
            assert_same(key, got_key, f"{where} key {key!r}")
            assert_same(value, got_value, f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(got) == len(expected), where
        for index, (value, got_value) in enumerate(zip(expected, got, strict=True)):
            assert_same(value, got_value, f"{where}[{index}]")
    elif isinstance(expected, np.ndarray):
        assert (got.dtype, got.shape) == (expected.dtype, expected.shape), where
        assert got.flags.writeable, where
        if expected.dtype == object:
            for index, (value, got_value) in enumerate(
                zip(expected.reshape(-1), got.reshape(-1), strict=True)
            ):
                assert_same(value, got_value, f"{where}<{index}>")
        else:
            assert got.tobytes() == expected.tobytes(), where
    elif isinstance(expected, np.generic):
        assert (got.dtype, got.tobytes()) == (expected.dtype, expected.tobytes()), where
    elif isinstance(expected, float):
        assert struct.pack("<d", got) == struct.pack("<d", expected), f"{where}: {got!r}"
    else:
        assert got == expected, where


def round_trip(state_dir: Path, state: dict[str, Any]) -> dict[str, Any]:
    save_checkpoint(state_dir, state)
    loaded = load_checkpoint(state_dir)
    assert loaded is not None
    return loaded


# --- value trees -----------------------------------------------------------------------
NUMERIC_DTYPES = (
    hnp.boolean_dtypes()
    | hnp.integer_dtypes(endianness="=")
    | hnp.unsigned_integer_dtypes(endianness="=")
    | hnp.floating_dtypes(endianness="=", sizes=(16, 32, 64))
    | hnp.complex_number_dtypes(endianness="=")
)
TEXT_DTYPES = hnp.unicode_string_dtypes(endianness="=", max_len=4) | hnp.byte_string_dtypes(
    endianness="=", max_len=4
)
ARRAYS = st.one_of(
    hnp.arrays(NUMERIC_DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)),
    hnp.arrays(TEXT_DTYPES, hnp.array_shapes(min_dims=0, max_dims=2, max_side=3)),
    # views that are not C-contiguous come back as contiguous copies of the same values
    hnp.arrays(np.int64, (3, 2)).map(lambda a: a.T),
)
NUMPY_SCALARS = hnp.arrays(NUMERIC_DTYPES, ()).map(lambda a: a[()])
TEXTS = st.text(max_size=8) | st.sampled_from(["", "\udcff lone surrogate", "é\x00\n\"'"])
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [
        -0.0,
        math.inf,
        -math.inf,
        math.nan,
        struct.unpack("<d", b"\x01\x00\x00\x00\x00\x00\xf8\xff")[0],
    ]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    FLOATS,
    TEXTS,
    st.binary(max_size=8),
)


def object_array(items: list[Any]) -> np.ndarray:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


OBJECT_ARRAYS = st.lists(SCALARS | NUMPY_SCALARS, max_size=6).map(object_array)
KEYS = st.one_of(
    TEXTS,
    st.integers(-(2**40), 2**40),
    st.tuples(st.integers(0, 9), st.integers(0, 9), st.integers(0, 9)),
    st.floats(allow_nan=False),
    st.booleans(),
)
TREES = st.recursive(
    SCALARS | ARRAYS | NUMPY_SCALARS | OBJECT_ARRAYS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(KEYS, children, max_size=4),
    ),
    max_leaves=16,
)


@PROPERTY
@given(tree=TREES)
def test_every_value_type_round_trips_exactly(tmp_path_factory: pytest.TempPathFactory, tree):
    """Nested dicts (str, int, tuple, float and bool keys), lists, tuples, numpy arrays of
    every numeric, bool and string dtype and shape, object arrays, numpy scalars, ints,
    floats (inf, NaN payloads, -0.0), str (lone surrogates too), bytes, bool and None come
    back exactly."""
    state = {"tree": tree}
    loaded = round_trip(tmp_path_factory.mktemp("state"), state)
    assert_same(state, loaded)


def test_arrays_in_another_byte_order_come_back_in_the_native_one(tmp_path: Path) -> None:
    """A big-endian array comes back with the same values, in native byte order."""
    values = np.array([[1.5, -2.0], [np.inf, 3.25]], dtype=">f8")
    loaded = round_trip(tmp_path, {"a": values, "s": np.dtype(">i4").type(7)})
    assert loaded["a"].dtype == np.dtype("f8")
    assert np.array_equal(loaded["a"], values)
    assert loaded["s"] == 7


@pytest.mark.parametrize(
    "value",
    [{1, 2}, np.array(["2024-06-01"], dtype="datetime64[D]"), object(), pd.Timestamp(0)],
    ids=["set", "datetime64", "object", "Timestamp"],
)
def test_a_value_that_is_not_plain_data_is_not_written(tmp_path: Path, value: Any) -> None:
    """Only data is written: any other type is a TypeError naming it, and nothing (no
    temp file either) is left in the state dir."""
    with pytest.raises(TypeError, match="cannot hold"):
        save_checkpoint(tmp_path, {"value": value})
    assert list(tmp_path.iterdir()) == []


# --- the real state --------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine_state(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What an Engine checkpoints after reading a little of everything: a binary model
    with versions, features against a reference file and outcomes joined by id (some
    waiting), a multiclass and a regression model, and a from_stream reference still
    buffering (object arrays of text and NaN)."""
    directory = tmp_path_factory.mktemp("engine")
    rng = np.random.default_rng(5)
    n = 600
    plans = np.array(["basic", "pro", "team"], dtype=object)
    pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(2),
            "plan": rng.choice(plans, n),
            "prediction": rng.random(n).round(3),
            "actual": rng.integers(0, 2, n),
        }
    ).to_csv(directory / "reference.csv", index=False)
    live = pd.DataFrame(
        {
            "timestamp": START + np.arange(n) * 30,
            "id": [f"r{i}" for i in range(n)],
            "age": rng.normal(42, 10, n).round(2),
            "plan": rng.choice(plans, n),
            "prediction": rng.random(n).round(3),
            "model_version": rng.choice(["v1", "v2"], n),
        }
    )
    live.loc[5, "age"] = np.nan
    live.to_csv(directory / "credit.csv", index=False)
    answered = live.iloc[::3]
    pd.DataFrame({"id": answered["id"], "actual": rng.integers(0, 2, len(answered))}).to_csv(
        directory / "outcomes.csv", index=False
    )
    times = START + np.arange(n) * 30
    pd.DataFrame(
        {
            "timestamp": times,
            "prediction": rng.choice(["cat", "dog", "bird"], n),
            "actual": rng.choice(["cat", "dog"], n),
        }
    ).to_csv(directory / "classes.csv", index=False)
    pd.DataFrame({"timestamp": times, "prediction": rng.random(n), "actual": rng.random(n)}).to_csv(
        directory / "amounts.csv", index=False
    )
    stream = pd.DataFrame(
        {
            "timestamp": times,
            "x": rng.normal(0, 1, n),
            "c": rng.choice(plans, n),
            "prediction": rng.random(n).round(3),
        }
    )
    stream.loc[7, "c"] = None
    stream.to_csv(directory / "stream.csv", index=False)
    config = config_from_mapping(
        {
            "state_dir": str(directory / "state"),
            "models": [
                {
                    "name": "credit",
                    "task": "binary",
                    "predictions": {"path": "credit.csv"},
                    "outcomes": {"path": "outcomes.csv"},
                    "features": {"age": "numeric", "plan": "categorical"},
                    "reference": {"path": "reference.csv"},
                    "windows": ["1h", "1d"],
                },
                {
                    "name": "classes",
                    "task": "multiclass",
                    "predictions": {"path": "classes.csv"},
                    "windows": ["1h"],
                },
                {
                    "name": "amounts",
                    "task": "regression",
                    "predictions": {"path": "amounts.csv"},
                    "windows": ["1h"],
                },
                {
                    "name": "stream",
                    "task": "binary",
                    "predictions": {"path": "stream.csv"},
                    "features": {"x": "numeric", "c": "categorical"},
                    "reference": {"from_stream": 5000},
                    "windows": ["1h"],
                },
            ],
        },
        base_dir=directory,
    )
    engine = Engine(
        config,
        monitor_factory=monitor_factory(build_monitors(config)),
        checkpoints=False,
        parse_ahead=None,
    )
    while engine.step():
        pass
    state = engine._state()
    engine.close()
    return state[0] if isinstance(state, tuple) else state  # (state, file identities)


def test_the_engine_state_round_trips_exactly(tmp_path: Path, engine_state: dict) -> None:
    """A real Engine's state (feature counts, confusion counts keyed by tuples, pending joins,
    monitor profiles, a from_stream buffer, tailer offsets) comes back exactly."""
    kinds = set()

    def collect(value: Any) -> None:
        kinds.add(type(value))
        if isinstance(value, dict):
            kinds.update(type(key) for key in value)
            for item in value.values():
                collect(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                collect(item)
        elif isinstance(value, np.ndarray):
            kinds.add(value.dtype)

    collect(engine_state)
    for kind in (tuple, np.dtype("f8"), np.dtype("i8"), np.dtype(object), float, type(None)):
        assert kind in kinds  # the fixture holds what it is meant to
    assert_same(engine_state, round_trip(tmp_path, engine_state))


# --- hostile files ---------------------------------------------------------------------
class PlantedPayload:
    """Unpickling this creates ``marker``: a payload that would run code, harmless."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (open, (str(self.marker), "w"))


def planted_pickle(marker: Path) -> bytes:
    return pickle.dumps({"format": 1, "state": {"models": PlantedPayload(marker)}}, protocol=5)


def test_a_pickle_at_the_checkpoint_path_runs_nothing(tmp_path: Path) -> None:
    """A pickle whose loading would create a file, placed where the checkpoint is read:
    nothing runs, and it is a CheckpointError naming the file and saying what to do."""
    marker = tmp_path / "pwned"
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / FILE_NAME).write_bytes(planted_pickle(marker))
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(state_dir)
    assert not marker.exists()
    message = str(error.value)
    assert str(state_dir / FILE_NAME) in message
    assert "move it away" in message
    assert "pickle" in message


def test_an_old_pickle_checkpoint_is_ignored_unread(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """checkpoint.pickle, as older versions wrote it: never opened, a warning says so and
    that the logs are read again; with a checkpoint beside it, that one is used."""
    marker = tmp_path / "pwned"
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "checkpoint.pickle").write_bytes(planted_pickle(marker))
    with caplog.at_level(logging.WARNING, logger="ml_model_exporter"):
        assert load_checkpoint(state_dir) is None
    assert not marker.exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "checkpoint.pickle" in warnings[0]
    assert "read again" in warnings[0]

    save_checkpoint(state_dir, {"models": {}, "sources": {"a": 1}})
    assert load_checkpoint(state_dir) == {"models": {}, "sources": {"a": 1}}
    assert not marker.exists()


# A corruption once seen: predictions_total 2,000 read back as 6,096 from one flipped bit.
SMALL_STATE = {
    "models": {
        "m": {
            "fingerprint": "abc",
            "state": {
                "predictions_total": {0: 2000},
                "confusion_total": {(0, 1, 1): 1000, (0, 0, 1): 1000},
                "watermark": 1717200000.5,
                "counts": np.array([2000, 0, 7], dtype=np.int64),
            },
        }
    },
    "sources": {"m/predictions": {"lines": 2000, "rejected": {}}},
}


def test_every_single_flipped_bit_of_a_checkpoint_is_refused(tmp_path: Path) -> None:
    """Each of the file's bits flipped in turn (header, structure and data): every one is
    a CheckpointError, never a state that differs from the one written."""
    save_checkpoint(tmp_path, SMALL_STATE)
    path = tmp_path / FILE_NAME
    original = path.read_bytes()
    assert len(original) < 1000  # small enough to try all of its bits
    silently_different = []
    messages = set()
    fd = os.open(path, os.O_WRONLY)
    try:
        for position in range(len(original)):
            for bit in range(8):
                os.pwrite(fd, bytes([original[position] ^ (1 << bit)]), position)
                try:
                    load_checkpoint(tmp_path)
                except CheckpointError as error:
                    messages.add(str(error))
                else:
                    silently_different.append((position, bit))
            os.pwrite(fd, original[position : position + 1], position)
    finally:
        os.close(fd)
    assert path.read_bytes() == original
    assert silently_different == []
    assert all(str(path) in m and "move it away" in m for m in messages)


@pytest.fixture(scope="module")
def engine_checkpoint(tmp_path_factory: pytest.TempPathFactory, engine_state: dict) -> Path:
    """A real Engine's checkpoint file (a path: Hypothesis prints its arguments)."""
    state_dir = tmp_path_factory.mktemp("engine-checkpoint")
    save_checkpoint(state_dir, engine_state)
    return state_dir / FILE_NAME


@settings(PROPERTY, max_examples=60)
@given(data=st.data())
def test_a_flipped_bit_in_the_engine_checkpoint_is_refused(
    tmp_path_factory: pytest.TempPathFactory, engine_checkpoint: Path, data: st.DataObject
) -> None:
    """One bit flipped anywhere in a real Engine's checkpoint: a CheckpointError."""
    flipped = bytearray(engine_checkpoint.read_bytes())
    position = data.draw(st.integers(0, len(flipped) - 1), label="byte")
    bit = data.draw(st.integers(0, 7), label="bit")
    flipped[position] ^= 1 << bit
    state_dir = tmp_path_factory.mktemp("flip")
    (state_dir / FILE_NAME).write_bytes(flipped)
    with pytest.raises(CheckpointError):
        load_checkpoint(state_dir)


def test_a_truncated_or_extended_checkpoint_is_refused(tmp_path: Path) -> None:
    """Cut anywhere (or with bytes added): a CheckpointError, not a partial state."""
    save_checkpoint(tmp_path, SMALL_STATE)
    path = tmp_path / FILE_NAME
    original = path.read_bytes()
    for size in [*range(80), *range(80, len(original), 7), len(original) - 1]:
        path.write_bytes(original[:size])
        with pytest.raises(CheckpointError):
            load_checkpoint(tmp_path)
    path.write_bytes(original + b"\0")
    with pytest.raises(CheckpointError):
        load_checkpoint(tmp_path)


def load_within(state_dir: Path, seconds: float) -> BaseException | object:
    """``load_checkpoint(state_dir)`` in a thread: what it raised or returned, or fail
    the test when it is still running after ``seconds``."""
    outcome: list[object] = []

    def load() -> None:
        try:
            outcome.append(load_checkpoint(state_dir))
        except BaseException as error:  # reported to the test
            outcome.append(error)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        # let a reader blocked on a FIFO go: open its other end, then close it
        fifo = state_dir / FILE_NAME
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
        thread.join(5)
        pytest.fail(f"load_checkpoint still running after {seconds}s")
    return outcome[0]


def test_a_fifo_at_the_checkpoint_path_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO (which no one writes to) at the checkpoint path: a CheckpointError within a
    second, not a start-up that hangs before the server listens."""
    os.mkfifo(tmp_path / FILE_NAME)
    outcome = load_within(tmp_path, 1.0)
    assert isinstance(outcome, CheckpointError), outcome
    assert "FIFO" in str(outcome)
    assert str(tmp_path / FILE_NAME) in str(outcome)


@pytest.mark.parametrize("kind", ["directory", "symbolic link"])
def test_what_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    """A directory, or a symbolic link (even to a good checkpoint), at the checkpoint path:
    a CheckpointError naming it; the exporter only ever writes a regular file there."""
    elsewhere = tmp_path / "elsewhere"
    save_checkpoint(elsewhere, SMALL_STATE)
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    if kind == "directory":
        (state_dir / FILE_NAME).mkdir()
    else:
        (state_dir / FILE_NAME).symlink_to(elsewhere / FILE_NAME)
    with pytest.raises(CheckpointError, match=kind) as error:
        load_checkpoint(state_dir)
    assert str(state_dir / FILE_NAME) in str(error.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_checkpoint_names_the_state_dir(tmp_path: Path) -> None:
    """A checkpoint without read permission: a CheckpointError naming state_dir."""
    save_checkpoint(tmp_path, SMALL_STATE)
    (tmp_path / FILE_NAME).chmod(0)
    with pytest.raises(CheckpointError, match="state_dir"):
        load_checkpoint(tmp_path)


def test_a_file_larger_than_the_cap_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above MAX_FILE_BYTES a checkpoint is neither written nor read."""
    save_checkpoint(tmp_path, SMALL_STATE)
    monkeypatch.setattr(exporter.state.checkpoint, "MAX_FILE_BYTES", 100)
    with pytest.raises(CheckpointError, match="more than"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="more than"):
        save_checkpoint(tmp_path / "other", SMALL_STATE)
    assert not (tmp_path / "other" / FILE_NAME).exists()


# --- forged files: a valid checksum over a structure the writer never produces -------------
def forge(
    state_dir: Path, structure: str, data: bytes = b"", version: int = FORMAT_VERSION
) -> Path:
    """A file laid out as the module docstring says, with a correct SHA-256."""
    body = structure.encode()
    prefix = struct.pack("<8sIIQQ", b"MLMXCKPT", version, 0, len(body), len(data))
    digest = hashlib.sha256(prefix + body + data).digest()
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / FILE_NAME
    path.write_bytes(prefix + digest + body + data)
    return path


def test_the_file_is_laid_out_as_documented(tmp_path: Path) -> None:
    """A file forged from the documented layout loads as the state it describes, and a
    written checkpoint has that header and checksum."""
    structure = json.dumps(
        [
            "d",
            {
                "counts": ["m", [["t", 0, 1, 1], 5, 7, ["n", "7ff0000000000000"]]],
                "bins": ["a", "<i8", [2, 2], 0],
                "labels": ["o", [2], ["a", None]],
                "tail": ["l", 0.5, True, "x", ["b", 32, 3]],
                "one": ["s", "<f4", 35],
            },
        ]
    )
    data = np.arange(4, dtype="<i8").tobytes() + b"abc" + np.float32(1.5).tobytes()
    forge(tmp_path, structure, data)
    assert_same(
        {
            "counts": {(0, 1, 1): 5, 7: math.inf},
            "bins": np.arange(4, dtype=np.int64).reshape(2, 2),
            "labels": np.array(["a", None], dtype=object),
            "tail": [0.5, True, "x", b"abc"],
            "one": np.float32(1.5),
        },
        load_checkpoint(tmp_path),
    )

    written = tmp_path / "written"
    size = save_checkpoint(written, SMALL_STATE)
    raw = (written / FILE_NAME).read_bytes()
    magic, version, flags, structure_bytes, data_bytes = struct.unpack_from("<8sIIQQ", raw)
    assert (magic, version, flags) == (b"MLMXCKPT", FORMAT_VERSION, 0)
    assert size == len(raw) == 64 + structure_bytes + data_bytes
    assert raw[32:64] == hashlib.sha256(raw[:32] + raw[64:]).digest()
    json.loads(raw[64 : 64 + structure_bytes])  # strict JSON


@pytest.mark.parametrize(
    ("structure", "data"),
    [
        ('["l", 1]', b""),  # not a mapping at the top
        ('["d", {"a": ["a", "|O8", [1], 0]}]', bytes(8)),  # object dtype: refused
        ('["d", {"a": ["a", "<f8", [2], 0]}]', bytes(8)),  # past the end of the data
        ('["d", {"a": ["a", "<f8", [1000000000000, 1000000000000], 0]}]', b""),
        ('["d", {"a": ["a", "<f8", [-1], 0]}]', b""),
        ('["d", {"a": ["a", "V8", [1], 0]}]', bytes(8)),  # raw void dtype
        ('["d", {"a": ["o", [2], ["x"]]}]', b""),  # elements do not match the shape
        ('["d", {"a": ["o", [1], [["l", 1]]]}]', b""),  # an object array of containers
        ('["d", {"a": ["m", [["l"], 1]]}]', b""),  # an unhashable key
        ('["d", {"a": ["x", 1]}]', b""),  # unknown tag
        ('["d", {"a": ["n", "3ff0000000000000"]}]', b""),  # 1.0 tagged as not finite
        ('["d", {"a": NaN}]', b""),  # not strict JSON
        ('{"a": 1}', b""),  # an untagged object
        ('["d", {"a": ' + '["l", ' * 100_000 + "1" + "]" * 100_000 + "}]", b""),  # deep
        ('["d", {"a": ["b", 0, 9]}]', b"abc"),  # bytes past the end
        ('["d", {"a": ["a", "<f8", [1], 0], "b": ["a", "<f8", [1], 0]}]', bytes(8)),  # shared
        ('["d", {"a": ["a", "<f8", [1], 8]}]', bytes(16)),  # out of order
        ('["d", {}]', bytes(8)),  # data that belongs to no value
        ('["d", {"a": ["s", "<U1", 0]}]', b""),
        ("not json", b""),
    ],
    ids=lambda value: value[:40] if isinstance(value, str) else None,
)
def test_a_structure_the_writer_never_produces_is_refused(
    tmp_path: Path, structure: str, data: bytes
) -> None:
    """With a valid checksum, a structure the writer never produces (any nesting, dtype,
    shape or tag; data shared by two arrays or left over) is a CheckpointError that
    names the file, never an exception of another kind or an allocation beyond the
    file's size."""
    forge(tmp_path, structure, data)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(tmp_path)
    assert str(tmp_path / FILE_NAME) in str(error.value)


def test_a_file_of_a_newer_format_is_refused(tmp_path: Path) -> None:
    """A valid file of a newer format: a CheckpointError saying which format it is."""
    newer = FORMAT_VERSION + 1
    forge(tmp_path, '["d", {}]', version=newer)
    with pytest.raises(CheckpointError, match=f"format {newer}"):
        load_checkpoint(tmp_path)


def restamp(path: Path, version: int) -> None:
    """Give the checkpoint at ``path`` another format version, checksum and all."""
    raw = bytearray(path.read_bytes())
    raw[8:12] = struct.pack("<I", version)
    raw[32:64] = hashlib.sha256(raw[:32] + raw[64:]).digest()
    path.write_bytes(raw)


def test_a_checkpoint_of_an_older_format_is_ignored_and_the_logs_read_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An intact checkpoint of format 2 (before time buckets held typed counts): one
    warning, no refusal, and the logs are read again from the start, so every row is
    counted once; the next checkpoint is of the current format."""
    rows = "".join(f"{START + i * 60},0.{i % 10},{i % 2}\n" for i in range(50))
    (tmp_path / "p.csv").write_text("timestamp,prediction,actual\n" + rows)
    state_dir = tmp_path / "state"
    config = config_from_mapping(
        {
            "state_dir": str(state_dir),
            "models": [{"name": "m", "task": "binary", "predictions": {"path": "p.csv"}}],
        },
        base_dir=tmp_path,
    )

    def read_all() -> Engine:
        engine = Engine(config, clock=lambda: START + 86400.0, parse_ahead=None)
        while engine.step():
            pass
        return engine

    assert read_all().close()
    restamp(state_dir / FILE_NAME, 2)
    with caplog.at_level(logging.WARNING, logger="ml_model_exporter"):
        again = read_all()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "format 2" in warnings[0]
    assert "from the start" in warnings[0]
    (model,) = again.snapshot().models
    assert model.predictions_total == {"": 50}
    assert sum(model.windows[0].model_quality[""].confusion.reshape(-1)) == 50
    assert again.close()
    raw = (state_dir / FILE_NAME).read_bytes()
    assert struct.unpack_from("<I", raw, 8) == (FORMAT_VERSION,)


# --- the CLI ---------------------------------------------------------------------------
def _hostile_state_dirs(tmp_path: Path) -> dict[str, Path]:
    """One state_dir per kind of hostile checkpoint (truncated files and symbolic
    links take the same way out, and are tested above without a process each)."""
    good = tmp_path / "good"
    save_checkpoint(good, {"models": {}, "sources": {}})
    raw = (good / FILE_NAME).read_bytes()
    cases: dict[str, Path] = {}

    def checkpoint_in(name: str) -> Path:
        cases[name] = tmp_path / name.replace(" ", "-")
        cases[name].mkdir()
        return cases[name] / FILE_NAME

    checkpoint_in("pickle payload").write_bytes(planted_pickle(tmp_path / "pwned"))
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 0x10
    checkpoint_in("flipped bit").write_bytes(flipped)
    os.mkfifo(checkpoint_in("FIFO"))
    checkpoint_in("directory").mkdir()
    return cases


def run_over(state_dirs: dict[str, Path], log: Path) -> dict[str, tuple[object, str]]:
    """``run`` over each state_dir at once: each one's exit code (or why there is none)
    and stderr."""
    processes = {}
    for name, state_dir in state_dirs.items():
        config = state_dir.with_suffix(".yml")
        config.write_text(
            f"state_dir: {state_dir}\n"
            f"models:\n  - name: m\n    task: binary\n    predictions: {{path: {log}}}\n"
        )
        processes[name] = subprocess.Popen(
            cli(
                "run",
                "--config.file",
                str(config),
                "--web.listen-address",
                f"127.0.0.1:{free_port()}",
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    deadline = time.monotonic() + 30
    results: dict[str, tuple[object, str]] = {}
    try:
        for name, process in processes.items():
            try:
                _, stderr = process.communicate(timeout=max(deadline - time.monotonic(), 0.1))
                results[name] = (process.returncode, stderr)
            except subprocess.TimeoutExpired:
                process.kill()
                results[name] = ("still running after 30s", process.communicate()[1])
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return results


def assert_one_line_exit_2(results: dict[str, tuple[object, str]]) -> None:
    for name, (code, stderr) in results.items():
        lines = stderr.strip().splitlines()
        assert code == 2, (name, code, stderr[-2000:])
        assert len(lines) == 1, (name, stderr[-2000:])
        assert lines[0].startswith("error: "), (name, lines[0])
        assert FILE_NAME in lines[0], (name, lines[0])
        assert "Traceback" not in stderr, name


@pytest.mark.slow
def test_run_exits_2_with_one_line_for_each_hostile_checkpoint(tmp_path: Path) -> None:
    """``run`` over each hostile checkpoint exits 2 within seconds, with one line on
    stderr naming the file and no traceback, before anything listens; nothing runs."""
    (tmp_path / "p.csv").write_text("timestamp,prediction\n")
    results = run_over(_hostile_state_dirs(tmp_path), tmp_path / "p.csv")
    assert_one_line_exit_2(results)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.slow
def test_run_exits_2_for_a_valid_file_with_a_state_the_engine_cannot_apply(
    tmp_path: Path,
) -> None:
    """A well-formed file (checksum and all) whose state is not what the engine writes:
    exit 2 with one line, not a traceback."""
    (tmp_path / "p.csv").write_text("timestamp,prediction\n")
    state_dir = tmp_path / "state"
    save_checkpoint(state_dir, {"models": ["not", "a", "mapping"], "sources": {}})
    assert_one_line_exit_2(run_over({"malformed": state_dir}, tmp_path / "p.csv"))
