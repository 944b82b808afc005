"""Validates a model's ``drift`` section: the method comparing each window with the
reference, its bins, the fewest rows a window needs, and the threshold of each method."""

from __future__ import annotations

from exporter.config.limits import DRIFT_BINS_RANGE, MIN_ROWS_RANGE
from exporter.config.quoting import quote
from exporter.config.schema import DEFAULT_DRIFT_THRESHOLDS, DRIFT_METHODS, DriftConfig
from exporter.config.values import NON_NEGATIVE, Checker, given, one_of


def check_drift(check: Checker, raw: object, at: str) -> DriftConfig:
    d = check.mapping(raw, at, ("method", "bins", "min_rows", "thresholds"))
    method = d.get("method")
    if "method" in d and not one_of(method, DRIFT_METHODS):
        expected = ", ".join(DRIFT_METHODS)
        check.error(f"{at}.method", f"unknown method {quote(method)} (expected one of {expected})")
        method = None
    bins = check.integer(d["bins"], f"{at}.bins", DRIFT_BINS_RANGE) if "bins" in d else None
    min_rows = (
        check.integer(d["min_rows"], f"{at}.min_rows", MIN_ROWS_RANGE) if "min_rows" in d else None
    )
    thresholds = dict(DEFAULT_DRIFT_THRESHOLDS)
    at_thresholds = f"{at}.thresholds"
    for key, value in check.mapping(d.get("thresholds"), at_thresholds, tuple(thresholds)).items():
        number = check.number(value, f"{at_thresholds}.{key}", NON_NEGATIVE)
        if number is not None:
            thresholds[key] = number
    return DriftConfig(**given(method=method, bins=bins, min_rows=min_rows), thresholds=thresholds)
