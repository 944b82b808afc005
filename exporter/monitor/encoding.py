"""Encoding a chunk of prediction rows once: per row and feature a data-quality code, and
per row and binned entry a slot against the fitted reference.

A row's data-quality code has one bit per problem (`MISSING`, `INVALID`, `OUT_OF_RANGE`,
`UNSEEN`), checked by the rules of the baseline in force when the chunk is encoded:
before a ``from_stream`` reference exists, out of range uses the configured bounds only,
no category is unseen, and a feature of unknown type counts only missing values.
Numeric values are missing or invalid by `exporter.stats.profile.split_numeric`; a value
that is not a finite number is invalid; bounds are inclusive. A categorical value is
missing when None, NaN, empty or blank, and unseen when the reference never had it
(a category the reference folded into "other" is not unseen).

Slots are those of `exporter.stats.fine_grid.fine_histogram` (numeric) and of the
reference's categories plus "other" and "unseen" (categorical), so that counting a
window's slots gives the `exporter.stats.profile` profiles drift reads.
`exporter.monitor.profiling` does that counting, per time bucket.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from exporter.monitor.baseline import Baseline, Layout
from exporter.stats.fit import category_strings
from exporter.stats.multivariate import reconstruction_errors_of_columns
from exporter.stats.profile import split_numeric
from exporter.stats.reference import CategoricalReference, NumericReference

__all__ = [
    "INVALID",
    "MISSING",
    "OUT_OF_RANGE",
    "UNSEEN",
    "Encoded",
    "binary_slots",
    "category_counts",
    "category_slots",
    "concat",
    "encode",
    "numeric_data_quality",
]

MISSING, INVALID, OUT_OF_RANGE, UNSEEN = 1, 2, 4, 8


@dataclass
class Encoded:
    """Per-row encoding of one chunk, from which any subset's profile is two bincounts."""

    rows: int
    data_quality: np.ndarray  # (features, rows) uint8 data-quality code (0 almost everywhere)
    slots: np.ndarray | None = None  # (entries, rows) global slot or the sentinel
    distances: np.ndarray | None = None  # (entries, rows) distance to interval end (or 0)
    errors: np.ndarray | None = None  # (rows,) reconstruction error, 0 where not binned
    binned_rows: np.ndarray | None = None  # (rows,) bool: row is in the multivariate count
    flagged: tuple[np.ndarray, np.ndarray] | None = None  # (feature, row) of codes != 0

    def flagged_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Where `data_quality` has a non-zero code (few rows: most values are clean)."""
        if self.flagged is None:
            self.flagged = np.nonzero(self.data_quality)
        return self.flagged

    def flag_features(self, features: list[int]) -> None:
        """Only these features have non-zero codes: look for flagged cells in their rows."""
        rows = [np.flatnonzero(self.data_quality[feature]) for feature in features]
        counts = [len(r) for r in rows]
        self.flagged = (
            np.repeat(np.asarray(features, dtype=np.intp), counts),
            np.concatenate(rows) if rows else np.zeros(0, dtype=np.intp),
        )


def encode(
    frame: pd.DataFrame, baseline: Baseline, layout: Layout | None, prediction_column: str
) -> Encoded:
    """Every row's data-quality code per feature by the rules of `baseline` and, given
    the `layout` of the fitted baseline, its slot per binned entry (features, prediction;
    the sentinel where `baseline` has no reference for it) and reconstruction error."""
    n = len(frame)
    specs = baseline.features
    data_quality = np.zeros((len(specs), n), dtype=np.uint8)
    numeric_values: dict[str, np.ndarray] = {}
    binned = BinnedRows(layout, n) if layout is not None else None
    flagged: list[int] = []  # the features with a non-zero data-quality code somewhere
    for index, spec in enumerate(specs):
        if spec.type != "numeric":
            slots, missing = category_slots(
                *_factorized(frame, spec.name), spec.ref if spec.type else None
            )
            code: np.ndarray | None = missing.astype(np.uint8) * MISSING
            if isinstance(spec.ref, CategoricalReference):
                code |= (slots == len(spec.ref.categories) + 1).astype(np.uint8) * UNSEEN
                if binned is not None:
                    binned.put_categorical(("features", spec.name), slots)
        else:
            values, invalid = split_numeric(_column(frame, spec.name))
            numeric_values[spec.name] = values
            code, valid = numeric_data_quality(values, invalid, spec.lower, spec.upper)
            if binned is not None and isinstance(spec.ref, NumericReference):
                binned.put_numeric(("features", spec.name), spec.ref, values, valid)
        if code is not None and code.any():
            data_quality[index] = code
            flagged.append(index)
    encoded = Encoded(n, data_quality)
    encoded.flag_features(flagged)
    if binned is None:
        return encoded
    prediction = baseline.prediction.ref
    if prediction is not None:
        name = prediction_column
        if isinstance(prediction, NumericReference):
            values = pd.to_numeric(pd.Series(_column(frame, name)), errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
            binned.put_numeric(("prediction", ""), prediction, values, np.isfinite(values))
        else:
            slots = category_slots(*_factorized(frame, name), prediction)[0]
            binned.put_categorical(("prediction", ""), slots)
    encoded.slots, encoded.distances = binned.finish()
    multivariate = baseline.multivariate
    if multivariate is not None:
        encoded.errors = reconstruction_errors_of_columns(
            multivariate, [numeric_values[name] for name in multivariate.features]
        )
        encoded.binned_rows = np.ones(n, dtype=bool)
    return encoded


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name in frame.columns:
        return frame[name].to_numpy()
    return np.full(len(frame), None, dtype=object)


def numeric_data_quality(
    values: np.ndarray, invalid: np.ndarray, lower: float | None, upper: float | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Data-quality code per row (missing, invalid, out of range) and the valid mask;
    ``(None, None)`` when every value is a finite number within the bounds (the common
    chunk: four reductions instead of a dozen passes)."""
    with np.errstate(over="ignore", invalid="ignore"):
        clean = math.isfinite(values.sum()) and not invalid.any()  # a NaN or inf spreads
    if clean:
        if (lower is None or values.size == 0 or values.min() >= lower) and (
            upper is None or values.size == 0 or values.max() <= upper
        ):
            return None, None
        return _outside(values, lower, upper).view(np.uint8) * np.uint8(OUT_OF_RANGE), None
    nan = np.isnan(values)
    missing = nan & ~invalid
    valid = ~nan & ~invalid & np.isfinite(values)
    bad = ~valid & ~missing
    code = (missing.astype(np.uint8) * MISSING) | (bad.astype(np.uint8) * INVALID)
    if lower is not None or upper is not None:
        code |= (_outside(values, lower, upper) & valid).astype(np.uint8) * OUT_OF_RANGE
    return code, valid


def _outside(values: np.ndarray, lower: float | None, upper: float | None) -> np.ndarray:
    """The values below `lower` or above `upper` (NaN is neither)."""
    outside = np.zeros(values.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        if lower is not None:
            outside |= values < lower
        if upper is not None:
            outside |= values > upper
    return outside


class BinnedRows:
    """A chunk's (entries, rows) global slots and distances (`Encoded`), written entry by
    entry in place; rows of an entry not binned hold the sentinel slot (and distance 0)."""

    def __init__(self, layout: Layout, rows: int) -> None:
        self.layout = layout
        self.slots = np.empty((len(layout.entries), rows), dtype=np.intp)
        self.distances = np.zeros((len(layout.entries), rows), dtype=np.float64)
        self._where = {
            (entry.section, entry.name): (index, entry.base)
            for index, entry in enumerate(layout.entries)
        }
        self._written: set[int] = set()

    def put_categorical(self, key: tuple[str, str], local: np.ndarray) -> None:
        """`local`: each row's slot in the entry (-1: not binned)."""
        index, base = self._where[key]
        slots = self.slots[index]
        np.add(local, base, out=slots)
        slots[local < 0] = self.layout.slots
        self._written.add(index)

    def put_numeric(
        self,
        key: tuple[str, str],
        ref: NumericReference,
        values: np.ndarray,
        valid: np.ndarray | None,
    ) -> None:
        """Each valid value's fine slot and its distance to that slot's open interval's
        finite end (0 on a grid point), as `reference.fine_histogram` counts them."""
        index, base = self._where[key]
        slots, distances = self.slots[index], self.distances[index]
        self._written.add(index)
        if valid is None or valid.all():  # None: every value is valid
            _fine_slots_into(ref, values, slots, distances)
        else:
            slots.fill(self.layout.slots - base)
            some = np.flatnonzero(valid)
            if some.size:
                local_slots = np.empty_like(some)
                local_distances = np.empty(some.size, dtype=np.float64)
                _fine_slots_into(ref, values[some], local_slots, local_distances)
                slots[some], distances[some] = local_slots, local_distances
        slots += base

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """The arrays, with the sentinel in the entries nothing was put into."""
        for index in range(len(self.layout.entries)):
            if index not in self._written:
                self.slots[index] = self.layout.slots
        return self.slots, self.distances


def _fine_slots_into(
    ref: NumericReference,
    finite: np.ndarray,
    slots: np.ndarray,
    distances: np.ndarray,
) -> None:
    """Fine slot (``2r`` inside open interval r, ``2r - 1`` on grid point r - 1) and
    distance to its open interval's finite end (0 on a point) of each finite value."""
    grid = ref.fine_edges
    index = ref.cell_index
    right = (
        np.searchsorted(grid, finite, side="right")
        if index is None
        else index.right_positions(finite)
    )
    lower_point = ref.lower_points[right]  # g_{r-1}; g_0 below the grid
    on_point = lower_point == finite
    np.multiply(right, 2, out=slots)
    slots -= on_point
    # g_0 - v below the grid, v - g_{r-1} inside and above: both |v - g_{r-1}|
    np.subtract(finite, lower_point, out=distances)
    np.abs(distances, out=distances)


def _factorized(frame: pd.DataFrame, name: str) -> tuple[np.ndarray, np.ndarray]:
    """A column as codes (-1: missing) into its distinct values (an object array). A
    categorical column (what the CSV parser gives categorical features) has them already."""
    if name in frame.columns and isinstance(frame[name].dtype, pd.CategoricalDtype):
        column = frame[name]
        return column.cat.codes.to_numpy(), column.cat.categories.to_numpy(dtype=object)
    codes, distinct = pd.factorize(
        np.asarray(_column(frame, name), dtype=object).ravel(), use_na_sentinel=True
    )
    return codes, np.asarray(distinct, dtype=object)


def category_slots(
    codes: np.ndarray, distinct: np.ndarray, ref: CategoricalReference | None
) -> tuple[np.ndarray, np.ndarray]:
    """Each value's slot in `ref` (-1 if missing; unseen = ``len(categories) + 1``) and
    the missing mask (None, NaN, empty or blank: `category_strings`); the values as
    `_factorized` gives them."""
    # Per distinct value, then one lookup per row; code -1 (missing) takes the last entry.
    if len(distinct) <= _CACHED_DISTINCT and all(type(value) is str for value in distinct):
        # a chunk's few distinct strings are almost always the previous chunk's
        distinct_slots, blank = _string_slots(tuple(distinct), ref)
    else:
        distinct_slots, blank = _distinct_slots(distinct, ref)
    missing = blank[codes]
    if ref is None:
        return np.full(codes.shape, -1, dtype=np.intp), missing
    return distinct_slots[codes], missing


_CACHED_DISTINCT = 64


@functools.lru_cache(maxsize=256)
def _string_slots(
    distinct: tuple[str, ...], ref: CategoricalReference | None
) -> tuple[np.ndarray, np.ndarray]:
    slots, missing = _distinct_slots(np.array(distinct, dtype=object).reshape(len(distinct)), ref)
    slots.flags.writeable = missing.flags.writeable = False  # shared by every later chunk
    return slots, missing


def _distinct_slots(
    distinct: np.ndarray, ref: CategoricalReference | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per distinct value and one more entry for code -1: its slot in `ref` (-1 when
    blank or missing, or without a reference) and whether it is missing."""
    if all(type(value) is str for value in distinct):
        # What `category_strings` makes of plain strings (stripped; blank is missing),
        # without its pandas overhead: measured 2 us instead of 615 us for 5 distinct
        # values, 190 us instead of 1060 us for 1000, paid per chunk.
        stripped = [value.strip() for value in distinct]
        text = np.array(stripped, dtype=object).reshape(len(stripped))
        blank = np.array([value == "" for value in stripped], dtype=bool).reshape(len(stripped))
    else:
        text, blank = category_strings(distinct)
    missing = np.append(blank, True)
    if ref is None:
        return np.full(len(missing), -1, dtype=np.intp), missing
    index, slot_of = ref.slot_index
    found = index.get_indexer(text)
    slots = np.where(blank, -1, np.where(found >= 0, slot_of[found], len(ref.categories) + 1))
    return np.append(slots, -1).astype(np.intp), missing


def concat(first: Encoded, second: Encoded) -> Encoded:
    """The encoding of `first`'s rows then `second`'s (the rows before and after a
    ``from_stream`` fit): only `second`'s count in the multivariate drift."""

    def join(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        if a is None or b is None:
            return b if a is None else a
        return np.concatenate([a, b], axis=-1)

    errors, binned = second.errors, second.binned_rows
    if errors is not None and binned is not None:
        errors = np.concatenate([np.zeros(first.rows), errors])
        binned = np.concatenate([np.zeros(first.rows, dtype=bool), binned])
    return Encoded(
        first.rows + second.rows,
        np.concatenate([first.data_quality, second.data_quality], axis=-1),
        join(first.slots, second.slots),
        join(first.distances, second.distances),
        errors,
        binned,
    )


def category_counts(values: np.ndarray, ref: CategoricalReference) -> np.ndarray:
    """Counts of `values` in `ref`'s category slots, "other" and "unseen" (missing values
    are not counted)."""
    codes, distinct = pd.factorize(np.asarray(values, dtype=object).ravel(), use_na_sentinel=True)
    slots, _ = category_slots(codes, np.asarray(distinct, dtype=object), ref)
    return np.bincount(slots[slots >= 0], minlength=len(ref.categories) + 2).astype(np.int64)


@functools.lru_cache(maxsize=64)
def binary_slots(ref: CategoricalReference) -> tuple[int, int]:
    """Profile slots of the binary outcome labels "1" and "0" (unseen if not in `ref`)."""
    index, slot_of = ref.slot_index
    found = index.get_indexer(["1", "0"])
    unseen = len(ref.categories) + 1
    return tuple(int(slot_of[f]) if f >= 0 else unseen for f in found)  # type: ignore[return-value]
