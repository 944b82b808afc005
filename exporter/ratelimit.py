"""A log line per problem, but not a flood: at most ``burst`` lines per key per ``period``."""

from __future__ import annotations

import logging
from collections.abc import Callable


class RateLimitedLog:
    def __init__(
        self,
        logger: logging.Logger,
        clock: Callable[[], float],
        *,
        burst: int = 5,
        period: float = 60.0,
    ) -> None:
        self.logger = logger
        self.clock = clock
        self.burst = burst
        self.period = period
        self._windows: dict[str, tuple[float, int, int]] = {}  # key -> (start, logged, dropped)

    def warning(self, key: str, message: str, *args: object) -> None:
        self.log(logging.WARNING, key, message, *args)

    def error(self, key: str, message: str, *args: object) -> None:
        self.log(logging.ERROR, key, message, *args)

    def log(self, level: int, key: str, message: str, *args: object) -> None:
        now = self.clock()
        start, logged, dropped = self._windows.get(key, (now, 0, 0))
        if now - start >= self.period:
            if dropped:
                self.logger.log(level, "%s: %d more similar messages suppressed", key, dropped)
            start, logged, dropped = now, 0, 0
        if logged < self.burst:
            self.logger.log(level, message, *args)
            logged += 1
        else:
            dropped += 1
        self._windows[key] = (start, logged, dropped)
