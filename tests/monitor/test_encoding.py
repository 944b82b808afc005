"""Tests for exporter.monitor.encoding: the data-quality rules and slots of each value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from exporter.monitor.encoding import (
    INVALID,
    MISSING,
    OUT_OF_RANGE,
    category_counts,
    category_slots,
    numeric_data_quality,
)
from exporter.stats.fit import fit_categorical
from exporter.stats.profile import split_numeric


def codes_of(values: np.ndarray, invalid: np.ndarray, lower: float | None, upper: float | None):
    code, _ = numeric_data_quality(values, invalid, lower, upper)
    return np.zeros(values.shape, dtype=np.uint8) if code is None else code


def test_numeric_data_quality_codes_are_exact() -> None:
    """Injected missing, invalid, infinite and out-of-range values are each flagged once."""
    rng = np.random.default_rng(7)
    values = rng.uniform(0, 100, 5000)
    invalid = np.zeros(5000, dtype=bool)
    values[:150] = np.nan  # missing
    invalid[150:190] = True  # text in a numeric column
    values[150:190] = np.nan
    values[190:200] = np.inf  # not a finite number: invalid
    values[200:230] = -5.0  # below the bounds
    values[230:300] = 250.0  # above them
    code = codes_of(values, invalid, 0.0, 100.0)
    assert np.count_nonzero(code == MISSING) == 150
    assert np.count_nonzero(code == INVALID) == 50
    assert np.count_nonzero(code == OUT_OF_RANGE) == 100
    assert np.count_nonzero(code) == 300


def test_bounds_are_inclusive_and_per_side() -> None:
    values = np.array([-1.0, 0.0, 5.0, 15.0, 20.0, 21.0, np.nan])
    clean = np.zeros(values.shape, dtype=bool)
    out = [
        np.count_nonzero(codes_of(values, clean, low, high) == OUT_OF_RANGE)
        for low, high in ((0.0, None), (0.0, 20.0), (None, 20.0), (None, None))
    ]
    assert out == [1, 2, 1, 0]


def test_clean_chunks_need_no_codes() -> None:
    """Every value a finite number within the bounds: no code array at all."""
    values = np.array([1.0, 2.0, 3.0])
    assert numeric_data_quality(values, np.zeros(3, dtype=bool), 0.0, 3.0) == (None, None)


def test_parsed_text_is_missing_or_invalid() -> None:
    values, invalid = split_numeric(np.array(["1", "", None, "abc", "inf"], dtype=object))
    assert codes_of(values, invalid, None, None).tolist() == [0, MISSING, MISSING, INVALID, INVALID]


def test_categorical_missing_and_unseen_are_exact() -> None:
    """Missing (None, NaN, empty, blank) and unseen categories are counted exactly."""
    rng = np.random.default_rng(7)
    plans = np.array(["basic", "pro", "team"], dtype=object)
    ref = fit_categorical(rng.choice(plans, 20_000))
    values = rng.choice(plans, 5000)
    values[:40] = None
    values[40:60] = np.nan
    values[60:80] = ""
    values[80:90] = "   "
    values[90:190] = "enterprise"  # unseen
    values[190:200] = "free"  # unseen
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    slots, missing = category_slots(codes, np.asarray(distinct, dtype=object), ref)
    assert int(missing.sum()) == 90
    assert int(np.count_nonzero(slots == len(ref.categories) + 1)) == 110
    counts = category_counts(values, ref)
    assert int(counts.sum()) == 4910
    expected = pd.Series(values[200:]).value_counts()
    for position, name in enumerate(ref.categories):
        assert int(counts[position]) == expected[name]


def test_folded_reference_categories_are_not_unseen() -> None:
    """A category folded into "other" at fit time counts in the other slot, not as unseen."""
    ref = fit_categorical(np.array(list("aaaabbbccd"), dtype=object), max_categories=2)
    counts = category_counts(np.array(list("abcdz"), dtype=object), ref)
    np.testing.assert_array_equal(counts, [1, 1, 2, 1])


def test_numeric_categories_match_across_int_and_float_logs() -> None:
    """A class label 1 fitted from ints matches 1.0 read from a float column."""
    ref = fit_categorical(np.array([0, 1, 1, 2]))
    counts = category_counts(np.array([1.0, 2.0, 0.0, 3.0, np.nan]), ref)
    np.testing.assert_array_equal(counts, [1, 1, 1, 0, 1])


def test_without_reference_only_missing_is_known() -> None:
    codes, distinct = pd.factorize(np.array(["a", None, " "], dtype=object), use_na_sentinel=True)
    slots, missing = category_slots(codes, np.asarray(distinct, dtype=object), None)
    assert slots.tolist() == [-1, -1, -1]
    assert missing.tolist() == [False, True, True]
