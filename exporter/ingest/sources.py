"""The engine's bookkeeping per log it reads: the source, its tailer, its counters."""

from __future__ import annotations

import logging
import resource
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from exporter.config import Config, SourceConfig
from exporter.ingest.rows import RowSchema
from exporter.ingest.tail_read import Chunk
from exporter.ingest.tailer import SourceStats
from exporter.state.model_state import ModelState

log = logging.getLogger("ml_model_exporter")


class TailerLike(Protocol):
    def poll(self) -> Iterator[Chunk]: ...
    def state(self) -> dict: ...
    def stats(self) -> SourceStats: ...
    def close(self) -> None: ...


TailerFactory = Callable[..., TailerLike]


@dataclass
class SourceCounters:
    lines: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def add_rejected(self, reasons: dict[str, int]) -> None:
        for reason, count in reasons.items():
            if count:
                self.rejected[reason] = self.rejected.get(reason, 0) + count


@dataclass(frozen=True)
class SourceSnapshot:
    source: str
    lines: int
    rejected: dict[str, int]
    stats: SourceStats


@dataclass
class Source:
    key: str  # model name + kind: unique even when two models read one file
    label: str  # the `source` label value
    kind: str  # "predictions" | "outcomes"
    model: ModelState
    config: SourceConfig
    schema: RowSchema
    tailer: TailerLike
    counters: SourceCounters
    # While chunks are parsed ahead: the tailer's state as of the last chunk counted (the
    # tailer itself is one chunk further). None: the tailer's own state is the truth.
    counted_state: dict[str, Any] | None = None

    def resume_state(self) -> dict[str, Any]:
        return self.counted_state if self.counted_state is not None else self.tailer.state()

    def snapshot(self) -> SourceSnapshot:
        counters = self.counters
        return SourceSnapshot(
            self.label, counters.lines, dict(counters.rejected), self.tailer.stats()
        )


@dataclass(frozen=True)
class TailerOpener:
    """Opens the tailer of a source, fresh or from a saved state, with the exporter's limits."""

    factory: TailerFactory
    config: Config
    max_open: int  # descriptors each tailer may hold (`descriptor_share`)

    def open(self, key: str, source: SourceConfig, state: dict[str, Any] | None) -> TailerLike:
        def on_event(kind: str, message: str) -> None:
            log.info("%s: %s: %s", key, kind, message)

        return self.factory(
            source.path,
            fmt=source.format,
            base_dir=self.config.base_dir,
            max_line_bytes=self.config.max_line_bytes,
            state=state,
            on_event=on_event,
            max_open=self.max_open,
            exclude_dir=self.config.state_dir,
        )


def descriptor_share(sources: int) -> int:
    """Descriptors each source's tailer may hold: a quarter of the soft ``ulimit -n``
    shared by all sources (a glob may match more files than that), within 4..256."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    budget = 1 << 16 if soft == resource.RLIM_INFINITY else soft // 4
    return max(4, min(256, budget // max(sources, 1)))
