"""Drift statistics computed from counts: pure functions of a reference and a profile.

Definitions (docs/drift.md states them for users) follow scipy and Evidently, so that
the numbers compare with theirs (chi-square: with scipy's contingency test, not
Evidently's):

- ``psi``: population stability index over the reference-quantile bins (default 10),
  proportions floored at 1e-4 (``max(p, 1e-4)``, no renormalization), natural log.
  Categorical: one bin per reference category, plus "other" and "unseen".
- ``ks``: the two-sample Kolmogorov-Smirnov statistic and p-value.
- ``wasserstein``: the 1-Wasserstein distance divided by the reference std (ddof=0,
  floored at 0.001 as Evidently does).
- ``jensenshannon``: the Jensen-Shannon *distance*, natural log, as
  ``scipy.spatial.distance.jensenshannon``; over categories, or over the PSI bins for a
  numeric feature.
- ``chisquare``: Pearson's chi-square test of homogeneity of two samples, the reference
  counts and the window counts as a 2 x k contingency table, exactly as
  ``scipy.stats.chi2_contingency(table, correction=False)``: expected counts
  ``row total x column total / N``, statistic ``sum((O - E)^2 / E)`` over both rows,
  p-value ``chi2.sf(statistic, k - 1)``. Over categories (plus "other" and "unseen"),
  or over the PSI bins for a numeric feature (the reference's own counts per bin,
  summed from its fine slots). Slots empty on both sides are left out (no degree of
  freedom); with fewer than two slots left the statistic is 0 and the p-value 1, as
  scipy's. Unlike Evidently's chi-square, a goodness-of-fit test that takes the
  reference proportions as exact, it counts the reference's own sampling noise: with
  no drift the goodness-of-fit statistic is about ``1 + n_window / n_reference`` times
  too large, and flagged 83% of 2,000-row windows against 500-row references; this test
  flags 5.5% of them (n = 1,000, `tests/stats/test_drift_flag_rate.py`). An unseen category is
  one more column, with reference count 0: the statistic is finite and grows with the
  number of unseen values, weighed against the reference's size (a category absent from
  500 reference rows may just be too rare to have been drawn), so a few unseen values
  alone need not make the p-value small; ``mlmodel_feature_unseen_category_ratio``
  counts them anyway.

A p-value test flags about 5% of undrifted windows at p < 0.05 on average over
reference draws (KS fewer where values tie: 1.2% for Poisson counts, as scipy's
``ks_2samp``). With one fixed reference the windows' verdicts are not independent: they
share that reference's sampling error, so an unlucky reference is flagged in many
windows and most are flagged in almost none (measured, 500-row references, 2,000-row
windows, 20 references x 400 windows: chi-square median 0.2%, 3 of 20 references above
10%, at most 44%; KS median 0.5%, at most 18%). A larger reference narrows this.

How KS and Wasserstein are approximated (exact where they can be, bounded always):
both CDFs are known exactly at every fine grid point ``g_j`` and just before it, because
values equal to a grid point are counted apart from values strictly between two points.

- KS is the largest CDF difference over those points. It is never above the exact
  statistic and at most the largest reference share in one open fine bin below it
  (`NumericReference.ks_error_bound`, <= 2/fine_bins = 0.002 by default; 0 for discrete
  features with at most fine_bins + 1 distinct values, whose every value is a grid point).
- Wasserstein integrates ``|F_ref - F_cur|``. Outside the reference range it is exact
  (from the summed distances of the values beyond min / max). Inside a fine bin the
  summed offsets give the exact integral of ``F_ref - F_cur``, which is the integral of
  its absolute value unless the CDFs cross inside that bin; where the difference changes
  sign between the bin's ends it is modelled as a single step that keeps the signed
  integral exact (exact when one value lies in the bin). The grid puts half its points
  where the Wasserstein distance accumulates (`exporter.stats.fine_grid.fine_grid`), so the
  error stays well under 1% even for heavy tails; the measured errors are listed in the
  docstring of `tests/stats/test_drift.py`.

KS p-value: `exporter.stats.ks`.

``method: auto`` (Evidently's default rule by reference size, `choose_method`): numeric features
use KS (drift if p < 0.05) when the reference has <= 1000 values, else normed
Wasserstein (drift if >= 0.1); categorical features use chi-square (p < 0.05) when the
reference has <= 1000 values, else Jensen-Shannon (>= 0.1). The reference size is the
number of non-missing reference values of that feature, as Evidently drops missing
values before testing. (Evidently also sends numeric features with <= 5 distinct values
to the categorical tests; this module does not.) A method that applies to numeric values
only (ks, wasserstein) configured for a categorical feature gets auto's choice instead.

Prediction and outcome drift use the same functions: fit a `NumericReference` on the
reference predictions for binary scores and regression, a `CategoricalReference` on
class labels (multiclass predictions, actual labels), and call `feature_drift`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from scipy.special import rel_entr
from scipy.stats import chi2

from exporter.config import DEFAULT_DRIFT_MIN_ROWS, DEFAULT_DRIFT_THRESHOLDS
from exporter.config.schema import DRIFT_METHODS
from exporter.stats.ks import ks_pvalue
from exporter.stats.multivariate import MultivariateReference
from exporter.stats.profile import (
    CategoricalProfile,
    MultivariateCounts,
    NumericProfile,
    Profile,
    psi_counts,
)
from exporter.stats.reference import CategoricalReference, NumericReference

__all__ = [
    "AUTO_REFERENCE_ROWS",
    "PVALUE_METHODS",
    "DriftResult",
    "MultivariateDrift",
    "chisquare_from_counts",
    "choose_method",
    "feature_drift",
    "jensenshannon_from_counts",
    "ks_from_counts",
    "multivariate_drift",
    "psi",
    "wasserstein_from_counts",
]

PVALUE_METHODS = frozenset({"ks", "chisquare"})  # drifted when p < threshold
NUMERIC_ONLY_METHODS = frozenset({"ks", "wasserstein"})
AUTO_REFERENCE_ROWS = 1000  # Evidently: small references get the statistical tests
PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class DriftResult:
    """One feature's drift in one window.

    `method` is the method that decided (``auto`` resolved to ks, wasserstein,
    chisquare or jensenshannon). `method_scores` holds every statistic that applies to the
    feature's type (KS: the statistic), `pvalues` those of ``ks`` and ``chisquare``.
    """

    method: str
    method_scores: dict[str, float] = field(default_factory=dict)
    pvalues: dict[str, float] = field(default_factory=dict)
    drifted: bool = False


@dataclass(frozen=True)
class MultivariateDrift:
    """A window's mean PCA reconstruction error against the reference threshold."""

    error: float
    threshold: float
    drifted: bool


def psi(ref_props: np.ndarray, cur_counts: np.ndarray) -> float:
    """Population stability index: ``sum((c - r) * ln(c / r))`` over floored proportions."""
    counts = np.asarray(cur_counts, dtype=np.float64)
    total = counts.sum()
    if total <= 0:
        raise ValueError("psi needs at least one current value")
    ref = np.maximum(np.asarray(ref_props, dtype=np.float64), PSI_FLOOR)
    cur = np.maximum(counts / total, PSI_FLOOR)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def _cdf_difference(ref: NumericReference, cur_counts: np.ndarray) -> np.ndarray:
    """``F_ref - F_cur`` just after each fine slot (at and just before each grid point)."""
    cur_total = cur_counts.sum()
    if cur_total <= 0:
        raise ValueError("needs at least one current value")
    return np.cumsum(ref.fine_counts) / ref.n - np.cumsum(cur_counts) / cur_total


def ks_from_counts(ref: NumericReference, profile: NumericProfile) -> tuple[float, float]:
    """KS statistic and p-value of a window's values against the reference."""
    cur_counts = np.asarray(profile.fine_counts)
    statistic = float(np.abs(_cdf_difference(ref, cur_counts)).max())
    return statistic, ks_pvalue(statistic, ref.n, int(cur_counts.sum()))


def wasserstein_from_counts(ref: NumericReference, profile: NumericProfile) -> float:
    """1-Wasserstein distance between the window and the reference, / reference std."""
    cur_counts = np.asarray(profile.fine_counts)
    cur_offsets = np.asarray(profile.fine_offsets, dtype=np.float64)
    difference = _cdf_difference(ref, cur_counts)
    cur_total = float(cur_counts.sum())
    outside = (cur_offsets[0] + cur_offsets[-1]) / cur_total
    widths = np.diff(ref.fine_edges)
    at_start = difference[1:-2:2]  # just after grid point g_{k-1}
    at_end = difference[2:-1:2]  # just before grid point g_k
    # Integral over (g_{k-1}, g_k) of F: width * F(g_{k-1}) + sum(g_k - v) / n.
    ref_area = (ref.fine_counts[2:-1:2] * widths - ref.fine_offsets[1:-1]) / ref.n
    cur_area = (cur_counts[2:-1:2] * widths - cur_offsets[1:-1]) / cur_total
    signed = widths * at_start + ref_area - cur_area
    # Where F_ref - F_cur changes sign inside the bin, model it as one step from its
    # start value to its end value, placed so that the signed integral stays exact.
    crossing = at_start * at_end < 0
    step_at = np.clip(
        np.divide(
            signed - at_end * widths,
            at_start - at_end,
            out=np.zeros_like(widths),
            where=crossing,
        ),
        0.0,
        widths,
    )
    stepped = np.abs(at_start) * step_at + np.abs(at_end) * (widths - step_at)
    inside = np.where(crossing, stepped, np.abs(signed)).sum()
    return float((outside + inside) / ref.std_norm)


def jensenshannon_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    """Jensen-Shannon distance (natural log) between two count (or share) vectors."""
    ref = np.asarray(ref_counts, dtype=np.float64)
    cur = np.asarray(cur_counts, dtype=np.float64)
    if ref.sum() <= 0 or cur.sum() <= 0:
        raise ValueError("jensenshannon needs at least one value on each side")
    ref = ref / ref.sum()
    cur = cur / cur.sum()
    middle = (ref + cur) / 2
    divergence = (rel_entr(ref, middle).sum() + rel_entr(cur, middle).sum()) / 2
    return float(np.sqrt(max(divergence, 0.0)))


def chisquare_from_counts(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Two-sample Pearson chi-square of reference counts vs current counts, and its p-value.

    The 2 x k contingency table as ``chi2_contingency(table, correction=False)`` tests it;
    slots empty on both sides are left out, and fewer than two slots left give (0, 1).
    """
    table = np.array([ref_counts, cur_counts], dtype=np.float64)
    if table.ndim != 2 or table.sum(axis=1).min() <= 0:
        raise ValueError("chisquare needs at least one value on each side")
    table = table[:, table.sum(axis=0) > 0]
    degrees = table.shape[1] - 1
    if degrees < 1:
        return 0.0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(np.sum((table - expected) ** 2 / expected))
    return statistic, float(chi2.sf(statistic, degrees))


def choose_method(configured: str, categorical: bool, reference_values: int) -> tuple[str, str]:
    """The method that decides drift for a feature, and why when it is not `configured`.

    ``auto``: KS / chi-square for references of at most `AUTO_REFERENCE_ROWS` values,
    else normed Wasserstein / Jensen-Shannon; a numeric-only method on a categorical
    feature: auto's choice. Raises ValueError for an unknown method.
    """
    if configured not in DRIFT_METHODS:
        raise ValueError(f"unknown drift method {configured!r}; expected one of {DRIFT_METHODS}")
    small = reference_values <= AUTO_REFERENCE_ROWS
    if configured == "auto":
        if categorical:
            method = "chisquare" if small else "jensenshannon"
        else:
            method = "ks" if small else "wasserstein"
        relation = "<=" if small else ">"
        return method, f"auto: {reference_values} reference values {relation} {AUTO_REFERENCE_ROWS}"
    if categorical and configured in NUMERIC_ONLY_METHODS:
        method = "chisquare" if small else "jensenshannon"
        return method, f"{configured} applies to numeric values only; auto's choice for categories"
    return configured, ""


def feature_drift(
    ref: NumericReference | CategoricalReference,
    profile: Profile,
    method: str = "auto",
    *,
    thresholds: Mapping[str, float] = DEFAULT_DRIFT_THRESHOLDS,
    min_rows: int = DEFAULT_DRIFT_MIN_ROWS,
) -> DriftResult | None:
    """Drift of one feature (or the prediction, or the outcome) in one window.

    Returns None when the window has fewer than `min_rows` binned values. `method` is
    resolved by `choose_method` (``ref.n`` reference values); `thresholds` has every
    method's (p-value methods drift when ``p < threshold``, the others when
    ``score >= threshold``).
    """
    chosen, _ = choose_method(method, isinstance(ref, CategoricalReference), ref.n)
    if profile.count < max(min_rows, 1):
        return None
    scores: dict[str, float] = {}
    pvalues: dict[str, float] = {}
    if isinstance(ref, CategoricalReference) and isinstance(profile, CategoricalProfile):
        ref_props = ref.proportions_with_unseen
        cur = np.asarray(profile.counts)
        ref_counts = np.append(ref.counts, 0)
    elif isinstance(ref, NumericReference) and isinstance(profile, NumericProfile):
        ref_props = ref.psi_proportions
        cur = psi_counts(ref, profile.fine_counts)
        ref_counts = psi_counts(ref, ref.fine_counts)
        scores["ks"], pvalues["ks"] = ks_from_counts(ref, profile)
        scores["wasserstein"] = wasserstein_from_counts(ref, profile)
    else:
        raise TypeError(f"{type(profile).__name__} against a {type(ref).__name__}")
    scores["psi"] = psi(ref_props, cur)
    scores["jensenshannon"] = jensenshannon_from_counts(ref_counts, cur)
    scores["chisquare"], pvalues["chisquare"] = chisquare_from_counts(ref_counts, cur)
    if chosen in PVALUE_METHODS:
        drifted = pvalues[chosen] < thresholds[chosen]
    else:
        drifted = scores[chosen] >= thresholds[chosen]
    return DriftResult(method=chosen, method_scores=scores, pvalues=pvalues, drifted=drifted)


def multivariate_drift(
    ref: MultivariateReference,
    counts: MultivariateCounts,
    min_rows: int = DEFAULT_DRIFT_MIN_ROWS,
) -> MultivariateDrift | None:
    """Mean reconstruction error of a window's rows vs ``reference mean + 3 std``.

    None when the window has fewer than `min_rows` rows.
    """
    rows = int(counts.count)
    if rows < max(min_rows, 1):
        return None
    error = float(counts.error_sum) / rows
    return MultivariateDrift(error=error, threshold=ref.threshold, drifted=error > ref.threshold)
