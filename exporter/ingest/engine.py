"""The ingest loop: tail every source, parse each chunk, update the model states, checkpoint.

One thread owns all mutation. A chunk is applied whole (rows, counters, tailer offset)
under the lock, and checkpoints are taken between chunks, so a checkpoint's offsets and
aggregates always describe the same rows: after a crash, restarting from it counts every
complete row exactly once. Scrapes read an immutable snapshot taken under the same lock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Literal

from exporter.config import Config
from exporter.ingest.checkpoint_content import SavedState, checkpoint_content
from exporter.ingest.checkpoint_policy import CheckpointPolicy
from exporter.ingest.model_schemas import model_fingerprint, model_logs
from exporter.ingest.parse import parse_chunk_safely
from exporter.ingest.readahead import parser_thread, read_ahead
from exporter.ingest.reject_log import RejectLog
from exporter.ingest.rows import ParsedRows, RowSchema
from exporter.ingest.sources import (
    Source,
    SourceCounters,
    SourceSnapshot,
    TailerFactory,
    TailerOpener,
    descriptor_share,
)
from exporter.ingest.tail_read import Chunk
from exporter.ingest.tailer import Tailer
from exporter.state.model_state import ModelSnapshot, ModelState, MonitorFactory

log = logging.getLogger("ml_model_exporter")


@dataclass(frozen=True)
class EngineSnapshot:
    models: tuple[ModelSnapshot, ...]
    sources: tuple[SourceSnapshot, ...]
    ready: bool
    last_checkpoint_seconds: float | None
    checkpoint_failures: int = 0


def parse_chunk(chunk: Chunk, fmt: str, schema: RowSchema) -> ParsedRows:
    return parse_chunk_safely(fmt, chunk.header, chunk.data, schema)


class Engine:
    def __init__(
        self,
        config: Config,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        tailer_factory: TailerFactory = Tailer,
        monitor_factory: MonitorFactory | None = None,
        checkpoints: bool = True,
        parse_ahead: Executor | Literal["auto"] | None = "auto",
    ) -> None:
        """`parse_ahead`: the worker that parses a source's next chunk while the current
        one is counted ("auto": one thread when the machine has 2+ cores; None: parse in
        this thread)."""
        self.config = config
        self._parse_ahead = parser_thread() if parse_ahead == "auto" else parse_ahead
        self.clock = clock
        self.monotonic = monotonic
        self.lock = threading.Lock()
        self._rejects = RejectLog(config, monotonic)
        self._checkpoints = CheckpointPolicy(
            config, enabled=checkpoints, clock=clock, monotonic=monotonic
        )
        self.ready = False
        self._last_progress = monotonic()
        saved = SavedState(config, enabled=checkpoints)
        self.models: dict[str, ModelState] = {}
        self.sources: list[Source] = []
        self._tailers = TailerOpener(
            tailer_factory,
            config,
            max_open=descriptor_share(sum(1 + (m.outcomes is not None) for m in config.models)),
        )
        for model in config.models:
            monitor = monitor_factory(model) if monitor_factory else None
            state = ModelState(
                model,
                max_label_values=config.max_label_values,
                window_buckets=config.window_buckets,
                monitor=monitor,
                max_future=config.max_future,
            )
            usable = saved.restore_model(state, model_fingerprint(model, monitor))
            self.models[model.name] = state
            for kind, source, schema in model_logs(model, features=monitor is not None):
                key = f"{model.name}/{kind}"
                counters, tailer_state = saved.source(key) if usable else (SourceCounters(), None)
                restoring = tailer_state is not None
                with saved.applying(f"source {key}") if restoring else nullcontext():
                    tailer = self._tailers.open(key, source, tailer_state)
                self.sources.append(
                    Source(key, source.path, kind, state, source, schema, tailer, counters)
                )

    @property
    def checkpoint_failures(self) -> int:
        return self._checkpoints.failures

    # --- ingest ----------------------------------------------------------------
    def step(self) -> int:
        """Read every source to its end once. Returns the number of lines consumed."""
        consumed = 0
        for model in self.models.values():
            consumed += self._step_model([s for s in self.sources if s.model is model])
        self.ready = True
        return consumed

    def _step_model(self, sources: list[Source]) -> int:
        """Read one model's logs to their ends, always a chunk of the one furthest behind
        in event time, so a backlog of predictions and its outcomes are joined side by
        side instead of one file first (``exporter.state.join``)."""
        consumed = 0
        for source in sources:
            # the offsets counted so far, kept apart from the tailer's own (which run a
            # chunk ahead while the next one is parsed)
            source.counted_state = source.tailer.state()
        readers = {id(source): self._reader(source) for source in sources}
        unread = list(sources)
        try:
            while unread:
                source = min(unread, key=self._stream_time)
                item = next(readers[id(source)], None)
                if item is None:
                    unread.remove(source)
                    source.counted_state = None
                else:
                    (chunk, counted_state), rows = item
                    consumed += self._apply(source, chunk, rows)
                    source.counted_state = counted_state
                with self.lock:
                    source.model.enforce_bounds(
                        predictions_behind=any(s.kind == "predictions" for s in unread),
                        outcomes_behind=any(s.kind == "outcomes" for s in unread),
                    )
                self.maybe_checkpoint(
                    force=self._checkpoints.files_changed(source.key, source.resume_state())
                )
        except BaseException:
            # What was read but not counted must be read again: back to the last counted
            # offsets (nothing may be skipped, whatever failed).
            for source in unread:
                self._rewind(source)
            raise
        finally:
            for reader in readers.values():
                reader.close()
        return consumed

    def _reader(self, source: Source) -> Iterator[tuple[tuple[Chunk, dict[str, Any]], ParsedRows]]:
        fmt, schema = source.config.format, source.schema
        return read_ahead(
            self._chunks(source),
            lambda item: parse_chunk(item[0], fmt, schema),
            self._parse_ahead,
        )

    @staticmethod
    def _stream_time(source: Source) -> tuple[float, bool]:
        """How far a source has been read in event time; predictions first on a tie."""
        model = source.model
        if source.kind == "predictions":
            watermark = model.watermark
            return (-math.inf if watermark is None else watermark, False)
        return (model.outcome_stream_time, True)

    def _rewind(self, source: Source) -> None:
        state = source.counted_state
        source.counted_state = None
        if state is None:
            return
        log.warning("%s: re-reading from the last counted offset after a failure", source.key)
        with self.lock:
            source.tailer.close()
            source.tailer = self._tailers.open(source.key, source.config, state)

    def _chunks(self, source: Source) -> Iterator[tuple[Chunk, dict[str, Any]]]:
        """Each chunk with the tailer's state right after it: what a checkpoint taken once
        the chunk is counted must hold, even though the next chunk has been read by then."""
        # poll() advances its offsets when it yields a chunk; holding the lock across the
        # advance keeps a scrape from seeing half of it.
        iterator = iter(source.tailer.poll())
        while True:
            with self.lock:
                try:
                    chunk = next(iterator)
                except StopIteration:
                    return
                state = source.tailer.state()
            yield chunk, state

    def _apply(self, source: Source, chunk: Chunk, rows: ParsedRows) -> int:
        if log.isEnabledFor(logging.DEBUG):
            log.debug(
                "%s: %d bytes up to offset %d: %r ... %r",
                chunk.path,
                len(chunk.data),
                chunk.end_offset,
                chunk.data[:24],
                chunk.data[-24:],
            )
        with self.lock:
            now = self.clock()
            if source.kind == "predictions":
                model_rejects = source.model.add_predictions(rows, now)
            else:
                model_rejects = source.model.add_outcomes(rows, now)
            counters = source.counters
            counters.lines += rows.lines + chunk.too_long
            counters.add_rejected(rows.rejected)
            counters.add_rejected(model_rejects)
            if chunk.too_long:
                counters.add_rejected({"too_long": chunk.too_long})
            self._checkpoints.dirty = True
        self._log_progress()
        self._rejects.chunk(source.key, source.kind, chunk, rows, model_rejects)
        return rows.lines + chunk.too_long

    def _log_progress(self) -> None:
        """A long first pass over big logs says how far it got, every 10 s."""
        if self.ready or self.monotonic() - self._last_progress < 10:
            return
        self._last_progress = self.monotonic()
        lines = sum(s.counters.lines for s in self.sources)
        behind = sum(s.tailer.stats().lag_bytes for s in self.sources)
        log.info("first pass over the logs: %d lines read, %.1f MB to go", lines, behind / 1e6)

    # --- checkpoint --------------------------------------------------------------
    def maybe_checkpoint(self, *, force: bool = False) -> bool:
        """Write a checkpoint when one is due (or ``force``d), as `CheckpointPolicy` says."""
        return self._checkpoints.maybe_write(self._locked_state, force=force)

    def _locked_state(self) -> dict[str, Any]:
        with self.lock:
            return self._state()

    def _state(self) -> dict[str, Any]:
        return checkpoint_content(self.models, self.sources)

    # --- read side -----------------------------------------------------------------
    def snapshot(self) -> EngineSnapshot:
        with self.lock:
            models = tuple(m.snapshot() for m in self.models.values())
            sources = tuple(s.snapshot() for s in self.sources)
        checkpoints = self._checkpoints
        return EngineSnapshot(
            models, sources, self.ready, checkpoints.last_written_wall, checkpoints.failures
        )

    def close(self) -> bool:
        """Write the last checkpoint and let go of the files; False when that checkpoint
        could not be written (the lines since the one before are then read again)."""
        written = self._checkpoints.write_last(self._locked_state)
        for source in self.sources:
            source.tailer.close()
        if self._parse_ahead is not None:
            self._parse_ahead.shutdown(wait=True)
        return written
