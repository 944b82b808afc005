"""Parsing one chunk ahead keeps order, errors and the checkpoint's exactness."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from support import wait_for

from exporter.config import config_from_mapping
from exporter.ingest.engine import Engine
from exporter.ingest.readahead import read_ahead
from exporter.ingest.tailer import Tailer


@pytest.fixture
def worker():
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


def test_results_come_in_order_with_one_item_worked_on_ahead(worker) -> None:
    started: list[int] = []
    may_finish = {i: threading.Event() for i in range(5)}

    def work(item: int) -> int:
        started.append(item)
        if item > 0:
            may_finish[item].wait(5)
        return item * 10

    seen = []
    for item, result in read_ahead(range(5), work, worker):
        seen.append((item, result))
        # while item k is handled, item k+1 is being worked on and k+2 is not
        ahead = min(item + 1, 4)
        wait_for(lambda ahead=ahead: ahead in started, timeout=5, what="the next item started")
        assert max(started) == ahead
        if item + 1 < 5:
            may_finish[item + 1].set()
    assert seen == [(i, i * 10) for i in range(5)]


def test_an_error_surfaces_at_its_own_item(worker) -> None:
    def work(item: int) -> int:
        if item == 2:
            raise ValueError("bad chunk")
        return item

    seen: list[int] = []

    def consume() -> None:
        for item, _ in read_ahead(range(5), work, worker):
            seen.append(item)

    with pytest.raises(ValueError, match="bad chunk"):
        consume()
    assert seen == [0, 1]


def test_a_lone_item_is_worked_on_in_the_calling_thread(worker) -> None:
    threads: list[str] = []

    def work(item: str) -> str:
        threads.append(threading.current_thread().name)
        return item.upper()

    assert list(read_ahead(["a"], work, worker)) == [("a", "A")]
    assert threads == [threading.current_thread().name]


def test_the_first_item_is_worked_on_here_while_the_second_is_on_the_worker(worker) -> None:
    both_running = threading.Barrier(2, timeout=5)
    threads: dict[int, str] = {}

    def work(item: int) -> int:
        threads[item] = threading.current_thread().name
        if item < 2:
            both_running.wait()  # breaks (and raises) unless 0 and 1 run at once
        return item

    assert [result for _, result in read_ahead(range(3), work, worker)] == [0, 1, 2]
    here = threading.current_thread().name
    assert threads[0] == here
    assert threads[1] != here
    assert threads[2] != here


def test_without_a_worker_it_is_a_plain_map() -> None:
    assert list(read_ahead("abc", str.upper, None)) == [("a", "A"), ("b", "B"), ("c", "C")]


class _RecordingEngine(Engine):
    """Keeps every state it checkpoints."""

    saved: list[dict[str, Any]]

    def _state(self) -> dict[str, Any]:
        state = super()._state()
        self.saved.append(state)
        return state


def test_every_checkpoint_holds_the_offset_of_exactly_the_rows_counted(
    tmp_path: Path, worker
) -> None:
    """Chunks of ~40 lines, a checkpoint after each one, the next chunk already read and
    parsed ahead each time: the saved offset always matches the saved line count."""
    header = b"timestamp,id,prediction,actual\n"
    line = b"2024-06-01T00:00:00.000000Z,req-0000000,0.7500,1\n"
    rows = 2000
    (tmp_path / "p.csv").write_bytes(header + line * rows)
    config = config_from_mapping(
        {
            "state_dir": str(tmp_path / "state"),
            "models": [
                {
                    "name": "m",
                    "task": "binary",
                    "predictions": {"path": "p.csv"},
                    "windows": ["1h"],
                }
            ],
        },
        base_dir=tmp_path,
    )
    ticks = iter(range(0, 10**9, 3600))  # every checkpoint is due
    engine = _RecordingEngine(
        config,
        clock=lambda: 1_717_200_000.0,
        monotonic=lambda: float(next(ticks)),
        tailer_factory=lambda *args, **kwargs: Tailer(*args, chunk_bytes=2048, **kwargs),
        parse_ahead=worker,
    )
    engine.saved = []
    assert engine.step() == rows
    assert len(engine.saved) > 20
    for state in engine.saved:
        source = state["sources"]["m/predictions"]
        (followed,) = source["tailer"]["files"]
        assert followed["offset"] == len(header) + source["lines"] * len(line)
    last = engine.saved[-1]["sources"]["m/predictions"]
    assert last["lines"] == rows
    engine.close()
