"""Parse the next chunk of a log while the current one is being counted.

pyarrow's and pandas' CSV parsers run without the GIL, so on a machine with two or more
cores parsing chunk k+1 on a worker thread overlaps counting chunk k (model state,
feature profiles) on the calling thread. The order of the results is the order of the
items, and at most one item is worked on ahead, so memory stays at two chunks.

The caller must remember that the source has already been asked for item k+1 when it
receives item k: `exporter.ingest.engine` records the tailer's resume state with each chunk and
checkpoints that one (a checkpoint must never claim a chunk it has not counted).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def read_ahead(
    items: Iterable[T], work: Callable[[T], R], executor: Executor | None
) -> Iterator[tuple[T, R]]:
    """``(item, work(item))`` for each item in order; with an executor, ``work`` of the
    next item runs on it while the caller handles the current pair.

    The first item is worked on in the calling thread, beside the second on the
    executor, and an item with none after it (a poll that found one chunk, the usual
    case while tailing) never leaves the calling thread: handing it over would only add
    a thread switch.
    """
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        return
    if executor is None:
        yield current, work(current)
        for item in iterator:
            yield item, work(item)
        return
    try:
        following = next(iterator)
    except StopIteration:
        yield current, work(current)
        return
    pending: Future[R] = executor.submit(work, following)
    try:
        result = work(current)
    except BaseException:
        pending.cancel()
        raise
    yield current, result
    current = following
    while True:
        try:
            following = next(iterator)
        except StopIteration:
            yield current, pending.result()
            return
        upcoming = executor.submit(work, following)
        try:
            result = pending.result()
        except BaseException:
            upcoming.cancel()
            raise
        yield current, result
        current, pending = following, upcoming


def parser_thread() -> Executor | None:
    """The worker a machine with more than one core parses ahead on; None with one."""
    if (os.cpu_count() or 1) < 2:
        return None
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="parse")
