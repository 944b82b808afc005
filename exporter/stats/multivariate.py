"""Multivariate drift's reference: a PCA of the standardized numeric features, and the
per-row reconstruction error a window's mean is compared with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA

__all__ = [
    "MultivariateReference",
    "fit_multivariate",
    "reconstruction_errors",
    "reconstruction_errors_of_columns",
]

EXPLAINED_VARIANCE = 0.9  # share of the variance the kept principal axes explain


@dataclass(frozen=True, eq=False)
class MultivariateReference:
    """A PCA of the standardized numeric features and its reference reconstruction error.

    Attributes:
        features: the feature names, in the column order `reconstruction_errors` expects.
        mean, scale: reference mean and std (ddof=0; 1 where the std is 0) per feature.
        components: the kept principal axes, shape (k, d) with ``1 <= k < d``.
        pca_mean: the PCA centre in standardized space (about 0).
        threshold: the mean plus 3 standard deviations of the reference rows' own
            reconstruction errors.
        n: reference rows.
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray
    pca_mean: np.ndarray
    threshold: float
    n: int

    @property
    def explained_components(self) -> int:
        return int(self.components.shape[0])

    @cached_property
    def complement(self) -> np.ndarray:
        """An orthonormal basis, shape ``(d - k, d)``, of the directions the kept axes
        leave out: a row's residual is its projection on them."""
        return _complement(self.components)


def fit_multivariate(frame: pd.DataFrame) -> MultivariateReference:
    """Fit PCA on the standardized numeric features of a reference frame.

    Keeps the fewest components that explain `EXPLAINED_VARIANCE` of the variance, but
    always at least 1 and fewer than the number of features (so something is left to
    reconstruct). Missing values are replaced by the reference mean.
    """
    features = tuple(str(column) for column in frame.columns)
    if len(features) < 2:
        raise ValueError("multivariate drift needs at least 2 numeric features")
    raw = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    raw = np.where(np.isfinite(raw), raw, np.nan)
    rows = int(np.count_nonzero(np.isfinite(raw).any(axis=1)))
    if rows < 2:
        raise ValueError("multivariate drift needs at least 2 reference rows")
    mean = np.nan_to_num(np.nanmean(raw, axis=0))
    std = np.nan_to_num(np.nanstd(raw, axis=0))
    scale = np.where(std > 0, std, 1.0)
    standardized = _standardize(mean, scale, raw)
    pca = PCA(n_components=len(features), svd_solver="full").fit(standardized)
    cumulative = np.cumsum(pca.explained_variance_ratio_)
    kept = int(np.searchsorted(cumulative, EXPLAINED_VARIANCE - 1e-12) + 1)
    kept = min(max(kept, 1), len(features) - 1)
    components = pca.components_[:kept].copy()
    errors = _row_errors(components, _complement(components), (standardized - pca.mean_).T)
    return MultivariateReference(
        features=features,
        mean=mean,
        scale=scale,
        components=components,
        pca_mean=pca.mean_.copy(),
        threshold=float(errors.mean()) + 3 * float(errors.std()),
        n=int(raw.shape[0]),
    )


def reconstruction_errors(
    ref: MultivariateReference, matrix: np.ndarray | pd.DataFrame
) -> np.ndarray:
    """Per-row mean squared reconstruction error in standardized space.

    `matrix` has the columns of `ref.features` in that order (a DataFrame is reordered
    by name); missing and non-finite values are replaced by the reference mean.
    """
    if isinstance(matrix, pd.DataFrame):
        matrix = matrix.loc[:, list(ref.features)].to_numpy(dtype=np.float64, na_value=np.nan)
    array = np.asarray(matrix, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != ref.mean.size:
        raise ValueError(f"expected a (rows, {ref.mean.size}) matrix, got shape {array.shape}")
    return reconstruction_errors_of_columns(ref, list(array.T))


def reconstruction_errors_of_columns(
    ref: MultivariateReference, columns: Sequence[np.ndarray]
) -> np.ndarray:
    """`reconstruction_errors` of the rows whose feature values come one array per feature
    (in `ref.features` order): the monitor's layout, so no row-major copy is made."""
    centred = np.stack([np.asarray(c, dtype=np.float64) for c in columns])
    # standardized - pca_mean = (x - (mean + pca_mean * scale)) / scale, in place
    centred -= (ref.mean + ref.pca_mean * ref.scale)[:, None]
    centred /= ref.scale[:, None]
    with np.errstate(invalid="ignore", over="ignore"):  # such rows are redone below
        errors = _row_errors(ref.components, ref.complement, centred)
    incomplete = ~np.isfinite(errors)  # a NaN or inf anywhere in the row
    if incomplete.any():
        rows = centred[:, incomplete]
        absent = ~np.isfinite(rows)
        rows[absent] = np.broadcast_to(-ref.pca_mean[:, None], rows.shape)[absent]  # the mean
        errors[incomplete] = _row_errors(ref.components, ref.complement, rows)
    return errors


def _standardize(ref_mean: np.ndarray, ref_scale: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    array = np.array(matrix, dtype=np.float64, copy=True)
    if array.ndim != 2 or array.shape[1] != ref_mean.size:
        raise ValueError(f"expected a (rows, {ref_mean.size}) matrix, got shape {array.shape}")
    missing = ~np.isfinite(array)
    if missing.any():
        array[missing] = np.broadcast_to(ref_mean, array.shape)[missing]
    return (array - ref_mean) / ref_scale


def _complement(components: np.ndarray) -> np.ndarray:
    """The rows completing the orthonormal rows of `components` to a basis of R^d."""
    return np.linalg.svd(components, full_matrices=True)[2][components.shape[0] :]


def _row_errors(components: np.ndarray, complement: np.ndarray, centred: np.ndarray) -> np.ndarray:
    """Mean squared residual of each column of ``centred`` (features x rows, standardized
    minus the PCA centre; left unchanged) after projecting on ``components``.

    With V the kept axes and W their `complement` ([V; W] orthonormal), the residual
    ``|z - V^T V z|^2`` is ``|W z|^2`` and also ``|z|^2 - |V z|^2``: neither builds the
    reconstruction, and the one with fewer rows is used (90% of the variance usually
    keeps most axes, leaving W a row or two: about 5x less work than V)."""
    if complement.shape[0] < components.shape[0]:
        residual = complement @ centred
        squares = np.einsum("ij,ij->j", residual, residual)
    else:
        squares = np.einsum("ij,ij->j", centred, centred)
        projected = components @ centred
        squares -= np.einsum("ij,ij->j", projected, projected)
        np.maximum(squares, 0.0, out=squares)  # rounding can leave a tiny negative
    return squares / centred.shape[0]
