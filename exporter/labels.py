"""Label values from log data: canonical text, capped so no label set grows without bound."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

OTHER = "__other__"


def canonical_label(text: str) -> str:
    """Class labels compare as text, with numbers written canonically (``1.0`` -> ``1``)."""
    try:
        number = float(text)
    except ValueError:
        return text
    if math.isfinite(number) and number.is_integer():
        return str(int(number))
    return repr(number) if math.isfinite(number) else text


def canonical_labels(values: pd.Series) -> np.ndarray:
    """Vectorised canonical_label over a column; missing values become ``""``."""
    numeric = pd.to_numeric(values, errors="coerce")
    numeric_array = numeric.to_numpy(dtype="float64", na_value=np.nan)
    text = (
        values.astype("object")
        .where(values.notna(), "")
        .astype(str)
        .str.strip()
        .to_numpy(dtype=object)
    )
    is_number = np.isfinite(numeric_array)
    if is_number.any():
        integral = is_number & (np.mod(numeric_array, 1.0) == 0)
        if integral.any():
            text[integral] = numeric_array[integral].astype(np.int64).astype(str)
        fractional = is_number & ~integral
        if fractional.any():
            text[fractional] = [repr(float(x)) for x in numeric_array[fractional]]
    return text


class LabelCapper:
    """Maps raw values to at most ``limit`` label values, in order of first sight; the rest fold
    into ``__other__``. The order is part of the checkpoint so indices stay stable."""

    def __init__(self, limit: int, known: list[str] | None = None) -> None:
        self.limit = limit
        self.values: list[str] = list(known or [])[:limit]
        self._index = {v: i for i, v in enumerate(self.values)}

    def index_of(self, value: str) -> int:
        """Index of a value; ``limit`` means ``__other__``."""
        found = self._index.get(value)
        if found is not None:
            return found
        if len(self.values) < self.limit:
            self._index[value] = len(self.values)
            self.values.append(value)
            return len(self.values) - 1
        return self.limit

    def indices(self, values: np.ndarray) -> np.ndarray:
        """Vectorised index_of: one dictionary lookup per distinct value, not per row."""
        if len(values) == 0:
            return np.zeros(0, dtype=np.int64)
        codes, uniques = pd.factorize(values.astype(str))  # hashing, no sort
        mapped = np.array([self.index_of(str(u)) for u in uniques], dtype=np.int64)
        return mapped[codes]

    def label(self, index: int) -> str:
        return self.values[index] if index < len(self.values) else OTHER
