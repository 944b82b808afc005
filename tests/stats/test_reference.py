"""Tests for what is fitted once from reference data: exporter.stats.fine_grid, fit,
reference_csv, multivariate, and reference (the JSON form)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from exporter.stats.fine_grid import CellIndex, fine_histogram
from exporter.stats.fit import category_strings, fit_categorical, fit_numeric
from exporter.stats.multivariate import fit_multivariate, reconstruction_errors
from exporter.stats.reference import reference_from_dict, reference_to_dict
from exporter.stats.reference_csv import infer_feature_type


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240601)


def test_psi_edges_are_the_reference_deciles(rng: np.random.Generator) -> None:
    """For continuous data the PSI edges are numpy's deciles and each bin holds 10%."""
    values = rng.normal(3.0, 2.0, 20_000)
    ref = fit_numeric(values)
    np.testing.assert_array_equal(ref.psi_edges, np.quantile(values, np.arange(1, 10) / 10))
    np.testing.assert_allclose(ref.psi_proportions, np.full(10, 0.1), atol=1e-4)
    assert ref.psi_proportions.sum() == pytest.approx(1.0)


def test_summary_statistics_ignore_missing_and_infinite_values(rng: np.random.Generator) -> None:
    """NaN and +-inf are not reference values; min, max, mean, std (ddof 0) and n skip them."""
    values = rng.normal(size=1000)
    noisy = np.concatenate([values, [np.nan, np.inf, -np.inf]])
    ref = fit_numeric(noisy)
    assert ref.n == 1000
    assert (ref.min, ref.max) == (values.min(), values.max())
    assert ref.mean == pytest.approx(values.mean())
    assert ref.std == pytest.approx(values.std())
    assert ref.fine_counts.sum() == 1000


def test_fine_grid_spans_the_reference_and_contains_the_psi_edges(
    rng: np.random.Generator,
) -> None:
    """The fine grid starts at the min, ends at the max and includes every PSI edge."""
    ref = fit_numeric(rng.lognormal(size=20_000))
    grid = ref.fine_edges
    assert grid[0] == ref.min
    assert grid[-1] == ref.max
    assert np.all(np.diff(grid) > 0)
    assert np.isin(ref.psi_edges, grid).all()
    assert len(grid) <= 1000 + 1 + len(ref.psi_edges)
    assert ref.fine_counts[0] == ref.fine_counts[-1] == 0
    assert ref.fine_counts.shape == (2 * len(grid) + 1,)
    assert ref.fine_offsets.shape == (len(grid) + 1,)


def test_ks_error_bound_is_at_most_two_over_fine_bins(rng: np.random.Generator) -> None:
    """Half the grid is probability quantiles, so an open fine bin holds <= 2/fine_bins."""
    for fine_bins in (100, 1000):
        ref = fit_numeric(rng.normal(size=20_000), fine_bins=fine_bins)
        assert 0 < ref.ks_error_bound <= 2 / fine_bins


def test_discrete_feature_keeps_every_distinct_value_on_the_grid(
    rng: np.random.Generator,
) -> None:
    """With few distinct values every one is a grid point: binned KS is then exact."""
    values = rng.poisson(4, 20_000).astype(float)
    ref = fit_numeric(values)
    np.testing.assert_array_equal(ref.fine_edges, np.unique(values))
    assert ref.ks_error_bound == 0.0
    np.testing.assert_array_equal(ref.fine_counts[1::2], np.unique(values, return_counts=True)[1])


def test_psi_edges_never_leave_a_bin_empty_in_the_reference() -> None:
    """Tied deciles are merged and an edge at the maximum is dropped (its bin would be empty)."""
    binary = np.array([0.0] * 700 + [1.0] * 300)
    ref = fit_numeric(binary)
    np.testing.assert_array_equal(ref.psi_edges, [0.0])
    np.testing.assert_allclose(ref.psi_proportions, [0.7, 0.3])
    four = np.repeat([0.0, 1.0, 2.0, 3.0], 250)
    ref = fit_numeric(four)
    assert np.all(ref.psi_proportions > 0)
    assert ref.psi_proportions.size == 4


def test_constant_feature_has_one_psi_bin_and_a_floored_std() -> None:
    """A constant feature fits; its Wasserstein divisor is the 0.001 floor."""
    ref = fit_numeric(np.full(500, 7.0))
    assert ref.psi_edges.size == 0
    np.testing.assert_array_equal(ref.psi_proportions, [1.0])
    assert ref.std == 0.0
    assert ref.std_norm == 0.001


def test_fit_numeric_rejects_data_without_finite_values() -> None:
    """A reference column with nothing finite in it is an error, not a silent empty fit."""
    with pytest.raises(ValueError, match="no finite"):
        fit_numeric(np.array([np.nan, np.inf]))


@pytest.mark.parametrize(
    "make",
    [
        lambda rng, n: rng.normal(size=n),
        lambda rng, n: rng.standard_cauchy(n),
        lambda rng, n: rng.lognormal(0, 2, n),
        lambda rng, n: rng.poisson(2000, n).astype(float),
        lambda rng, n: np.where(rng.random(n) < 0.3, rng.normal(-50, 0.1, n), rng.normal(3, 1, n)),
    ],
    ids=["normal", "cauchy", "lognormal-sigma2", "integer-wide", "far-bimodal"],
)
@pytest.mark.parametrize("fine_bins", [250, 1000])
def test_cell_index_gives_exactly_searchsorted_positions(
    make, fine_bins: int, rng: np.random.Generator, request: pytest.FixtureRequest
) -> None:
    """The lookup-table search returns what np.searchsorted(side="right") returns, with
    cells spanning the whole grid (light tails, 250 points) or its central range."""
    ref = fit_numeric(make(rng, 20_000), fine_bins=fine_bins)
    index = ref.cell_index
    assert isinstance(index, CellIndex)
    shape = request.node.callspec.id.split("-", 1)[1]  # "<fine_bins>-<shape id>"
    if fine_bins == 250 and shape in ("normal", "integer-wide"):
        assert index.covers_grid
    if shape in ("cauchy", "lognormal-sigma2"):
        assert not index.covers_grid
    grid = ref.fine_edges
    # the cells' own boundaries and every grid point, each exactly and one ulp either side
    boundaries = index.low + np.arange(-2, index.cells + 3) / index.inverse_width
    edges = np.concatenate([grid, boundaries])
    values = np.concatenate(
        [
            make(rng, 50_000) * 1.5,
            edges,
            np.nextafter(edges, -np.inf),
            np.nextafter(edges, np.inf),
            [ref.min - 1, ref.max + 1, -1e300, 1e300],
        ]
    )
    expected = np.searchsorted(grid, values, side="right")
    np.testing.assert_array_equal(index.right_positions(values), expected)


def test_fine_histogram_counts_points_apart_from_open_bins() -> None:
    """Values on a grid point, between points, and outside land in their own slots."""
    grid = np.array([0.0, 1.0, 2.0])
    values = np.array([-0.5, 0.0, 0.25, 0.75, 1.0, 1.0, 1.5, 2.0, 3.5])
    counts, offsets = fine_histogram(grid, values)
    #              below, 0, (0,1), 1, (1,2), 2, above
    np.testing.assert_array_equal(counts, [1, 1, 2, 2, 1, 1, 1])
    np.testing.assert_allclose(offsets, [0.5, 1.0, 0.5, 1.5])


def test_category_strings_normalizes_missing_and_numbers() -> None:
    """None, NaN, empty and blank are missing; integral floats print as integers."""
    text, missing = category_strings(np.array(["a", None, "", "  ", np.nan, " b "], dtype=object))
    np.testing.assert_array_equal(missing, [False, True, True, True, True, False])
    assert text[0] == "a"
    assert text[5] == "b"
    text, missing = category_strings(np.array([1.0, 2.5, np.nan]))
    assert list(text[:2]) == ["1", "2.5"]
    assert missing.tolist() == [False, False, True]


def test_fit_categorical_orders_by_frequency_and_ignores_missing() -> None:
    """Categories come most frequent first (ties by name) with their counts; missing is skipped."""
    values = np.array(["b", "a", "b", "c", "a", "b", None, "", np.nan], dtype=object)
    ref = fit_categorical(values)
    assert ref.categories == ("b", "a", "c")
    np.testing.assert_array_equal(ref.counts, [3, 2, 1, 0])
    assert ref.n == 6
    assert ref.other_categories == frozenset()


def test_fit_categorical_folds_rare_categories_into_other() -> None:
    """Beyond max_categories the rarest share one slot and stay known (not unseen)."""
    values = np.array(list("aaaabbbccd"), dtype=object)
    ref = fit_categorical(values, max_categories=2)
    assert ref.categories == ("a", "b")
    np.testing.assert_array_equal(ref.counts, [4, 3, 3])
    assert ref.other_categories == frozenset({"c", "d"})
    np.testing.assert_allclose(ref.proportions_with_unseen, [0.4, 0.3, 0.3, 0.0])


@pytest.mark.parametrize(
    ("series", "expected"),
    [
        (pd.Series([1.5, 2.0, None]), "numeric"),
        (pd.Series([1, 2, 3]), "numeric"),
        (pd.Series(["1", "2.5", "3"] * 40 + ["n/a"]), "numeric"),
        (pd.Series(["1", "x", "y"]), "categorical"),
        (pd.Series([True, False]), "categorical"),
        (pd.Series(["basic", "pro"]), "categorical"),
        (pd.Series([None, None], dtype=object), "categorical"),
    ],
)
def test_infer_feature_type(series: pd.Series, expected: str) -> None:
    """Numbers (even as text with a few stray strings) are numeric; the rest categorical."""
    assert infer_feature_type(series) == expected


def _correlated(rng: np.random.Generator, rows: int, rho: float) -> pd.DataFrame:
    x = rng.normal(size=rows)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=rows)
    return pd.DataFrame({"x": 10 + 2 * x, "y": 5 * y - 3, "z": rng.normal(size=rows)})


def test_fit_multivariate_keeps_fewer_components_than_features(rng: np.random.Generator) -> None:
    """PCA keeps 90% of the variance but always leaves at least one axis out."""
    ref = fit_multivariate(_correlated(rng, 5000, 0.9))
    assert ref.features == ("x", "y", "z")
    assert 1 <= ref.explained_components < 3
    two = fit_multivariate(_correlated(rng, 5000, 0.0)[["x", "z"]])
    assert two.explained_components == 1


def test_threshold_is_mean_plus_three_std_of_the_reference_errors(
    rng: np.random.Generator,
) -> None:
    """The threshold comes from the reference rows' own reconstruction errors."""
    frame = _correlated(rng, 5000, 0.8)
    ref = fit_multivariate(frame)
    errors = reconstruction_errors(ref, frame)
    assert ref.threshold == pytest.approx(errors.mean() + 3 * errors.std())


def test_reconstruction_errors_impute_the_reference_mean(rng: np.random.Generator) -> None:
    """A missing value counts as the reference mean; a DataFrame is matched by column name."""
    frame = _correlated(rng, 2000, 0.8)
    ref = fit_multivariate(frame)
    row = np.array([[12.0, np.nan, 0.5]])
    filled = np.array([[12.0, ref.mean[1], 0.5]])
    assert reconstruction_errors(ref, row)[0] == pytest.approx(
        reconstruction_errors(ref, filled)[0]
    )
    shuffled = frame[["z", "x", "y"]].iloc[:10]
    np.testing.assert_allclose(
        reconstruction_errors(ref, shuffled), reconstruction_errors(ref, frame.iloc[:10].to_numpy())
    )


@pytest.mark.parametrize("rho", [0.0, 0.5, 0.99])
@pytest.mark.parametrize("features", [3, 8])
def test_reconstruction_errors_equal_an_explicit_reconstruction(
    rng: np.random.Generator, rho: float, features: int
) -> None:
    """Whichever of the kept axes or their complement is used (the smaller), the error is
    the mean squared difference between a row and its reconstruction."""
    base = rng.normal(size=4000)
    frame = pd.DataFrame(
        {
            f"f{i}": 3 * i + (i + 1) * (rho * base + np.sqrt(1 - rho**2) * rng.normal(size=4000))
            for i in range(features)
        }
    )
    ref = fit_multivariate(frame)
    assert ref.complement.shape == (features - ref.explained_components, features)
    rows = frame.iloc[:500].to_numpy() + rng.normal(scale=0.5, size=(500, features))
    z = (rows - ref.mean) / ref.scale - ref.pca_mean
    rebuilt = z @ ref.components.T @ ref.components
    expected = ((z - rebuilt) ** 2).mean(axis=1)
    np.testing.assert_allclose(reconstruction_errors(ref, rows), expected, rtol=1e-9, atol=1e-12)


def test_fit_multivariate_needs_two_features(rng: np.random.Generator) -> None:
    """One numeric feature has no relationship to watch."""
    with pytest.raises(ValueError, match="at least 2"):
        fit_multivariate(pd.DataFrame({"x": rng.normal(size=100)}))


def test_references_round_trip_through_json(rng: np.random.Generator) -> None:
    """A fitted reference survives JSON (a from_stream fit can be checkpointed)."""
    numeric = fit_numeric(rng.normal(size=2000))
    categorical = fit_categorical(np.array(list("aabbbcd"), dtype=object), max_categories=2)
    multivariate = fit_multivariate(_correlated(rng, 500, 0.5))
    for ref in (numeric, categorical, multivariate):
        copy = reference_from_dict(json.loads(json.dumps(reference_to_dict(ref))))
        assert type(copy) is type(ref)
        for name, value in vars(ref).items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(getattr(copy, name), value)
                assert getattr(copy, name).dtype == value.dtype
            elif not name.startswith("_") and name in reference_to_dict(ref):
                assert getattr(copy, name) == value
    copy = reference_from_dict(reference_to_dict(numeric))
    values = rng.normal(size=100)
    np.testing.assert_array_equal(
        fine_histogram(copy.fine_edges, values)[0], fine_histogram(numeric.fine_edges, values)[0]
    )
