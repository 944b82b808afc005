"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Exporter


@pytest.fixture
def exporters() -> Iterator[list[Exporter]]:
    """Exporter processes started by a test; killed at its end whatever happened."""
    started: list[Exporter] = []
    yield started
    for exporter in started:
        exporter.kill()


@pytest.fixture
def start_exporter(exporters: list[Exporter]):
    def start(config: Path, **kwargs: object) -> Exporter:
        exporter = Exporter(config, **kwargs).start()  # type: ignore[arg-type]
        exporters.append(exporter)
        return exporter

    return start
