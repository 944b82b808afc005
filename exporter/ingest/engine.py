"""The ingest loop: tail every source, parse each chunk, update the model states, checkpoint.

One thread owns all mutation. A chunk is applied whole (rows, counters, tailer offset)
under the lock, and checkpoints are taken between chunks, so a checkpoint's offsets and
aggregates always describe the same rows: after a crash, restarting from it counts every
complete row exactly once. Scrapes read an immutable snapshot taken under the same lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import resource
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from exporter.config import Config, ModelConfig, SourceConfig
from exporter.ingest.parse import ParsedRows, RowSchema, parse_chunk_safely
from exporter.ingest.readahead import parser_thread, read_ahead
from exporter.ingest.tailer import Chunk, SourceStats, Tailer
from exporter.ratelimit import RateLimitedLog
from exporter.state.checkpoint import checkpoint_not_understood, load_checkpoint, save_checkpoint
from exporter.state.model_state import FeatureMonitor, ModelSnapshot, ModelState, MonitorFactory

log = logging.getLogger("ml_model_exporter")


class TailerLike(Protocol):
    def poll(self) -> Iterator[Chunk]: ...
    def state(self) -> dict: ...
    def stats(self) -> SourceStats: ...
    def close(self) -> None: ...


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


@dataclass(frozen=True)
class EngineSnapshot:
    models: tuple[ModelSnapshot, ...]
    sources: tuple[SourceSnapshot, ...]
    ready: bool
    last_checkpoint_seconds: float | None
    checkpoint_failures: int = 0


@dataclass
class _Source:
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


def prediction_schema(model: ModelConfig, *, features: bool = True) -> RowSchema:
    """What a prediction row must carry; ``features=False`` when nothing reads the feature
    columns (a model without a monitor), which are then not parsed at all."""
    columns = model.columns
    required = [columns.prediction]
    if model.outcomes is not None:
        required.append(columns.id)
    numeric = () if model.task == "multiclass" else (columns.prediction,)
    return RowSchema(
        timestamp=columns.timestamp,
        required=tuple(required),
        numeric=numeric,
        text=_text_columns(model),
        categories=tuple(f.name for f in model.features if f.type == "categorical"),
        numeric_features=tuple(f.name for f in model.features if f.type == "numeric"),
        columns=_read_columns(model, features=features),
        na_values=model.na_values,
    )


def outcome_schema(model: ModelConfig) -> RowSchema:
    columns = model.columns
    return RowSchema(
        timestamp=columns.timestamp,
        required=(columns.id, columns.actual),
        numeric=(columns.actual,) if model.task == "regression" else (),
        text=(columns.id,),
        timestamp_required=False,
        columns=frozenset({columns.timestamp, columns.id, columns.actual}),
        na_values=model.na_values,
    )


def _read_columns(model: ModelConfig, *, features: bool) -> frozenset[str] | None:
    """The prediction log's columns the model state and the monitor read; None (all) when
    the monitor reads features that are not configured (then every other column is one)."""
    columns = model.columns
    names = {columns.timestamp, columns.prediction, columns.actual, columns.model_version}
    if model.outcomes is not None:
        names.add(columns.id)
    if not features:
        return frozenset(names)
    if not model.features:
        return None
    return frozenset(names | {f.name for f in model.features})


def _text_columns(model: ModelConfig) -> tuple[str, ...]:
    columns = model.columns
    names = [columns.id, columns.model_version]
    if model.task == "multiclass":
        names += [columns.actual, columns.prediction]
    names += [f.name for f in model.features if f.type == "categorical"]
    return tuple(names)


def parse_chunk(chunk: Chunk, fmt: str, schema: RowSchema) -> ParsedRows:
    return parse_chunk_safely(fmt, chunk.header, chunk.data, schema)


def model_fingerprint(model: ModelConfig, monitor: FeatureMonitor | None = None) -> str:
    """What the stored aggregates depend on; a change discards them and re-reads the logs."""
    relevant = {
        "task": model.task,
        "threshold": model.threshold,
        "positive_class": model.positive_class,
        "model_version": model.model_version,
        "columns": vars(model.columns),
        "predictions": model.predictions.path,
        "outcomes": model.outcomes.path if model.outcomes else None,
        "features": [vars(f) for f in model.features],
        "windows": [w.seconds for w in model.windows],
        "reference": vars(model.reference) if model.reference else None,
        "drift": {"method": model.drift.method, "bins": model.drift.bins},
        "na_values": list(model.na_values),
        # the reference file's content and the binning (Monitor.fingerprint)
        "monitor": getattr(monitor, "fingerprint", None),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()


TailerFactory = Callable[..., TailerLike]


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
        self._tailer_factory = tailer_factory
        self.checkpoints = checkpoints
        self.lock = threading.Lock()
        self.bad_rows_log = RateLimitedLog(log, monotonic)
        self.checkpoint_log = RateLimitedLog(log, monotonic)
        self.checkpoint_failures = 0
        self._retry_at: float | None = None  # after a failed write: not before then
        self.ready = False
        self._last_checkpoint: float | None = None
        self._dirty = True  # something was consumed since the last checkpoint
        self._checkpointed_files: dict[str, tuple] = {}  # source key -> file identities
        self._last_progress = monotonic()
        self._last_checkpoint_wall: float | None = None
        restored = load_checkpoint(config.state_dir) if checkpoints else None
        with _applying_checkpoint(config, "its state"):
            saved_models = dict((restored or {}).get("models", {}))
            saved_sources = dict((restored or {}).get("sources", {}))
        self.models: dict[str, ModelState] = {}
        self.sources: list[_Source] = []
        self._max_open = descriptor_share(sum(1 + (m.outcomes is not None) for m in config.models))
        for model in config.models:
            monitor = monitor_factory(model) if monitor_factory else None
            state = ModelState(
                model,
                max_label_values=config.max_label_values,
                window_buckets=config.window_buckets,
                monitor=monitor,
                max_future=config.max_future,
            )
            saved = saved_models.get(model.name)
            fingerprint = model_fingerprint(model, monitor)
            with _applying_checkpoint(config, f"model {model.name}"):
                usable = saved is not None and saved.get("fingerprint") == fingerprint
                if usable:
                    state.restore(saved["state"])
            if saved is not None and not usable:
                log.warning(
                    "model %s: configuration changed since the last checkpoint; "
                    "re-reading its logs from the start",
                    model.name,
                )
            self.models[model.name] = state
            schema = prediction_schema(model, features=monitor is not None)
            kinds = [("predictions", model.predictions, schema)]
            if model.outcomes is not None:
                kinds.append(("outcomes", model.outcomes, outcome_schema(model)))
            for kind, source, schema in kinds:
                key = f"{model.name}/{kind}"
                saved_source = saved_sources.get(key) if usable else None
                counters = SourceCounters()
                tailer_state = None
                if saved_source is not None:
                    with _applying_checkpoint(config, f"source {key}"):
                        counters = SourceCounters(
                            int(saved_source["lines"]),
                            {str(k): int(v) for k, v in saved_source["rejected"].items()},
                        )
                        tailer_state = dict(saved_source["tailer"])
                restoring = tailer_state is not None
                with _applying_checkpoint(config, f"source {key}") if restoring else nullcontext():
                    tailer = tailer_factory(
                        source.path,
                        fmt=source.format,
                        base_dir=config.base_dir,
                        max_line_bytes=config.max_line_bytes,
                        state=tailer_state,
                        on_event=self._tailer_event(key),
                        max_open=self._max_open,
                        exclude_dir=config.state_dir,
                    )
                self.sources.append(
                    _Source(key, source.path, kind, state, source, schema, tailer, counters)
                )

    # --- ingest ----------------------------------------------------------------
    def step(self) -> int:
        """Read every source to its end once. Returns the number of lines consumed."""
        consumed = 0
        for model in self.models.values():
            consumed += self._step_model([s for s in self.sources if s.model is model])
        self.ready = True
        return consumed

    def _step_model(self, sources: list[_Source]) -> int:
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
                self.maybe_checkpoint(force=self._files_changed(source))
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

    def _reader(self, source: _Source) -> Iterator[tuple[tuple[Chunk, dict[str, Any]], ParsedRows]]:
        fmt, schema = source.config.format, source.schema
        return read_ahead(
            self._chunks(source),
            lambda item: parse_chunk(item[0], fmt, schema),
            self._parse_ahead,
        )

    @staticmethod
    def _stream_time(source: _Source) -> tuple[float, bool]:
        """How far a source has been read in event time; predictions first on a tie."""
        model = source.model
        if source.kind == "predictions":
            watermark = model.watermark
            return (-math.inf if watermark is None else watermark, False)
        return (model.outcome_stream_time, True)

    def _rewind(self, source: _Source) -> None:
        state = source.counted_state
        source.counted_state = None
        if state is None:
            return
        log.warning("%s: re-reading from the last counted offset after a failure", source.key)
        with self.lock:
            source.tailer.close()
            source.tailer = self._tailer_factory(
                source.config.path,
                fmt=source.config.format,
                base_dir=self.config.base_dir,
                max_line_bytes=self.config.max_line_bytes,
                state=state,
                on_event=self._tailer_event(source.key),
                max_open=self._max_open,
                exclude_dir=self.config.state_dir,
            )

    def _files_changed(self, source: _Source) -> bool:
        """Whether the set of files a source follows (or their fingerprints) changed since
        the last checkpoint. Such a change is checkpointed at once: a file the checkpoint
        does not know, or knows without a fingerprint, could be rotated away while the
        exporter is down and then not be found again."""
        return _file_identities(source.resume_state()) != self._checkpointed_files.get(source.key)

    def _chunks(self, source: _Source) -> Iterator[tuple[Chunk, dict[str, Any]]]:
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

    def _apply(self, source: _Source, chunk: Chunk, rows: ParsedRows) -> int:
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
            self._dirty = True
        self._log_progress()
        for reason, why in rows.examples.items():
            self.bad_rows_log.warning(
                f"{source.key}:{reason}", "%s: rejected a line (%s): %s", chunk.path, reason, why
            )
        if chunk.too_long:
            self.bad_rows_log.warning(
                f"{source.key}:too_long",
                "%s: rejected %d line(s) (too_long): longer than max_line_bytes=%d",
                chunk.path,
                chunk.too_long,
                self.config.max_line_bytes,
            )
        for reason in ("late", "duplicate", "timestamp"):
            if model_rejects.get(reason):
                self.bad_rows_log.warning(
                    f"{source.key}:{reason}",
                    "%s: rejected %d row(s) (%s)",
                    chunk.path,
                    model_rejects[reason],
                    self._reason_text(reason, source.kind),
                )
        return rows.lines + chunk.too_long

    def _reason_text(self, reason: str, kind: str) -> str:
        if reason == "late":
            return "older than the longest window behind the watermark"
        if reason == "duplicate":
            other = "outcome" if kind == "predictions" else "prediction"
            return f"an id already waiting for its {other}"
        return f"more than max_future={self.config.max_future:g}s ahead of the clock"

    def _log_progress(self) -> None:
        """A long first pass over big logs says how far it got, every 10 s."""
        if self.ready or self.monotonic() - self._last_progress < 10:
            return
        self._last_progress = self.monotonic()
        lines = sum(s.counters.lines for s in self.sources)
        behind = sum(s.tailer.stats().lag_bytes for s in self.sources)
        log.info("first pass over the logs: %d lines read, %.1f MB to go", lines, behind / 1e6)

    def _tailer_event(self, key: str) -> Callable[[str, str], None]:
        def on_event(kind: str, message: str) -> None:
            log.info("%s: %s: %s", key, kind, message)

        return on_event

    # --- checkpoint --------------------------------------------------------------
    def maybe_checkpoint(self, *, force: bool = False) -> bool:
        """Write a checkpoint when one is due (or ``force``d). A write that fails is
        logged and counted, and tried again a checkpoint interval later; nothing is lost
        meanwhile (the last checkpoint on disk stays consistent, just older)."""
        if not self.checkpoints:
            return False
        now = self.monotonic()
        if self._retry_at is not None and now < self._retry_at:
            return False
        due = self._last_checkpoint is None or (
            now - self._last_checkpoint >= self.config.checkpoint_interval
        )
        if not (force or (due and self._dirty)):
            return False
        with self.lock:
            state, files = self._state()
            self._dirty = False
        try:
            save_checkpoint(self.config.state_dir, state)
        except Exception as err:  # a full or read-only disk must not stop the ingest
            self._dirty = True
            self._retry_at = now + self.config.checkpoint_interval
            self.checkpoint_failures += 1
            self.checkpoint_log.error(
                "checkpoint",
                "cannot write the checkpoint to %s (%s); will retry in %gs",
                self.config.state_dir,
                err,
                self.config.checkpoint_interval,
            )
            return False
        self._retry_at = None
        self._checkpointed_files = files
        log.debug("checkpoint written")
        self._last_checkpoint = now
        self._last_checkpoint_wall = self.clock()
        return True

    def _state(self) -> tuple[dict[str, Any], dict[str, tuple]]:
        sources = {s.key: s.resume_state() for s in self.sources}
        files = {key: _file_identities(st) for key, st in sources.items()}
        return {
            "models": {
                name: {"fingerprint": model_fingerprint(m.model, m.monitor), "state": m.state()}
                for name, m in self.models.items()
            },
            "sources": {
                s.key: {
                    "tailer": sources[s.key],
                    "lines": s.counters.lines,
                    "rejected": dict(s.counters.rejected),
                }
                for s in self.sources
            },
        }, files

    # --- read side -----------------------------------------------------------------
    def snapshot(self) -> EngineSnapshot:
        with self.lock:
            models = tuple(m.snapshot() for m in self.models.values())
            sources = tuple(
                SourceSnapshot(
                    s.label, s.counters.lines, dict(s.counters.rejected), s.tailer.stats()
                )
                for s in self.sources
            )
        return EngineSnapshot(
            models, sources, self.ready, self._last_checkpoint_wall, self.checkpoint_failures
        )

    def close(self) -> bool:
        """Write the last checkpoint and let go of the files; False when that checkpoint
        could not be written (the lines since the one before are then read again)."""
        self._retry_at = None
        written = not self.checkpoints or self.maybe_checkpoint(force=True)
        for source in self.sources:
            source.tailer.close()
        if self._parse_ahead is not None:
            self._parse_ahead.shutdown(wait=True)
        return written


@contextmanager
def _applying_checkpoint(config: Config, part: str) -> Iterator[None]:
    """An error while ``part`` of the checkpoint is applied is the checkpoint's: a
    CheckpointError (exit 2) that names the file, not a traceback."""
    try:
        yield
    except Exception as err:
        problem = f"{part} cannot be applied ({type(err).__name__}: {err})"
        raise checkpoint_not_understood(config.state_dir, problem) from None


def descriptor_share(sources: int) -> int:
    """Descriptors each source's tailer may hold: a quarter of the soft ``ulimit -n``
    shared by all sources (a glob may match more files than that), within 4..256."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    budget = 1 << 16 if soft == resource.RLIM_INFINITY else soft // 4
    return max(4, min(256, budget // max(sources, 1)))


def _file_identities(tailer_state: dict[str, Any]) -> tuple:
    return tuple(
        (f["path"], f["dev"], f["ino"], f["fingerprint"], f["current"], f["copy_of"])
        for f in tailer_state.get("files", [])
    )
