"""Writing the demo's files: a reference CSV, a prediction log and a delayed outcome log.

Logs grow by whole lines, each batch in one write, so that a reader never sees half a row.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from exporter.demo.config import ID_COLUMN


def iso(t: float) -> str:
    """Epoch seconds as ISO 8601 UTC with milliseconds and ``Z``."""
    stamp = datetime.fromtimestamp(t, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def format_value(value: float) -> str:
    """Four significant digits, like the source data, never in exponent notation."""
    return np.format_float_positional(value, precision=4, unique=False, fractional=False, trim="-")


def _csv(rows: Iterable[Sequence[object]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Create or overwrite ``path`` with a header and ``rows``."""
    path.write_text(_csv([columns, *rows]), encoding="utf-8")


class CsvLog:
    """A CSV log created with its header and then appended to."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = path
        path.write_text(",".join(columns) + "\n", encoding="utf-8")

    def append(self, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            _append(self.path, _csv(rows))


class OutcomeLog:
    """A JSON-lines log of outcomes, each held back until its arrival time has come."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pending: list[tuple[float, int, str, int]] = []
        path.write_text("", encoding="utf-8")

    def hold(self, arrival: float, k: int, request_id: str, actual: int) -> None:
        """Keep the outcome of prediction ``k`` until clock time ``arrival``."""
        heapq.heappush(self._pending, (arrival, k, request_id, actual))

    def release(self, now: float) -> None:
        """Append the outcomes that have arrived by ``now``, in order of arrival."""
        lines = []
        while self._pending and self._pending[0][0] <= now:
            arrival, _, request_id, actual = heapq.heappop(self._pending)
            record = {ID_COLUMN: request_id, "actual": actual, "timestamp": iso(arrival)}
            lines.append(json.dumps(record) + "\n")
        if lines:
            _append(self.path, "".join(lines))
