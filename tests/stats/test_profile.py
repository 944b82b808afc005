"""Tests for exporter.stats.profile: numeric parsing and reading a window's counts."""

from __future__ import annotations

import numpy as np
import pytest

from exporter.stats.fine_grid import fine_histogram
from exporter.stats.fit import fit_numeric
from exporter.stats.profile import (
    BinnedCounts,
    CategoricalProfile,
    FeatureCounts,
    MultivariateCounts,
    NumericProfile,
    psi_counts,
    split_numeric,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


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
        counts, _ = fine_histogram(ref.fine_edges, current, ref.cell_index)
        np.testing.assert_array_equal(psi_counts(ref, counts), direct)


def test_split_numeric_separates_missing_from_invalid() -> None:
    """Blank, None and NaN are missing; text that is not a number is invalid."""
    raw = np.array(["1", " 2.5 ", "", "  ", None, np.nan, "abc", 3, "1e3"], dtype=object)
    values, invalid = split_numeric(raw)
    np.testing.assert_array_equal(values[[0, 1, 7, 8]], [1.0, 2.5, 3.0, 1000.0])
    assert np.isnan(values[[2, 3, 4, 5, 6]]).all()
    assert invalid.tolist() == [False, False, False, False, False, False, True, False, False]


def bucket_counts(scale: int) -> FeatureCounts:
    binned = BinnedCounts(
        np.arange(5) * scale,
        np.full(3, 0.5 * scale),
        CategoricalProfile(np.array([scale, 0, 1])),
        MultivariateCounts(scale, 0.25 * scale),
    )
    return FeatureCounts(scale, {"key": np.full((2, 4), scale)}, {"tag": binned})


def test_feature_counts_add_up_without_sharing_and_round_trip() -> None:
    """Adding into empty counts copies (the source is never changed later), adding again
    sums every array, and ``from_state(state())`` gives the same counts back."""
    one, two = bucket_counts(1), bucket_counts(2)
    total = FeatureCounts()
    total.add(one)
    total.add(two)
    assert one.data_quality["key"].tolist() == np.full((2, 4), 1).tolist()
    assert one.binned["tag"].slots.tolist() == [0, 1, 2, 3, 4]  # type: ignore[union-attr]
    assert total.rows == 3
    np.testing.assert_array_equal(total.data_quality["key"], np.full((2, 4), 3))
    binned = total.binned["tag"]
    np.testing.assert_array_equal(binned.slots, np.arange(5) * 3)  # type: ignore[arg-type]
    np.testing.assert_array_equal(binned.opens, np.full(3, 1.5))  # type: ignore[arg-type]
    assert isinstance(binned.outcome, CategoricalProfile)
    assert binned.outcome.counts.tolist() == [3, 0, 2]
    assert binned.multivariate is not None
    assert (binned.multivariate.count, binned.multivariate.error_sum) == (3, 0.75)
    again = FeatureCounts.from_state(total.state())
    assert again.rows == 3
    np.testing.assert_array_equal(again.data_quality["key"], total.data_quality["key"])
    assert again.binned["tag"].state().keys() == binned.state().keys()
    np.testing.assert_array_equal(again.binned["tag"].slots, binned.slots)  # type: ignore[arg-type]


def test_a_numeric_profile_counts_its_binned_values() -> None:
    profile = NumericProfile(np.array([1, 0, 2, 3, 0]), np.zeros(3))
    profile.add(NumericProfile(np.array([0, 1, 0, 0, 1]), np.ones(3)))
    assert profile.count == 8
    assert profile.fine_offsets.tolist() == [1.0, 1.0, 1.0]
