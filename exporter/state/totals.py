"""A model's counters since the start of its logs, by model-version slot: predictions,
outcomes, and classification outcomes by actual and predicted class."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from exporter.stats.model_quality import Outcomes


class VersionTotals:
    def __init__(self) -> None:
        self.predictions: dict[int, int] = {}
        self.outcomes: dict[int, int] = {}
        self.confusion: dict[tuple[int, int, int], int] = {}  # (version, actual, predicted)

    def count_predictions(self, versions: np.ndarray) -> None:
        _count_into(self.predictions, versions)

    def count_outcomes(self, versions: np.ndarray, rows: Outcomes, classes: int) -> None:
        """Outcomes of these version slots; ``classes``: the side of a confusion matrix."""
        _count_into(self.outcomes, versions)
        if rows.predicted_class is None or rows.actual_class is None:
            return
        cells = np.bincount(
            (versions * classes + rows.actual_class) * classes + rows.predicted_class
        )
        for cell in np.flatnonzero(cells).tolist():
            key = (cell // (classes * classes), cell // classes % classes, cell % classes)
            self.confusion[key] = self.confusion.get(key, 0) + int(cells[cell])

    def fold_versions(self, slots: Iterable[int], into: int) -> None:
        """Move what was counted under these version slots to slot ``into``."""
        moved = set(slots)
        for counter in (self.predictions, self.outcomes):
            for slot in moved & counter.keys():
                counter[into] = counter.get(into, 0) + counter.pop(slot)
        for key in [k for k in self.confusion if k[0] in moved]:
            target = (into, key[1], key[2])
            self.confusion[target] = self.confusion.get(target, 0) + self.confusion.pop(key)

    def labelled(
        self, version: Callable[[int], str], cls: Callable[[int], str]
    ) -> tuple[dict[str, int], dict[str, int], dict[tuple[str, str, str], int]]:
        """Predictions, outcomes and confusion counts keyed by label instead of index."""
        confusion = {
            (version(v), cls(a), cls(p)): count for (v, a, p), count in self.confusion.items()
        }
        return _by_label(self.predictions, version), _by_label(self.outcomes, version), confusion

    def state(self) -> dict[str, Any]:
        return {
            "predictions": dict(self.predictions),
            "outcomes": dict(self.outcomes),
            "confusion": dict(self.confusion),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        self.predictions = dict(state["predictions"])
        self.outcomes = dict(state["outcomes"])
        self.confusion = dict(state["confusion"])


def _count_into(counter: dict[int, int], indices: np.ndarray) -> None:
    counts = np.bincount(indices)
    for key in np.flatnonzero(counts).tolist():
        counter[key] = counter.get(key, 0) + int(counts[key])


def _by_label(counter: Mapping[int, int], label: Callable[[int], str]) -> dict[str, int]:
    result: dict[str, int] = {}
    for index, count in counter.items():
        name = label(index)
        result[name] = result.get(name, 0) + count
    return result
