"""Scrape isolation: one model whose samples fail to build is left out of a scrape, logged
and counted, while every other model's samples are still served."""

from __future__ import annotations

import copy
import logging
import threading
import time
import traceback
from collections.abc import Callable, Mapping

from prometheus_client.metrics_core import Metric

from exporter.ratelimit import RateLimitedLog

log = logging.getLogger("ml_model_exporter")


class ScrapeErrors:
    """Per-model scrape failures, kept across scrapes: each is logged (at most ``burst``
    lines a minute per model and part) and counted by model. Shared by the collectors of
    one registry; scrapes may run in parallel threads."""

    def __init__(
        self,
        logger: logging.Logger = log,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = RateLimitedLog(logger, monotonic)
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def record(self, model: str, part: str, error: BaseException) -> None:
        """One failure to build ``part`` (``model_quality`` or ``drift``) of ``model``'s samples."""
        detail = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        with self._lock:
            self._counts[model] = self._counts.get(model, 0) + 1
            self._log.error(
                f"scrape {model} {part}",
                "model %r: building its %s samples failed, left out of this scrape: %s",
                model,
                part,
                detail.rstrip(),
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def isolated_samples(
    errors: ScrapeErrors,
    model: str,
    part: str,
    families: Mapping[str, Metric],
    build: Callable[[Mapping[str, Metric]], None],
) -> None:
    """Run ``build`` on fresh, empty copies of ``families`` and add what it built to them
    only if it finished: a failure (recorded in ``errors``) adds nothing."""
    buffer = {key: empty_like(family) for key, family in families.items()}
    try:
        build(buffer)
    except Exception as err:  # one model's samples must not fail the scrape
        errors.record(model, part, err)
        return
    for key, family in buffer.items():
        families[key].samples.extend(family.samples)


def empty_like(family: Metric) -> Metric:
    """A family of the same class, name, help and label names, without samples."""
    empty = copy.copy(family)
    empty.samples = []
    return empty
