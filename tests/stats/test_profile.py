"""Tests for exporter.stats.profile: numeric parsing and reading a window's counts."""

from __future__ import annotations

import numpy as np
import pytest

from exporter.stats.fine_grid import fine_histogram
from exporter.stats.fit import fit_numeric
from exporter.stats.profile import psi_counts, split_numeric, valid_count


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
        np.testing.assert_array_equal(psi_counts(ref, {"fine_counts": counts}), direct)


def test_split_numeric_separates_missing_from_invalid() -> None:
    """Blank, None and NaN are missing; text that is not a number is invalid."""
    raw = np.array(["1", " 2.5 ", "", "  ", None, np.nan, "abc", 3, "1e3"], dtype=object)
    values, invalid = split_numeric(raw)
    np.testing.assert_array_equal(values[[0, 1, 7, 8]], [1.0, 2.5, 3.0, 1000.0])
    assert np.isnan(values[[2, 3, 4, 5, 6]]).all()
    assert invalid.tolist() == [False, False, False, False, False, False, True, False, False]


def test_valid_count_leaves_out_missing_and_invalid_rows() -> None:
    assert valid_count({"count": np.int64(10), "missing": np.int64(2), "invalid": np.int64(3)}) == 5
    assert valid_count({"count": np.int64(10), "missing": np.int64(2)}) == 8
