"""Validates a model's inputs: the ``features`` watched (name, type, bounds) and the
``reference`` they are compared with (a file, or the first rows of the stream)."""

from __future__ import annotations

from typing import Any

from exporter.config.limits import FROM_STREAM_RANGE, MAX_FEATURES
from exporter.config.quoting import did_you_mean, join, kind, quote
from exporter.config.schema import FEATURE_TYPES, FeatureConfig, ReferenceConfig
from exporter.config.values import Checker, one_of

_FEATURE_KEYS = ("type", "min", "max")


def check_features(check: Checker, raw: object, at: str) -> tuple[FeatureConfig, ...]:
    """Features as a mapping of name to type (or to ``{type, min, max}``), or as a list of
    names whose types the reference gives."""
    if raw is None:
        return ()
    if not isinstance(raw, list | dict):
        check.error(at, f"expected a mapping of feature name to type, got {kind(raw)}")
        return ()
    if len(raw) > MAX_FEATURES:
        check.error(at, f"at most {MAX_FEATURES:,} features, got {len(raw):,}")
        return ()
    specs = _named(check, raw, at) if isinstance(raw, list) else raw
    features = (_feature(check, name, spec, join(at, str(name))) for name, spec in specs.items())
    return tuple(feature for feature in features if feature is not None)


def _named(check: Checker, names: list[Any], at: str) -> dict[str, None]:
    """A bare list of names: each type left to the reference."""
    specs: dict[str, None] = {}
    for index, name in enumerate(names):
        if isinstance(name, str):
            specs[name] = None
        else:
            check.error(f"{at}[{index}]", f"expected a feature name, got {kind(name)}")
    return specs


def _feature(check: Checker, name: object, spec: object, at: str) -> FeatureConfig | None:
    if check.name(name, at) is None:
        return None
    given = {"type": spec} if isinstance(spec, str) or spec is None else spec
    f = check.mapping(given, at, _FEATURE_KEYS)
    feature_type = f.get("type")
    if feature_type is not None and not one_of(feature_type, FEATURE_TYPES):
        hint = did_you_mean(feature_type, FEATURE_TYPES) if isinstance(feature_type, str) else ""
        check.error(at, f"unknown type {quote(feature_type)}{hint}")
        return None
    low = check.number(f["min"], f"{at}.min") if "min" in f else None
    high = check.number(f["max"], f"{at}.max") if "max" in f else None
    if (low is not None or high is not None) and feature_type == "categorical":
        check.error(at, "min/max only apply to numeric features")
    if low is not None and high is not None and low > high:
        check.error(f"{at}.min", f"must be <= max ({high:g})")
    return FeatureConfig(str(name), feature_type, low, high)


def check_reference(check: Checker, raw: object, at: str) -> ReferenceConfig | None:
    """Exactly one of ``path`` (a file) and ``from_stream`` (a number of rows)."""
    r = check.mapping(raw, at, ("path", "from_stream"))
    if not isinstance(raw, dict):
        return None
    if ("path" in r) == ("from_stream" in r):
        check.error(at, "give exactly one of path or from_stream")
        return None
    if "path" in r:
        return ReferenceConfig(path=check.path(r["path"], f"{at}.path"))
    rows = check.integer(r["from_stream"], f"{at}.from_stream", FROM_STREAM_RANGE)
    return ReferenceConfig(from_stream=rows)
