"""The two-sided two-sample Kolmogorov-Smirnov p-value of a statistic and two sample sizes.

As ``scipy.stats.ks_2samp(method="auto")``: the exact distribution when
``max(n_ref, n_cur) <= 10000`` (scipy's rule) and additionally ``n_ref * n_cur <= 10**7``
(this covers Evidently's <= 1000-row references with windows up to 10,000 rows) and
the asymptotic p-value is >= 1e-10 (a huge statistic makes the exact sum slow and the
p-value astronomically small either way), else Smirnov's asymptotic
``kstwo.sf(d, round(en))`` with ``en = n_ref * n_cur / (n_ref + n_cur)``. scipy evaluates
that one by a series whose cost grows with ``en`` (6 ms at ``en`` = 8,333, 36 ms at
50,000, per feature and scrape), so from ``en >= 1000`` on it is replaced by Vrbik's
corrected limiting distribution, ``kolmogorov(sqrt(en) d + 1/(6 sqrt(en)) +
(sqrt(en) d - 1)/(4 en))`` (a few microseconds). Measured against ``kstwo.sf`` over the
whole range of ``d``: at most 2.0e-5 absolute at ``en`` = 1,000, 2.6e-6 at 8,333, 4.4e-7
at 50,000 (`tests/stats/test_ks.py`), far below what could move a decision at p = 0.05.

The exact p-value is scipy's own, from its public API: ``ks_2samp(method="exact")`` of
two samples built to have the given statistic and sizes (`_exact_pvalue` says why that
is the p-value of any samples with them).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats
from scipy.special import kolmogorov

__all__ = ["exact_pvalue", "ks_pvalue", "smirnov_asymptotic_pvalue"]

KS_EXACT_MAX_N = 10_000  # scipy.stats.ks_2samp's MAX_AUTO_N
KS_EXACT_MAX_PRODUCT = 10**7  # with the next line, keeps the exact p-value affordable
KS_EXACT_MIN_PVALUE = 1e-10  # below this the exact value only changes digits nobody reads
KS_LIMIT_MIN_N = 1000  # from this effective size on, the corrected limit replaces kstwo
FALLBACK_MIN_PVALUE = 0.9  # scipy's exact p-value can only have fallen back above this


def ks_pvalue(statistic: float, n_ref: int, n_cur: int) -> float:
    """Two-sided two-sample KS p-value for sizes `n_ref`, `n_cur` (module docstring)."""
    if min(n_ref, n_cur) < 1:
        raise ValueError("ks needs at least one value on each side")
    big, small = sorted((float(n_ref), float(n_cur)), reverse=True)
    asymptotic = smirnov_asymptotic_pvalue(statistic, big * small / (big + small))
    if (
        max(n_ref, n_cur) <= KS_EXACT_MAX_N
        and n_ref * n_cur <= KS_EXACT_MAX_PRODUCT
        and asymptotic >= KS_EXACT_MIN_PVALUE
    ):
        exact = exact_pvalue(statistic, n_ref, n_cur)
        if exact is not None:
            return exact
    return asymptotic


def smirnov_asymptotic_pvalue(statistic: float, effective_n: float) -> float:
    """``kstwo.sf(statistic, round(effective_n))``, scipy's asymptotic two-sample p-value;
    from `KS_LIMIT_MIN_N` on, Vrbik's corrected limit instead (module docstring)."""
    n = float(np.round(effective_n))
    if n < KS_LIMIT_MIN_N:
        return _kstwo_sf(statistic, n)
    root = math.sqrt(n)
    x = root * statistic + 1 / (6 * root) + (root * statistic - 1) / (4 * n)
    return float(np.clip(kolmogorov(x), 0.0, 1.0))


def exact_pvalue(statistic: float, n_ref: int, n_cur: int) -> float | None:
    """``P(D >= statistic)`` under the null for samples of `n_ref` and `n_cur` values, as
    ``ks_2samp(method="exact")`` computes it; None where that computation fails and scipy
    falls back to a p-value below 1 (so does `ks_pvalue`, with its own asymptotic one)."""
    small, big = sorted((n_ref, n_cur))
    h = int(np.round(statistic * ((big // math.gcd(big, small)) * small)))
    return _exact_pvalue(h, small, big)


# Scrapes ask again for windows that got no new rows; each answer costs up to milliseconds.
@functools.lru_cache(maxsize=1024)
def _exact_pvalue(h: int, small: int, big: int) -> float | None:
    """`exact_pvalue` of the statistic ``h / lcm(small, big)`` (lattice units).

    scipy's exact distribution assumes continuous data: it counts the lattice paths from
    (0, 0) to (small, big) that reach the statistic, so its p-value depends on the
    statistic and the two sizes only, never on the values. Any pair of samples with that
    statistic therefore gets the same p-value, and the cheapest has two values
    (`_two_valued_samples`); scipy rounds the statistic back to the same ``h``.
    """
    if h == 0:
        return 1.0
    x, y = _two_valued_samples(h, small, big)
    result = stats.ks_2samp(x, y, method="exact")
    pvalue = float(result.pvalue)
    # scipy's alternating sum for equal sizes can round above 1 where the p-value is
    # within rounding of 1; it then returns (and warns of) its asymptotic p-value, which
    # is this value exactly. That value was >= 0.99996 at every such (h, n) up to
    # `KS_EXACT_MAX_N`, hence the cheap tests first. A p-value of 1 is right either way.
    # Unequal sizes use a recursion of weighted means, which stays in [0, 1].
    fell_back = (
        small == big
        and FALLBACK_MIN_PVALUE < pvalue < 1.0
        and pvalue == _scipy_fallback(float(result.statistic), small / 2)
    )
    return None if fell_back else pvalue


def _scipy_fallback(statistic: float, effective_n: float) -> float:
    """The asymptotic p-value ``ks_2samp`` returns when its exact computation fails."""
    return _kstwo_sf(statistic, float(np.round(effective_n)))


def _kstwo_sf(statistic: float, n: float) -> float:
    """``P(D >= statistic)`` by Smirnov's distribution for `n` (an integral float), as
    ``ks_2samp`` computes its asymptotic p-value."""
    return float(np.clip(stats.kstwo.sf(statistic, n), 0.0, 1.0))


def _two_valued_samples(h: int, small: int, big: int) -> tuple[np.ndarray, np.ndarray]:
    """Samples of `small` and `big` values, 0s then 1s, whose KS statistic is
    ``h / lcm(small, big)``, or the next larger statistic such samples can have (the
    p-value ``P(D >= d)`` is the same for every d up to that one).

    With ``i`` 0s among `small` values and ``j`` among `big`, the statistic is
    ``|i / small - j / big| = |i * bg - j * sg| / lcm`` (``sg``, ``bg`` the sizes over
    their gcd), so ``i * bg - j * sg = h``: ``i`` is ``h / bg`` modulo ``sg``, and at
    least ``h / bg`` so that ``j >= 0``.
    """
    gcd = math.gcd(small, big)
    sg, bg = small // gcd, big // gcd
    inverse = pow(bg, -1, sg)  # bg and sg are coprime
    for reached in range(h, sg * big + 1):  # h = lcm always is: i = small, j = 0
        lowest = -(-reached // bg)
        i = lowest + (reached * inverse - lowest) % sg
        if i <= small:
            j = (i * bg - reached) // sg
            zeros_ones = np.array([0.0, 1.0])
            return (
                np.repeat(zeros_ones, [i, small - i]),
                np.repeat(zeros_ones, [j, big - j]),
            )
    raise ValueError(f"a KS statistic is at most 1, got {h} / {sg * big}")
