"""Label values from log data: canonical text, bounded in number and in length, so no
label set grows without bound.

Length: a value longer than ``MAX_LABEL_LENGTH`` (128) characters is exported as its
first 115 characters, ``…`` and the first 12 hex digits of the SHA-256 of the whole value
(128 characters in all). The same value always gives the same label (in every process:
the hash is not Python's salted ``hash``), two long values with the same beginning stay
apart, a bounded value is bounded again to itself, and the cappers below count bounded
values, so the cap on their number applies to them.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd

OTHER = "__other__"
MAX_LABEL_LENGTH = 128
_DIGEST_LENGTH = 12
_MARK = "…"
_KEPT = MAX_LABEL_LENGTH - len(_MARK) - _DIGEST_LENGTH


def bounded_label(text: str) -> str:
    """``text`` itself, or when longer than ``MAX_LABEL_LENGTH`` characters its beginning,
    ``…`` and a short hash of the whole text (see the module docstring)."""
    if len(text) <= MAX_LABEL_LENGTH:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{text[:_KEPT]}{_MARK}{digest[:_DIGEST_LENGTH]}"


def number_label(number: float) -> str:
    """A number as label text: an integral one in integer digits (``1.0`` -> ``1``, exact
    however large), any other as Python writes the float (``0.5``, ``inf``, ``nan``)."""
    number = float(number)
    return str(int(number)) if number.is_integer() else repr(number)


def number_labels(numbers: np.ndarray) -> np.ndarray:
    """`number_label` of each float: one numpy conversion for the integral values that
    fit an int64, the rest one by one."""
    numbers = np.asarray(numbers, dtype=np.float64)
    text = np.empty(numbers.shape, dtype=object)
    with np.errstate(invalid="ignore"):
        small = (np.mod(numbers, 1.0) == 0) & (np.abs(numbers) < 2.0**63)
    if small.any():
        text[small] = numbers[small].astype(np.int64).astype(str)
    if not small.all():
        text[~small] = [number_label(x) for x in numbers[~small]]
    return text


def canonical_label(text: str) -> str:
    """Class labels compare as text, with numbers written canonically (``1.0`` -> ``1``)."""
    try:
        number = float(text)
    except ValueError:
        return text
    return number_label(number) if math.isfinite(number) else text


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
        text[is_number] = number_labels(numeric_array[is_number])
    return text


def _bounded_factorize(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Each value's code and the distinct bounded values (`bounded_label`), in order of
    first sight: one hash per distinct value, no sort, and no fixed-width copy of the
    column (``astype(str)`` would pad every row to the longest value)."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=False)
    texts = [bounded_label(str(u)) for u in uniques]
    if len(set(texts)) == len(texts):
        return codes, texts
    merged, distinct = pd.factorize(np.array(texts, dtype=object))  # values that bound alike
    return merged[codes], [str(u) for u in distinct]


class LabelCapper:
    """Maps raw values to at most ``limit`` label values, in order of first sight; the rest fold
    into ``__other__``. The order is part of the checkpoint so indices stay stable.
    Values are bounded in length (`bounded_label`) before they are counted."""

    def __init__(self, limit: int, known: list[str] | None = None) -> None:
        self.limit = limit
        self.values: list[str] = [bounded_label(v) for v in list(known or [])[:limit]]
        self._index = {v: i for i, v in enumerate(self.values)}

    def index_of(self, value: str) -> int:
        """Index of a value; ``limit`` means ``__other__``."""
        value = bounded_label(value)
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
        codes, uniques = _bounded_factorize(values)
        mapped = np.array([self.index_of(u) for u in uniques], dtype=np.int64)
        return mapped[codes]

    def label(self, index: int) -> str:
        return self.values[index] if index < len(self.values) else OTHER


class RecentLabels:
    """At most ``limit`` label values, the ones seen most recently in event time; when a
    newer value needs a slot the least recently seen one gives it up (is folded into
    ``__other__``). For model versions: each deployment brings a new one, and the last
    ``limit`` deployments are the ones worth a series of their own.

    A slot's index is stable while it holds its value; the caller moves what it counted
    under a folded slot to ``limit`` (``__other__``) before counting under it again.
    Values are bounded in length (`bounded_label`) before they take a slot."""

    def __init__(
        self, limit: int, known: list[str] | None = None, last_seen: list[float] | None = None
    ) -> None:
        self.limit = limit
        self.values: list[str] = [bounded_label(v) for v in list(known or [])[:limit]]
        times = list(last_seen or [])[: len(self.values)]
        self.last_seen: list[float] = times + [-math.inf] * (len(self.values) - len(times))
        self._index = {v: i for i, v in enumerate(self.values)}

    def assign(self, values: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
        """Each row's slot (``limit``: ``__other__``), given its value and event time, and
        the slots given up on the way (slot -> the value it held)."""
        if len(values) == 0:
            return np.zeros(0, dtype=np.int64), {}
        codes, uniques = _bounded_factorize(values)
        newest = np.full(len(uniques), -np.inf)
        np.maximum.at(newest, codes, times)
        mapped = np.full(len(uniques), self.limit, dtype=np.int64)
        newcomers = []
        present: dict[str, int] = {}  # kept value -> its position among this call's uniques
        for position, (value, seen) in enumerate(zip(uniques, newest.tolist(), strict=True)):
            slot = self._index.get(str(value))
            if slot is None:
                newcomers.append((seen, position, str(value)))
                continue
            mapped[position] = slot
            present[str(value)] = position
            self.last_seen[slot] = max(self.last_seen[slot], seen)
        folded: dict[int, str] = {}
        for seen, position, value in sorted(newcomers, reverse=True):
            if len(self.values) < self.limit:
                slot = len(self.values)
                self.values.append(value)
                self.last_seen.append(seen)
            else:
                slot = min(range(self.limit), key=self.last_seen.__getitem__)
                if not self.last_seen[slot] < seen:
                    continue  # older than every kept value: it goes to __other__
                folded.setdefault(slot, self.values[slot])
                if self.values[slot] in present:  # its rows here go where its counts go
                    mapped[present.pop(self.values[slot])] = self.limit
                del self._index[self.values[slot]]
                self.values[slot] = value
                self.last_seen[slot] = seen
            self._index[value] = slot
            mapped[position] = slot
        return mapped[codes], folded

    def label(self, index: int) -> str:
        return self.values[index] if index < len(self.values) else OTHER
