"""Tests for exporter.stats.drift: binned statistics against scipy on the same data.

Errors measured with these functions against scipy (reference 20,000 rows; windows of
5,000 and 50,000 rows; 6 seeds; shifts of 0, 0.03, 0.1, 0.3 and 1 scale units), the
largest over all runs: KS statistic 0.0013 absolute (bound 0.002), normed Wasserstein
0.33% relative, across normal, lognormal, uniform, bimodal, integer-valued (exact),
wide integer, lognormal sigma=2, Pareto(1.5), Cauchy, and a window far outside the
reference range. `test_binned_statistics_error_over_distributions` keeps a seeded
subset of that measurement as a regression test.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from exporter.config import DEFAULT_DRIFT_THRESHOLDS
from exporter.monitor.encoding import category_counts
from exporter.stats.drift import (
    chisquare_from_counts,
    choose_method,
    feature_drift,
    jensenshannon_from_counts,
    ks_from_counts,
    multivariate_drift,
    psi,
    wasserstein_from_counts,
)
from exporter.stats.fine_grid import fine_histogram
from exporter.stats.fit import fit_categorical, fit_numeric
from exporter.stats.multivariate import (
    MultivariateReference,
    fit_multivariate,
    reconstruction_errors,
)
from exporter.stats.profile import (
    CategoricalProfile,
    MultivariateCounts,
    NumericProfile,
    psi_counts,
)
from exporter.stats.reference import CategoricalReference, NumericReference

REFERENCE_ROWS = 20_000
WINDOW_ROWS = 5000
PLANS = np.array(["basic", "pro", "team", "enterprise"], dtype=object)

Data = dict[str, np.ndarray]


def make_rows(rng: np.random.Generator, rows: int, drifted: bool) -> Data:
    """Features of a credit model; with `drifted`, the ones named drift_* change."""
    shift = 1.0 if drifted else 0.0
    mix = rng.random(rows) < 0.3
    return {
        "age": rng.normal(40, 10, rows),
        "score": rng.uniform(0, 1, rows),
        "balance": np.where(mix, rng.normal(-2, 0.5, rows), rng.normal(2, 1, rows)),
        "children": rng.poisson(1.5, rows).astype(float),
        "plan": rng.choice(PLANS, rows, p=[0.4, 0.3, 0.2, 0.1]),
        "drift_income": rng.lognormal(10 + 0.5 * shift, 1, rows),
        "drift_tenure": rng.poisson(5 + 3 * shift, rows).astype(float),
        "drift_region": rng.choice(
            np.array(["north", "south", "east", "west"], dtype=object),
            rows,
            p=[0.55, 0.15, 0.15, 0.15] if drifted else [0.25] * 4,
        ),
    }


CATEGORICAL = frozenset({"plan", "drift_region"})
DRIFTED = frozenset({"drift_income", "drift_tenure", "drift_region"})


def fit(values: np.ndarray, name: str) -> NumericReference | CategoricalReference:
    return fit_categorical(values) if name in CATEGORICAL else fit_numeric(values)


def numeric_profile(values: np.ndarray, ref: NumericReference) -> NumericProfile:
    """A window's profile of these values (NaN and +-inf are not binned)."""
    array = np.asarray(values, dtype=np.float64)
    finite = array[np.isfinite(array)]
    return NumericProfile(*fine_histogram(ref.fine_edges, finite, ref.cell_index))


def categorical_profile(values: np.ndarray, ref: CategoricalReference) -> CategoricalProfile:
    return CategoricalProfile(category_counts(values, ref))


def reconstruction_profile(ref: MultivariateReference, frame: pd.DataFrame) -> MultivariateCounts:
    errors = reconstruction_errors(ref, frame)
    return MultivariateCounts(errors.size, float(errors.sum()))


def profile_of(values: np.ndarray, ref: NumericReference | CategoricalReference):
    if isinstance(ref, CategoricalReference):
        return categorical_profile(values, ref)
    return numeric_profile(values, ref)


@pytest.fixture(scope="module")
def reference() -> Data:
    return make_rows(np.random.default_rng(11), REFERENCE_ROWS, drifted=False)


@pytest.fixture(scope="module")
def window() -> Data:
    return make_rows(np.random.default_rng(12), WINDOW_ROWS, drifted=True)


@pytest.fixture(scope="module")
def fitted(reference: Data) -> dict[str, NumericReference | CategoricalReference]:
    return {name: fit(values, name) for name, values in reference.items()}


NUMERIC = ("age", "score", "balance", "children", "drift_income", "drift_tenure")


@pytest.mark.parametrize("name", NUMERIC)
def test_ks_matches_scipy(name: str, reference: Data, window: Data, fitted) -> None:
    """Binned KS is within 0.01 of ks_2samp (below it, by at most the bound), same decision."""
    ref = fitted[name]
    statistic, pvalue = ks_from_counts(ref, numeric_profile(window[name], ref))
    exact = stats.ks_2samp(reference[name], window[name])
    assert abs(statistic - exact.statistic) <= 0.01
    assert exact.statistic - ref.ks_error_bound - 1e-12 <= statistic <= exact.statistic + 1e-12
    assert (pvalue < 0.05) == (exact.pvalue < 0.05)


@pytest.mark.parametrize("name", NUMERIC)
def test_wasserstein_matches_scipy(name: str, reference: Data, window: Data, fitted) -> None:
    """Normed Wasserstein is within 5% of scipy's distance divided by the reference std."""
    ref = fitted[name]
    binned = wasserstein_from_counts(ref, numeric_profile(window[name], ref))
    exact = stats.wasserstein_distance(reference[name], window[name]) / np.std(reference[name])
    assert binned == pytest.approx(exact, rel=0.05)


@pytest.mark.parametrize("name", NUMERIC)
def test_psi_equals_a_decile_computation(name: str, reference: Data, window: Data, fitted) -> None:
    """PSI equals deciles of the reference, right-closed bins, proportions floored at 1e-4."""
    ref_values, cur_values = reference[name], window[name]
    edges = np.unique(np.quantile(ref_values, np.arange(1, 10) / 10))
    if name not in ("children", "drift_tenure"):  # ties: the edges differ, tested below
        np.testing.assert_array_equal(edges, fitted[name].psi_edges)
    edges = fitted[name].psi_edges
    ref_props = np.bincount(np.searchsorted(edges, ref_values), minlength=edges.size + 1)
    cur_props = np.bincount(np.searchsorted(edges, cur_values), minlength=edges.size + 1)
    ref_props = np.maximum(ref_props / ref_props.sum(), 1e-4)
    cur_props = np.maximum(cur_props / cur_props.sum(), 1e-4)
    expected = np.sum((cur_props - ref_props) * np.log(cur_props / ref_props))
    ref = fitted[name]
    counts = psi_counts(ref, numeric_profile(cur_values, ref).fine_counts)
    assert psi(ref.psi_proportions, counts) == pytest.approx(expected, abs=1e-9)


def test_psi_floors_empty_bins_at_1e4() -> None:
    """An empty bin on either side counts as a 1e-4 share."""
    ref_props = np.array([0.5, 0.5, 0.0])
    cur = np.array([50, 0, 50])
    expected = (
        (0.5 - 0.5) * 0 + (1e-4 - 0.5) * np.log(1e-4 / 0.5) + (0.5 - 1e-4) * np.log(0.5 / 1e-4)
    )
    assert psi(ref_props, cur) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("name", ["plan", "drift_region"])
def test_jensenshannon_and_chisquare_match_scipy(
    name: str, reference: Data, window: Data, fitted
) -> None:
    """Category JS distance and chi-square equal scipy's to 1e-6."""
    ref = fitted[name]
    profile = categorical_profile(window[name], ref)
    names = sorted(set(reference[name]))
    ref_counts = pd.Series(reference[name]).value_counts().reindex(names).to_numpy()
    cur_counts = pd.Series(window[name]).value_counts().reindex(names, fill_value=0).to_numpy()
    ours_js = jensenshannon_from_counts(np.append(ref.counts, 0), profile.counts)
    assert ours_js == pytest.approx(jensenshannon(ref_counts, cur_counts), abs=1e-6)
    expected = stats.chi2_contingency([ref_counts, cur_counts], correction=False)
    statistic, pvalue = chisquare_from_counts(np.append(ref.counts, 0), profile.counts)
    assert statistic == pytest.approx(expected.statistic, abs=1e-6)
    assert pvalue == pytest.approx(expected.pvalue, abs=1e-6)


def test_unseen_categories_in_jensenshannon_and_chisquare() -> None:
    """JS with one "unseen" slot equals scipy over every new category; chi-square equals
    scipy's contingency test with the new categories as one column, finite, and drifts."""
    rng = np.random.default_rng(3)
    ref = fit_categorical(rng.choice(PLANS, 2000))
    current = rng.choice(np.append(PLANS, ["free", "trial"]).astype(object), 1000)
    profile = categorical_profile(current, ref)
    names = [*PLANS, "free", "trial"]
    ref_counts = [*(int(ref.counts[ref.categories.index(n)]) for n in PLANS), 0, 0]
    cur_counts = pd.Series(current).value_counts().reindex(names, fill_value=0).to_numpy()
    assert jensenshannon_from_counts(np.append(ref.counts, 0), profile.counts) == pytest.approx(
        jensenshannon(ref_counts, cur_counts), abs=1e-9
    )
    unseen = cur_counts[-2:].sum()
    table = [[*ref_counts[:-2], 0], [*cur_counts[:-2], unseen]]
    expected = stats.chi2_contingency(table, correction=False)
    statistic, pvalue = chisquare_from_counts(np.append(ref.counts, 0), profile.counts)
    assert np.isfinite(statistic)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    result = feature_drift(ref, profile, "chisquare")
    assert result is not None
    assert result.drifted


def random_table(rng: np.random.Generator, slots: int, drifted: bool) -> tuple[np.ndarray, ...]:
    """Reference and window counts over `slots` (>= 4) slots: the last one unseen (0 in the
    reference, 1 to 3 in the window), the one before it empty on both sides, the one before
    that absent from the window, and any other empty on one side or both by chance."""
    shares = rng.dirichlet(np.full(slots, 0.7))
    ref = rng.multinomial(int(rng.integers(50, 1000)), shares)
    window_shares = rng.dirichlet(50 * shares + 0.1) if drifted else shares
    cur = rng.multinomial(int(rng.integers(100, 5000)), window_shares)
    ref[-1], cur[-1] = 0, rng.integers(1, 4)
    ref[-2] = cur[-2] = 0
    ref[-3], cur[-3] = rng.integers(1, 4), 0
    return ref, cur


@pytest.mark.parametrize("seed", range(10))
def test_chisquare_is_scipys_contingency_test(seed: int) -> None:
    """Random 2 x k tables, with unseen and empty slots, give chi2_contingency's statistic
    and p-value; slots empty on both sides are no degree of freedom."""
    rng = np.random.default_rng(seed)
    ref, cur = random_table(rng, int(rng.integers(4, 40)), drifted=seed % 2 == 1)
    used = (ref + cur) > 0
    expected = stats.chi2_contingency(np.array([ref, cur])[:, used], correction=False)
    statistic, pvalue = chisquare_from_counts(ref, cur)
    assert statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert expected.dof == used.sum() - 1


def test_chisquare_of_a_single_slot_and_of_an_empty_side() -> None:
    """One non-empty slot is no test (statistic 0, p-value 1, as scipy); an empty side is an
    error, not a statistic."""
    assert chisquare_from_counts(np.array([0, 40, 0]), np.array([0, 300, 0])) == (0.0, 1.0)
    expected = stats.chi2_contingency([[40], [300]], correction=False)
    assert (expected.statistic, expected.pvalue) == (0.0, 1.0)
    with pytest.raises(ValueError, match="each side"):
        chisquare_from_counts(np.array([3, 4]), np.array([0, 0]))
    with pytest.raises(ValueError, match="each side"):
        chisquare_from_counts(np.array([0, 0]), np.array([3, 4]))


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_chisquare_is_the_contingency_test_over_psi_bins(
    name: str, reference: Data, window: Data
) -> None:
    """A numeric feature's chi-square tests the reference's own counts per PSI bin (not
    proportions) against the window's, as chi2_contingency on the raw values binned."""
    ref_values = reference[name][:700]
    ref = fit_numeric(ref_values)
    result = feature_drift(ref, numeric_profile(window[name], ref), "chisquare")
    assert result is not None
    edges = ref.psi_edges
    table = [
        np.bincount(np.searchsorted(edges, values), minlength=edges.size + 1)
        for values in (ref_values, window[name])
    ]
    expected = stats.chi2_contingency(table, correction=False)
    assert result.method_scores["chisquare"] == pytest.approx(expected.statistic, rel=1e-12)
    assert result.pvalues["chisquare"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def _drift_flags(reference: Data, window: Data, reference_rows: int) -> dict[str, tuple[str, bool]]:
    flags = {}
    for name, values in reference.items():
        ref = fit(values[:reference_rows], name)
        result = feature_drift(ref, profile_of(window[name], ref))
        assert result is not None
        flags[name] = (result.method, result.drifted)
    return flags


def test_auto_uses_wasserstein_and_jensenshannon_above_1000_rows(
    reference: Data, window: Data
) -> None:
    """With a 20,000-row reference, auto flags exactly the drifted features."""
    flags = _drift_flags(reference, window, REFERENCE_ROWS)
    for name, (method, _) in flags.items():
        assert method == ("jensenshannon" if name in CATEGORICAL else "wasserstein")
    assert {name for name, (_, drifted) in flags.items() if drifted} == DRIFTED
    for name, (_, drifted) in flags.items():
        if name in CATEGORICAL:
            continue
        exact = stats.wasserstein_distance(reference[name], window[name])
        assert drifted == (exact / np.std(reference[name]) >= 0.1)


def test_auto_uses_ks_and_chisquare_up_to_1000_rows(reference: Data, window: Data) -> None:
    """With an 800-row reference, auto uses KS / chi-square p < 0.05 and agrees with scipy."""
    flags = _drift_flags(reference, window, 800)
    for name, (method, drifted) in flags.items():
        ref_values, cur_values = reference[name][:800], window[name]
        if name in CATEGORICAL:
            assert method == "chisquare"
            names = sorted(set(ref_values))
            ref_counts = pd.Series(ref_values).value_counts().reindex(names).to_numpy()
            cur_counts = (
                pd.Series(cur_values).value_counts().reindex(names, fill_value=0).to_numpy()
            )
            expected_p = stats.chi2_contingency([ref_counts, cur_counts], correction=False).pvalue
        else:
            assert method == "ks"
            expected_p = stats.ks_2samp(ref_values, cur_values).pvalue
        assert drifted == (expected_p < 0.05), name
    assert {name for name, (_, drifted) in flags.items() if drifted} == DRIFTED


def test_auto_compares_the_reference_values_with_1000() -> None:
    """auto: the tests up to 1000 reference values, the distances above; a numeric-only
    method on categories gets auto's choice, and says so."""
    assert choose_method("auto", False, 1000) == ("ks", "auto: 1000 reference values <= 1000")
    assert choose_method("auto", False, 1001) == (
        "wasserstein",
        "auto: 1001 reference values > 1000",
    )
    assert choose_method("auto", True, 1000)[0] == "chisquare"
    assert choose_method("auto", True, 1001)[0] == "jensenshannon"
    assert choose_method("psi", True, 5) == ("psi", "")
    assert choose_method("ks", True, 5) == (
        "chisquare",
        "ks applies to numeric values only; auto's choice for categories",
    )
    assert choose_method("wasserstein", True, 5000)[0] == "jensenshannon"


def test_no_result_below_min_rows(fitted) -> None:
    """A window with fewer valid values than min_rows gets no drift result."""
    ref = fitted["age"]
    values = np.full(150, 40.0)
    values[60:] = np.nan
    assert feature_drift(ref, numeric_profile(values, ref)) is None
    assert feature_drift(ref, numeric_profile(values, ref), min_rows=50) is not None


@pytest.mark.parametrize(
    ("method", "threshold", "drifted"),
    [
        ("psi", 0.2, True),
        ("psi", 5.0, False),
        ("ks", 0.05, True),
        ("ks", 0.0, False),
        ("wasserstein", 0.1, True),
        ("wasserstein", 10.0, False),
        ("jensenshannon", 0.1, True),
        ("chisquare", 0.05, True),
    ],
)
def test_explicit_methods_use_their_thresholds(
    method: str, threshold: float, drifted: bool, fitted, window: Data
) -> None:
    """Each explicit method decides with its own threshold (p-value methods: p < threshold)."""
    ref = fitted["drift_tenure"]
    result = feature_drift(
        ref,
        numeric_profile(window["drift_tenure"], ref),
        method,
        thresholds={**DEFAULT_DRIFT_THRESHOLDS, method: threshold},
    )
    assert result is not None
    assert result.method == method
    assert result.drifted is drifted
    assert set(result.method_scores) == {"psi", "ks", "wasserstein", "jensenshannon", "chisquare"}
    assert set(result.pvalues) == {"ks", "chisquare"}


def test_unknown_methods_are_rejected_and_ks_on_categories_is_replaced(
    fitted, window: Data
) -> None:
    """An unknown method is an error; KS on categories decides by auto's choice."""
    num, cat = fitted["age"], fitted["plan"]
    with pytest.raises(ValueError, match="unknown drift method"):
        feature_drift(num, numeric_profile(window["age"], num), "kl")
    result = feature_drift(cat, categorical_profile(window["plan"], cat), "ks")
    assert result is not None
    assert result.method == "jensenshannon"  # a 20,000-row reference


def test_discrete_feature_with_many_ties() -> None:
    """Integer data: KS equals scipy exactly, Wasserstein within 5%, even off the support."""
    rng = np.random.default_rng(8)
    ref_values = rng.binomial(20, 0.3, REFERENCE_ROWS).astype(float)
    ref = fit_numeric(ref_values)
    for current in (
        rng.binomial(20, 0.3, WINDOW_ROWS).astype(float),
        rng.binomial(20, 0.35, WINDOW_ROWS).astype(float),
        rng.binomial(20, 0.3, WINDOW_ROWS) + 0.5,  # between the reference's values
    ):
        profile = numeric_profile(current, ref)
        exact = stats.ks_2samp(ref_values, current)
        statistic, pvalue = ks_from_counts(ref, profile)
        assert statistic == pytest.approx(exact.statistic, abs=1e-12)
        assert pvalue == pytest.approx(exact.pvalue, rel=1e-9, abs=3e-6)  # en = 4000
        expected = stats.wasserstein_distance(ref_values, current) / ref_values.std()
        assert wasserstein_from_counts(ref, profile) == pytest.approx(expected, rel=0.05)


def test_window_far_outside_the_reference_range() -> None:
    """Values beyond the reference min / max keep Wasserstein within 5% and KS close."""
    rng = np.random.default_rng(9)
    ref_values = rng.normal(0, 1, REFERENCE_ROWS)
    ref = fit_numeric(ref_values)
    for current in (
        rng.normal(50, 3, WINDOW_ROWS),
        rng.normal(-30, 10, WINDOW_ROWS),
        np.concatenate([rng.normal(0, 1, 4000), rng.uniform(100, 1000, 1000)]),
    ):
        profile = numeric_profile(current, ref)
        expected = stats.wasserstein_distance(ref_values, current) / ref_values.std()
        assert wasserstein_from_counts(ref, profile) == pytest.approx(expected, rel=0.05)
        statistic, _ = ks_from_counts(ref, profile)
        assert statistic == pytest.approx(stats.ks_2samp(ref_values, current).statistic, abs=0.01)


DISTRIBUTIONS: dict[str, Callable[[np.random.Generator, int, float], np.ndarray]] = {
    "normal": lambda rng, n, s: rng.normal(s, 1, n),
    "lognormal": lambda rng, n, s: rng.lognormal(0.5 * s, 1, n),
    "uniform": lambda rng, n, s: rng.uniform(s, 1 + s, n),
    "bimodal": lambda rng, n, s: np.where(
        rng.random(n) < 0.3, rng.normal(-2, 0.5, n), rng.normal(2 + s, 1, n)
    ),
    "integer": lambda rng, n, s: rng.poisson(3 + s, n).astype(float),
    "pareto": lambda rng, n, s: rng.pareto(1.5 + s, n),
}


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_binned_statistics_error_over_distributions(name: str) -> None:
    """KS stays within 0.002 and normed Wasserstein within 1% of scipy, drifted or not."""
    make = DISTRIBUTIONS[name]
    rng = np.random.default_rng(2024)
    ref_values = make(rng, REFERENCE_ROWS, 0.0)
    ref = fit_numeric(ref_values)
    for shift in (0.0, 0.05, 0.3):
        current = make(rng, WINDOW_ROWS, shift)
        profile = numeric_profile(current, ref)
        statistic, _ = ks_from_counts(ref, profile)
        assert statistic == pytest.approx(stats.ks_2samp(ref_values, current).statistic, abs=0.002)
        expected = stats.wasserstein_distance(ref_values, current) / ref_values.std()
        assert wasserstein_from_counts(ref, profile) == pytest.approx(expected, rel=0.01)


def test_correlation_change_is_multivariate_drift_only() -> None:
    """Two features swap correlation 0.8 -> -0.8 with unchanged marginals: only PCA notices."""
    rng = np.random.default_rng(13)

    def rows(count: int, rho: float) -> pd.DataFrame:
        x = rng.normal(size=count)
        y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=count)
        return pd.DataFrame(
            {"income": 50 + 10 * x, "debt": 20 + 4 * y, "age": rng.normal(40, 10, count)}
        )

    reference, current, stable = (
        rows(REFERENCE_ROWS, 0.8),
        rows(WINDOW_ROWS, -0.8),
        rows(WINDOW_ROWS, 0.8),
    )
    for column in reference:
        ref = fit_numeric(reference[column].to_numpy())
        result = feature_drift(ref, numeric_profile(current[column].to_numpy(), ref))
        assert result is not None
        assert not result.drifted, column
    multivariate = fit_multivariate(reference)
    drifted = multivariate_drift(multivariate, reconstruction_profile(multivariate, current))
    quiet = multivariate_drift(multivariate, reconstruction_profile(multivariate, stable))
    assert drifted is not None
    assert quiet is not None
    assert drifted.drifted
    assert drifted.error > multivariate.threshold
    assert not quiet.drifted
    assert (
        multivariate_drift(multivariate, reconstruction_profile(multivariate, current[:50])) is None
    )


def test_prediction_and_outcome_drift_reuse_feature_drift() -> None:
    """A score uses the numeric path, a class label the categorical one."""
    rng = np.random.default_rng(21)
    scores = fit_numeric(rng.beta(2, 5, 3000))
    shifted = numeric_profile(rng.beta(5, 2, 2000), scores)
    labels = fit_categorical(rng.choice(np.array([0, 1]), 3000, p=[0.8, 0.2]))
    flipped = categorical_profile(rng.choice(np.array([0, 1]), 2000, p=[0.4, 0.6]), labels)
    score_drift = feature_drift(scores, shifted)
    label_drift = feature_drift(labels, flipped)
    assert score_drift is not None
    assert score_drift.drifted
    assert label_drift is not None
    assert label_drift.drifted
