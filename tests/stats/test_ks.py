"""Tests for exporter.stats.ks: the two-sample KS p-value against scipy's public API."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from exporter.stats.ks import exact_pvalue, ks_pvalue, smirnov_asymptotic_pvalue

SAMPLES = {
    "equal sizes": lambda rng: (rng.normal(size=300), rng.normal(0.2, 1, 300)),
    "small": lambda rng: (rng.normal(size=7), rng.normal(size=10)),
    "one value": lambda rng: (rng.normal(size=1), rng.normal(size=5)),
    "coprime": lambda rng: (rng.normal(size=123), rng.normal(0.1, 1, 457)),
    "golden sizes": lambda rng: (rng.normal(size=700), rng.normal(size=800)),
    "common divisor": lambda rng: (rng.normal(size=800), rng.normal(0.05, 1, 5000)),
    "lopsided": lambda rng: (rng.normal(size=3), rng.normal(size=2000)),
    "ties": lambda rng: (
        rng.poisson(3, 500).astype(float),
        rng.poisson(3.3, 650).astype(float),
    ),
    "far apart": lambda rng: (rng.normal(size=400), rng.normal(1.5, 1, 600)),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_exact_pvalue_is_scipys(name: str) -> None:
    """Continuous samples get the p-value of the two-valued ones with their statistic."""
    x, y = SAMPLES[name](np.random.default_rng(17))
    expected = stats.ks_2samp(x, y, method="exact")
    ours = exact_pvalue(float(expected.statistic), len(x), len(y))
    assert ours is not None
    assert ours == pytest.approx(expected.pvalue, rel=1e-12, abs=1e-300)
    assert exact_pvalue(float(expected.statistic), len(y), len(x)) == ours  # symmetric


def test_a_zero_statistic_has_pvalue_1() -> None:
    assert exact_pvalue(0.0, 40, 70) == 1.0


# (n, m, i, j, p): the statistic |i/n - j/m| and the p-value of the numpy port of scipy's
# exact distribution that `exact_pvalue` replaced (None: it fell back to the asymptotic).
FORMER_PORT = [
    (1, 4, 1, 3, 1.0),
    (7, 10, 1, 0, 0.9997943233237351),
    (40, 70, 23, 39, 1.0),
    (40, 70, 19, 31, 0.9999999999999979),
    (64, 64, 61, 62, 1.0),
    (64, 64, 43, 40, 0.9999999044253438),
    (123, 457, 19, 88, 0.9977917369795699),
    (300, 300, 236, 221, 0.8483422371364409),
    (300, 300, 142, 143, None),
    (500, 650, 234, 278, 0.7296010899032739),
    (800, 5000, 281, 1714, 0.9999999994545092),
    (800, 5000, 238, 1464, 1.0),
    (1000, 1000, 838, 834, None),
    (1000, 1000, 741, 783, 0.34112475112661245),
    (1000, 3000, 558, 1580, 0.44866973793038406),
    (2000, 2000, 1379, 1413, 0.934827271267201),
    (2000, 2000, 1358, 1447, 0.03809482444605752),
]


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful")
@pytest.mark.parametrize(("n", "m", "i", "j", "former"), FORMER_PORT)
def test_ks_pvalue_is_the_former_ports(
    n: int, m: int, i: int, j: int, former: float | None
) -> None:
    """Where the port fell back (scipy's equal-size sum rounds above 1), so does
    `ks_pvalue`; a fallback to exactly 1 may now be reported as the exact 1."""
    statistic = abs(i / n - j / m)
    ours = exact_pvalue(statistic, n, m)
    if former is None:
        assert ours in (None, 1.0)
        fallback = smirnov_asymptotic_pvalue(statistic, n * m / (n + m))
        assert ks_pvalue(statistic, n, m) == fallback
    else:
        assert ours == pytest.approx(former, rel=1e-12, abs=1e-300)


def test_equal_sizes_fall_back_where_scipys_sum_leaves_0_1() -> None:
    """n = m = 7, D = 1/7: scipy's alternating sum rounds above 1 and it returns its
    asymptotic p-value (below 1 here); `exact_pvalue` reports that as no exact value."""
    x, y = np.repeat([0.0, 1.0], [1, 6]), np.ones(7)
    with pytest.warns(RuntimeWarning, match="Exact calculation unsuccessful"):
        assert stats.ks_2samp(x, y, method="exact").pvalue < 1
    assert exact_pvalue(1 / 7, 7, 7) is None
    assert ks_pvalue(1 / 7, 7, 7) == smirnov_asymptotic_pvalue(1 / 7, 3.5)


def test_a_statistic_no_samples_have_gets_the_next_ones_pvalue() -> None:
    """Sizes 2 and 3 reach the statistics 0, 1/6, ..., 4/6 and 1 but not 5/6:
    ``P(D >= 5/6) = P(D >= 1)``."""
    assert exact_pvalue(5 / 6, 2, 3) == exact_pvalue(1.0, 2, 3) == pytest.approx(0.2)


def test_ks_pvalue_follows_scipy_auto() -> None:
    """Given scipy's statistic, the p-value equals ks_2samp's: exactly in the exact regime
    and below `KS_LIMIT_MIN_N`, within the documented bound above it."""
    rng = np.random.default_rng(5)
    for n_ref, n_cur, tolerance in ((800, 5000, 0), (20_000, 5000, 3e-6), (300, 300, 0)):
        result = stats.ks_2samp(rng.normal(size=n_ref), rng.normal(0.1, 1, n_cur))
        assert ks_pvalue(result.statistic, n_ref, n_cur) == pytest.approx(
            result.pvalue, rel=1e-9, abs=max(tolerance, 1e-300)
        )


@pytest.mark.parametrize(("n", "bound"), [(1000, 2.1e-5), (8333, 2.7e-6), (50_000, 4.5e-7)])
def test_corrected_limit_stays_within_its_bound_of_kstwo(n: int, bound: float) -> None:
    """The bound the module docstring states, over the statistics that matter at size n."""
    statistics = np.linspace(0.05, 3.5, 300) / np.sqrt(n)
    exact = np.array([stats.kstwo.sf(d, n) for d in statistics])
    ours = np.array([smirnov_asymptotic_pvalue(d, n) for d in statistics])
    assert np.abs(ours - exact).max() <= bound
    assert ((ours < 0.05) == (exact < 0.05)).all()
