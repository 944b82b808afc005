"""Reading reference data: the CSV's cells as the prediction logs read them, and the type
of a feature the configuration leaves open."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from exporter.stats.fit import category_strings

__all__ = ["infer_feature_type", "read_reference_csv"]

NUMERIC_SHARE_FOR_INFERENCE = 0.95  # share of non-missing values that must parse as numbers


def read_reference_csv(
    path: Path | str, *, text: Collection[str] = (), na_values: Sequence[str] = ()
) -> pd.DataFrame:
    """The reference CSV with the cells read as in the prediction logs: only an empty
    cell, or one of the model's ``na_values``, is missing; ``NA``, ``None``, ``null`` and
    ``n/a`` are values like any other (a category ``NA`` is a category). The ``text``
    columns the file has are read as strings, never as numbers. pandas' errors (an
    unreadable file) are the caller's to report."""
    header = pd.read_csv(path, nrows=0).columns
    strings = set(text) & {str(name) for name in header}
    return pd.read_csv(
        path,
        dtype=dict.fromkeys(strings, str) or None,
        keep_default_na=False,
        na_values=["", *na_values],
        low_memory=False,
    )


def infer_feature_type(series: pd.Series) -> Literal["numeric", "categorical"]:
    """Guess a feature's type from reference values.

    Numeric: a numeric dtype (not bool), or text of which at least 95% of the non-missing
    values parse as finite numbers (the rest then count as invalid). Anything else,
    including bool and an all-missing column, is categorical.
    """
    if pd.api.types.is_bool_dtype(series):
        return "categorical"
    if pd.api.types.is_numeric_dtype(series):
        return "numeric"
    _, missing = category_strings(series.to_numpy(dtype=object))
    present = series[~missing]
    if present.empty:
        return "categorical"
    if pd.api.types.is_bool_dtype(present.infer_objects()):
        return "categorical"
    parsed = pd.to_numeric(present.astype(str).str.strip(), errors="coerce").to_numpy(
        dtype=np.float64
    )
    share = np.count_nonzero(np.isfinite(parsed)) / parsed.size
    return "numeric" if share >= NUMERIC_SHARE_FOR_INFERENCE else "categorical"
