"""The warnings about rejected lines: what was rejected where and why, rate-limited per
source and reason."""

from __future__ import annotations

import logging
from collections.abc import Callable

from exporter.config import Config
from exporter.ingest.rows import ParsedRows
from exporter.ingest.tail_read import Chunk
from exporter.ratelimit import RateLimitedLog

log = logging.getLogger("ml_model_exporter")

# the model state's rejections that get a warning of their own
_MODEL_REASONS = ("late", "duplicate", "timestamp")


class RejectLog:
    def __init__(self, config: Config, monotonic: Callable[[], float]) -> None:
        self._config = config
        self._log = RateLimitedLog(log, monotonic)

    def chunk(
        self, key: str, kind: str, chunk: Chunk, rows: ParsedRows, model_rejects: dict[str, int]
    ) -> None:
        """Warn about the lines of ``chunk`` (from source ``key``, of ``kind``) that the
        parser (``rows``), the tailer or the model state (``model_rejects``) rejected."""
        for reason, why in rows.examples.items():
            self._log.warning(
                f"{key}:{reason}", "%s: rejected a line (%s): %s", chunk.path, reason, why
            )
        if chunk.too_long:
            self._log.warning(
                f"{key}:too_long",
                "%s: rejected %d line(s) (too_long): longer than max_line_bytes=%d",
                chunk.path,
                chunk.too_long,
                self._config.max_line_bytes,
            )
        for reason in _MODEL_REASONS:
            if model_rejects.get(reason):
                self._log.warning(
                    f"{key}:{reason}",
                    "%s: rejected %d row(s) (%s)",
                    chunk.path,
                    model_rejects[reason],
                    self._reason_text(reason, kind),
                )

    def _reason_text(self, reason: str, kind: str) -> str:
        if reason == "late":
            return "older than the longest window behind the watermark"
        if reason == "duplicate":
            other = "outcome" if kind == "predictions" else "prediction"
            return f"an id already waiting for its {other}"
        return f"more than max_future={self._config.max_future:g}s ahead of the clock"
