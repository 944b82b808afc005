"""Tests for exporter.stats.profile: chunks reduced to count arrays that add up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from exporter.stats.profile import (
    categorical_profile,
    empty_categorical_profile,
    empty_numeric_profile,
    empty_reconstruction_profile,
    merge,
    numeric_profile,
    psi_counts,
    quality_ratios,
    reconstruction_profile,
    split_numeric,
    valid_count,
)
from exporter.stats.reference import (
    fit_categorical,
    fit_multivariate,
    fit_numeric,
    reconstruction_errors,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _assert_same_profile(left: dict[str, np.ndarray], right: dict[str, np.ndarray]) -> None:
    assert left.keys() == right.keys()
    for key, value in left.items():
        assert value.dtype == right[key].dtype, key
        if value.dtype.kind == "f":
            np.testing.assert_allclose(value, right[key], rtol=1e-9, atol=1e-9, err_msg=key)
        else:
            np.testing.assert_array_equal(value, right[key], err_msg=key)


def test_numeric_quality_counts_are_exact(rng: np.random.Generator) -> None:
    """Injected missing, invalid, infinite and out-of-range values are each counted exactly."""
    ref = fit_numeric(rng.uniform(0, 100, 20_000))
    values = rng.uniform(ref.min, ref.max, 5000)
    invalid = np.zeros(5000, dtype=bool)
    values[:150] = np.nan  # missing
    invalid[150:190] = True  # text in a numeric column
    values[150:190] = np.nan
    values[190:200] = np.inf  # non-finite counts as invalid
    values[200:230] = -5.0  # below the reference min
    values[230:300] = 250.0  # above the reference max
    profile = numeric_profile(values, invalid, ref)
    assert int(profile["count"]) == 5000
    assert int(profile["missing"]) == 150
    assert int(profile["invalid"]) == 50
    assert int(profile["out_of_range"]) == 100
    assert valid_count(profile) == 4800
    assert int(profile["fine_counts"].sum()) == 4800
    assert int(profile["fine_counts"][0]) == 30
    assert int(profile["fine_counts"][-1]) == 70
    assert profile["fine_offsets"][0] == pytest.approx(30 * (ref.min + 5.0))
    assert profile["fine_offsets"][-1] == pytest.approx(70 * (250.0 - ref.max))
    assert quality_ratios(profile) == {
        "missing": 150 / 5000,
        "invalid": 50 / 5000,
        "out_of_range": 100 / 5000,
    }


def test_configured_bounds_replace_the_reference_range_per_side(
    rng: np.random.Generator,
) -> None:
    """A configured min replaces the reference min; the max falls back to the reference."""
    ref = fit_numeric(rng.uniform(10, 20, 1000))
    values = np.array([-1.0, 0.0, 5.0, 15.0, ref.max, ref.max + 1, np.nan])
    assert int(numeric_profile(values, None, ref, min_value=0.0)["out_of_range"]) == 2
    assert int(numeric_profile(values, None, ref)["out_of_range"]) == 4
    assert int(numeric_profile(values, None, ref, 0.0, 100.0)["out_of_range"]) == 1
    assert int(numeric_profile(values, None, None, min_value=0.0)["out_of_range"]) == 1
    assert int(numeric_profile(values, None, None)["out_of_range"]) == 0


def test_numeric_profile_without_reference_has_quality_counts_only() -> None:
    """Before a reference exists a numeric profile still counts rows, missing and invalid."""
    profile = numeric_profile(np.array([1.0, np.nan, 3.0]), np.array([False, False, True]), None)
    assert set(profile) == {"count", "missing", "invalid", "out_of_range"}
    assert (int(profile["count"]), int(profile["missing"]), int(profile["invalid"])) == (3, 1, 1)


def test_categorical_quality_counts_are_exact(rng: np.random.Generator) -> None:
    """Missing (None, NaN, empty, blank) and unseen categories are counted exactly."""
    ref = fit_categorical(rng.choice(np.array(["basic", "pro", "team"], dtype=object), 20_000))
    values = rng.choice(np.array(["basic", "pro", "team"], dtype=object), 5000)
    values[:40] = None
    values[40:60] = np.nan
    values[60:80] = ""
    values[80:90] = "   "
    values[90:190] = "enterprise"  # unseen
    values[190:200] = "free"  # unseen
    profile = categorical_profile(values, ref)
    assert int(profile["count"]) == 5000
    assert int(profile["missing"]) == 90
    assert int(profile["counts"][-1]) == 110
    assert int(profile["counts"].sum()) == 4910
    expected = pd.Series(values[200:]).value_counts()
    for position, name in enumerate(ref.categories):
        assert int(profile["counts"][position]) == expected[name]
    assert quality_ratios(profile) == {"missing": 90 / 5000, "unseen_category": 110 / 5000}


def test_folded_reference_categories_are_not_unseen() -> None:
    """A category folded into "other" at fit time counts in the other slot, not as unseen."""
    ref = fit_categorical(np.array(list("aaaabbbccd"), dtype=object), max_categories=2)
    profile = categorical_profile(np.array(list("abcdz"), dtype=object), ref)
    np.testing.assert_array_equal(profile["counts"], [1, 1, 2, 1])


def test_numeric_categories_match_across_int_and_float_logs() -> None:
    """A class label 1 fitted from ints matches 1.0 read from a float column."""
    ref = fit_categorical(np.array([0, 1, 1, 2]))
    profile = categorical_profile(np.array([1.0, 2.0, 0.0, 3.0, np.nan]), ref)
    np.testing.assert_array_equal(profile["counts"], [1, 1, 1, 0, 1])
    assert int(profile["missing"]) == 1


def test_merge_of_chunk_profiles_equals_profile_of_the_whole(rng: np.random.Generator) -> None:
    """Profiles add up: the sum over chunks is the profile of the concatenated chunks."""
    num_ref = fit_numeric(rng.gamma(2.0, size=20_000))
    cat_ref = fit_categorical(rng.choice(np.array(list("abcd"), dtype=object), 5000))
    values = rng.gamma(2.2, size=9000)
    values[::17] = np.nan
    invalid = rng.random(9000) < 0.01
    labels = rng.choice(np.array(list("abcdex"), dtype=object), 9000)
    numeric_total = empty_numeric_profile(num_ref)
    categorical_total = empty_categorical_profile(cat_ref)
    for chunk in np.array_split(np.arange(9000), 7):
        numeric_total = merge(
            numeric_total, numeric_profile(values[chunk], invalid[chunk], num_ref)
        )
        categorical_total = merge(categorical_total, categorical_profile(labels[chunk], cat_ref))
    _assert_same_profile(numeric_total, numeric_profile(values, invalid, num_ref))
    _assert_same_profile(categorical_total, categorical_profile(labels, cat_ref))


def test_empty_profiles_have_the_shapes_of_real_ones(rng: np.random.Generator) -> None:
    """An empty profile is the identity of merge and has every key with the same shape."""
    num_ref = fit_numeric(rng.normal(size=1000))
    real = numeric_profile(rng.normal(size=10), None, num_ref)
    _assert_same_profile(merge(empty_numeric_profile(num_ref), real), real)
    assert quality_ratios(empty_numeric_profile(num_ref)) == {}
    assert valid_count(empty_categorical_profile(None)) == 0


def test_merge_refuses_profiles_of_different_references(rng: np.random.Generator) -> None:
    """Profiles binned on different grids cannot be added."""
    small = fit_numeric(rng.normal(size=1000), fine_bins=10)
    large = fit_numeric(rng.normal(size=1000), fine_bins=100)
    with pytest.raises(ValueError, match="shapes"):
        merge(empty_numeric_profile(small), empty_numeric_profile(large))
    with pytest.raises(ValueError, match="keys"):
        merge(empty_numeric_profile(small), empty_numeric_profile(None))


def test_psi_counts_from_fine_slots_equal_direct_binning(rng: np.random.Generator) -> None:
    """PSI bins summed from the fine slots count the same as binning on the PSI edges."""
    for values, current in (
        (rng.normal(size=20_000), rng.normal(0.3, 1.2, 5000)),
        (rng.poisson(3, 20_000).astype(float), rng.poisson(4, 5000).astype(float)),
    ):
        ref = fit_numeric(values)
        direct = np.bincount(
            np.searchsorted(ref.psi_edges, current, side="left"), minlength=len(ref.psi_edges) + 1
        )
        np.testing.assert_array_equal(psi_counts(ref, numeric_profile(current, None, ref)), direct)


def test_reconstruction_profile_sums_row_errors(rng: np.random.Generator) -> None:
    """The multivariate profile is a row count and a sum of reconstruction errors."""
    frame = pd.DataFrame(rng.normal(size=(1000, 3)), columns=["a", "b", "c"])
    ref = fit_multivariate(frame)
    chunk = rng.normal(size=(50, 3))
    profile = merge(empty_reconstruction_profile(), reconstruction_profile(ref, chunk))
    assert int(profile["count"]) == 50
    assert float(profile["error_sum"]) == pytest.approx(reconstruction_errors(ref, chunk).sum())


def test_split_numeric_separates_missing_from_invalid() -> None:
    """Blank, None and NaN are missing; text that is not a number is invalid."""
    raw = np.array(["1", " 2.5 ", "", "  ", None, np.nan, "abc", 3, "1e3"], dtype=object)
    values, invalid = split_numeric(raw)
    np.testing.assert_array_equal(values[[0, 1, 7, 8]], [1.0, 2.5, 3.0, 1000.0])
    assert np.isnan(values[[2, 3, 4, 5, 6]]).all()
    assert invalid.tolist() == [False, False, False, False, False, False, True, False, False]
    profile = numeric_profile(values, invalid, None)
    assert (int(profile["missing"]), int(profile["invalid"])) == (4, 1)
