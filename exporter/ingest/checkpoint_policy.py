"""When the engine writes a checkpoint, and what it does when a write fails."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from exporter.config import Config
from exporter.ratelimit import RateLimitedLog
from exporter.state.checkpoint import save_checkpoint

log = logging.getLogger("ml_model_exporter")


class CheckpointPolicy:
    """A checkpoint is due a checkpoint interval after the last one once something was
    consumed, and at once when the files a source follows change. A write that fails is
    logged and counted, and tried again a checkpoint interval later; nothing is lost
    meanwhile (the last checkpoint on disk stays consistent, just older)."""

    def __init__(
        self,
        config: Config,
        *,
        enabled: bool,
        clock: Callable[[], float],
        monotonic: Callable[[], float],
    ) -> None:
        self._config = config
        self.enabled = enabled
        self._clock = clock
        self._monotonic = monotonic
        self._log = RateLimitedLog(log, monotonic)
        self.failures = 0
        self.dirty = True  # something was consumed since the last checkpoint
        self.last_written_wall: float | None = None  # by the clock, for the scrape
        self._last_written: float | None = None  # by the monotonic clock
        self._retry_at: float | None = None  # after a failed write: not before then
        self._written_files: dict[str, tuple] = {}  # source key -> file identities

    def files_changed(self, key: str, tailer_state: dict[str, Any]) -> bool:
        """Whether the set of files a source follows (or their fingerprints) changed since
        the last checkpoint. Such a change is checkpointed at once: a file the checkpoint
        does not know, or knows without a fingerprint, could be rotated away while the
        exporter is down and then not be found again."""
        return _file_identities(tailer_state) != self._written_files.get(key)

    def maybe_write(self, take_state: Callable[[], dict[str, Any]], *, force: bool) -> bool:
        """Write the checkpoint ``take_state()`` gives when one is due (or ``force``d and
        no failed write is waiting for its retry); True when written."""
        if not self.enabled:
            return False
        now = self._monotonic()
        if self._retry_at is not None and now < self._retry_at:
            return False
        due = self._last_written is None or (
            now - self._last_written >= self._config.checkpoint_interval
        )
        if not (force or (due and self.dirty)):
            return False
        state = take_state()
        self.dirty = False
        try:
            save_checkpoint(self._config.state_dir, state)
        except Exception as err:  # a full or read-only disk must not stop the ingest
            self.dirty = True
            self._retry_at = now + self._config.checkpoint_interval
            self.failures += 1
            self._log.error(
                "checkpoint",
                "cannot write the checkpoint to %s (%s); will retry in %gs",
                self._config.state_dir,
                err,
                self._config.checkpoint_interval,
            )
            return False
        self._retry_at = None
        self._written_files = {
            key: _file_identities(source["tailer"]) for key, source in state["sources"].items()
        }
        log.debug("checkpoint written")
        self._last_written = now
        self.last_written_wall = self._clock()
        return True

    def write_last(self, take_state: Callable[[], dict[str, Any]]) -> bool:
        """Write the final checkpoint, without waiting for a retry; True also when
        checkpoints are off (nothing was to be written)."""
        self._retry_at = None
        return not self.enabled or self.maybe_write(take_state, force=True)


def _file_identities(tailer_state: dict[str, Any]) -> tuple:
    return tuple(
        (f["path"], f["dev"], f["ino"], f["fingerprint"], f["current"], f["copy_of"])
        for f in tailer_state.get("files", [])
    )
