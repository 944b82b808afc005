"""What the engine's checkpoint holds, and how the engine gets it back at start-up.

Each model's aggregates under the fingerprint of what they depend on, and each source's
counters and tailer state (its files and offsets). A model whose fingerprint changed
starts afresh, its sources from the start of their logs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from exporter.config import Config
from exporter.ingest.model_schemas import model_fingerprint
from exporter.ingest.sources import Source, SourceCounters
from exporter.state.checkpoint import checkpoint_not_understood, load_checkpoint
from exporter.state.model_state import ModelState

log = logging.getLogger("ml_model_exporter")


def checkpoint_content(models: dict[str, ModelState], sources: Iterable[Source]) -> dict[str, Any]:
    """The checkpoint of ``models`` and ``sources`` as they are now (the caller holds the
    engine's lock, so offsets and aggregates describe the same rows)."""
    return {
        "models": {
            name: {"fingerprint": model_fingerprint(m.model, m.monitor), "state": m.state()}
            for name, m in models.items()
        },
        "sources": {
            s.key: {
                "tailer": s.resume_state(),
                "lines": s.counters.lines,
                "rejected": dict(s.counters.rejected),
            }
            for s in sources
        },
    }


class SavedState:
    """The checkpoint found at start-up (none when ``enabled`` is false), handed out part
    by part. A part that cannot be applied is the checkpoint's error (exit 2, naming the
    file), not a traceback."""

    def __init__(self, config: Config, *, enabled: bool) -> None:
        self._config = config
        restored = load_checkpoint(config.state_dir) if enabled else None
        with self.applying("its state"):
            self._models = dict((restored or {}).get("models", {}))
            self._sources = dict((restored or {}).get("sources", {}))

    def restore_model(self, state: ModelState, fingerprint: str) -> bool:
        """Restore ``state`` when the checkpoint holds it under ``fingerprint``; False
        (its logs are read from the start) when it does not."""
        name = state.model.name
        saved = self._models.get(name)
        with self.applying(f"model {name}"):
            usable = saved is not None and saved.get("fingerprint") == fingerprint
            if usable:
                state.restore(saved["state"])
        if saved is not None and not usable:
            log.warning(
                "model %s: configuration changed since the last checkpoint; "
                "re-reading its logs from the start",
                name,
            )
        return usable

    def source(self, key: str) -> tuple[SourceCounters, dict[str, Any] | None]:
        """A source's counters and tailer state; fresh ones when the checkpoint has none."""
        saved = self._sources.get(key)
        if saved is None:
            return SourceCounters(), None
        with self.applying(f"source {key}"):
            counters = SourceCounters(
                int(saved["lines"]), {str(k): int(v) for k, v in saved["rejected"].items()}
            )
            return counters, dict(saved["tailer"])

    @contextmanager
    def applying(self, part: str) -> Iterator[None]:
        """An error while ``part`` of the checkpoint is applied is the checkpoint's: a
        CheckpointError that names the file."""
        try:
            yield
        except Exception as err:
            problem = f"{part} cannot be applied ({type(err).__name__}: {err})"
            raise checkpoint_not_understood(self._config.state_dir, problem) from None
