"""What a model's windows are compared against: the `Baseline` fitted from its reference.

Each feature's, the prediction's and the outcome's type, reference and drift method, the
multivariate reference, the hash that tags the counts binned against it, and where each
binned entry sits in a bucket's arrays; saved and restored as a dict (a ``from_stream``
reference is checkpointed, not refitted).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import numpy as np

from exporter.config import ModelConfig
from exporter.stats.drift import choose_method
from exporter.stats.multivariate import MultivariateReference
from exporter.stats.profile import CategoricalProfile, NumericProfile, Profile
from exporter.stats.reference import (
    CategoricalReference,
    NumericReference,
    reference_from_dict,
    reference_to_dict,
)

__all__ = [
    "MONITOR_FINE_BINS",
    "STATE_FORMAT",
    "Baseline",
    "FeatureSpec",
    "Layout",
    "LayoutEntry",
    "TargetSpec",
    "UnivariateReference",
    "baseline_from_dict",
    "baseline_to_dict",
    "finished",
    "unfitted_baseline",
    "with_bounds",
    "with_method",
]

# About 6 KB per numeric feature and bucket instead of 24 KB with the statistics
# module's default 1000 (module docstring of `exporter.monitor.monitor`).
MONITOR_FINE_BINS = 250
STATE_FORMAT = 1

UnivariateReference = NumericReference | CategoricalReference


@dataclass(frozen=True)
class FeatureSpec:
    """One monitored feature: its type, where the type came from, and its reference.

    `type` is None only for a feature whose type waits for a ``from_stream`` reference.
    `method` is the drift method that decides `drifted` (``auto`` and numeric-only methods
    on categorical features resolved), `method_note` says why when it is not the
    configured one. `lower`/`upper` are the out-of-range bounds in force.
    """

    name: str
    type: str | None
    type_source: str  # "configured" | "inferred from the reference" | "implied by min/max" | ""
    ref: UnivariateReference | None = None
    method: str | None = None
    method_note: str = ""
    lower: float | None = None
    upper: float | None = None
    bounds_source: str = ""


@dataclass(frozen=True)
class TargetSpec:
    """The prediction or the outcome: its kind and reference (if the reference has it)."""

    kind: str  # "numeric" | "categorical"
    what: str  # e.g. "score", "class label", "value"
    ref: UnivariateReference | None = None
    method: str | None = None
    method_note: str = ""


@dataclass(frozen=True)
class LayoutEntry:
    """Where one binned feature (or the prediction) lives in a bucket's slot counts and
    open-interval sums: ``length`` slots from ``base`` and, numeric only,
    ``open_length`` open intervals from ``open_base``."""

    section: str  # "features" | "prediction"
    name: str  # the feature's name; "" for the prediction
    numeric: bool
    base: int
    length: int
    open_base: int = 0
    open_length: int = 0

    def profile(self, slots: np.ndarray, opens: np.ndarray) -> Profile:
        """This entry's profile, sliced out of the whole layout's counts."""
        counts = slots[self.base : self.base + self.length]
        if self.numeric:
            return NumericProfile(counts, opens[self.open_base : self.open_base + self.open_length])
        return CategoricalProfile(counts)


@dataclass(frozen=True)
class Layout:
    """Where each binned entry lives in the flat slot and open-interval index spaces."""

    entries: tuple[LayoutEntry, ...]
    slots: int  # total slots; index `slots` is the sentinel of rows not binned
    opens: int  # total open intervals

    @functools.cached_property
    def open_slots(self) -> np.ndarray:
        """The slot of each open interval (2r of a numeric entry's local slots): a row's
        distance is summed per slot and the open intervals read those sums."""
        return np.concatenate(
            [
                entry.base + 2 * np.arange(entry.open_length)
                for entry in self.entries
                if entry.numeric
            ]
            or [np.zeros(0, dtype=np.intp)]
        )


@dataclass(frozen=True)
class Baseline:
    """Everything fitted from the reference; replaced whole (never mutated) once fitted."""

    features: tuple[FeatureSpec, ...]
    prediction: TargetSpec
    outcome: TargetSpec | None  # None: outcome drift not possible for this task
    multivariate: MultivariateReference | None = None
    reference_rows: int | None = None  # None: no reference (yet)
    tag: str | None = None  # hash of what was fitted; None without a reference
    layout: Layout | None = None  # where the binned entries sit in a bucket's arrays

    @property
    def fitted(self) -> bool:
        return self.tag is not None


_Spec = TypeVar("_Spec", FeatureSpec, TargetSpec)


def unfitted_baseline(model: ModelConfig, names: list[str]) -> Baseline:
    """The baseline before any reference: the features `names` with their configured
    type and bounds, and the prediction and outcome kinds of the model's task."""
    configured = {f.name: f for f in model.features}
    specs = []
    for name in names:
        config = configured.get(name)
        kind, source = None, ""
        if config is not None and config.type is not None:
            kind, source = config.type, "configured"
        elif config is not None and (config.min is not None or config.max is not None):
            kind, source = "numeric", "implied by min/max"
        elif model.reference is None:
            kind, source = "numeric", "default: no reference to infer the type from"
        lower = config.min if config is not None else None
        upper = config.max if config is not None else None
        bounded = lower is not None or upper is not None
        specs.append(
            FeatureSpec(
                name,
                kind,
                source,
                lower=lower,
                upper=upper,
                bounds_source="configured" if bounded else "",
            )
        )
    prediction = (
        TargetSpec("categorical", "class label")
        if model.task == "multiclass"
        else TargetSpec("numeric", "score" if model.task == "binary" else "value")
    )
    outcome = {
        "binary": TargetSpec("categorical", "label (1 = positive class)"),
        "multiclass": TargetSpec("categorical", "class label"),
        "regression": TargetSpec("numeric", "value"),
    }.get(model.task)
    return Baseline(tuple(specs), prediction, outcome)


def with_method(spec: _Spec, configured: str) -> _Spec:
    """`spec` with the drift method that decides for its reference (`choose_method`)."""
    ref = spec.ref
    if ref is None:
        return spec
    method, note = choose_method(configured, isinstance(ref, CategoricalReference), ref.n)
    return replace(spec, method=method, method_note=note)


def with_bounds(spec: FeatureSpec) -> FeatureSpec:
    """A numeric feature's out-of-range bounds: configured ones, else the reference's."""
    if spec.type != "numeric" or not isinstance(spec.ref, NumericReference):
        return spec
    lower = spec.lower if spec.lower is not None else spec.ref.min
    upper = spec.upper if spec.upper is not None else spec.ref.max
    source = {
        (True, True): "configured",
        (False, False): "reference range",
    }.get((spec.lower is not None, spec.upper is not None), "configured + reference range")
    return replace(spec, lower=lower, upper=upper, bounds_source=source)


def finished(baseline: Baseline, fine_bins: int) -> Baseline:
    """`baseline` with its tag and the layout of its binned entries."""
    tagged = replace(baseline, tag=_baseline_tag(baseline, fine_bins))
    targets = [*baseline.features, baseline.prediction, baseline.outcome]
    for spec in targets:  # the derived lookups are part of fitting, not of the first chunk
        if spec is not None and isinstance(spec.ref, NumericReference):
            _ = spec.ref.cell_index, spec.ref.psi_bin_of_slot
    return replace(tagged, layout=_make_layout(tagged))


def _make_layout(baseline: Baseline) -> Layout | None:
    if not baseline.fitted:
        return None
    entries: list[LayoutEntry] = []
    slots = opens = 0
    named: list[tuple[str, str, UnivariateReference | None]] = [
        ("features", s.name, s.ref) for s in baseline.features
    ]
    named.append(("prediction", "", baseline.prediction.ref))
    for section, name, ref in named:
        if isinstance(ref, NumericReference):
            points = len(ref.fine_edges)
            entries.append(
                LayoutEntry(section, name, True, slots, 2 * points + 1, opens, points + 1)
            )
            slots += 2 * points + 1
            opens += points + 1
        elif isinstance(ref, CategoricalReference):
            length = len(ref.categories) + 2
            entries.append(LayoutEntry(section, name, False, slots, length))
            slots += length
    return Layout(tuple(entries), slots, opens)


def _ref_dict(ref: Any) -> dict[str, Any] | None:
    return reference_to_dict(ref) if ref is not None else None


def baseline_to_dict(baseline: Baseline) -> dict[str, Any]:
    """What was fitted, as plain data (the checkpoint of a ``from_stream`` reference)."""
    return {
        "features": [
            {
                "name": spec.name,
                "type": spec.type,
                "type_source": spec.type_source,
                "ref": _ref_dict(spec.ref),
            }
            for spec in baseline.features
        ],
        "prediction": _ref_dict(baseline.prediction.ref),
        "outcome": _ref_dict(baseline.outcome.ref) if baseline.outcome is not None else None,
        "multivariate": _ref_dict(baseline.multivariate),
        "reference_rows": baseline.reference_rows,
    }


def baseline_from_dict(
    data: Mapping[str, Any], initial: Baseline, model: ModelConfig, fine_bins: int
) -> Baseline:
    """The baseline `baseline_to_dict` saved, on the `initial` (unfitted) one of `model`."""
    method = model.drift.method
    by_name = {f["name"]: f for f in data["features"]}
    specs = []
    for spec in initial.features:
        saved = by_name.get(spec.name)
        if saved is None:
            specs.append(spec)
            continue
        ref = reference_from_dict(saved["ref"]) if saved["ref"] is not None else None
        fitted = replace(spec, type=saved["type"], type_source=saved["type_source"], ref=ref)
        specs.append(with_bounds(with_method(fitted, method)))

    def target(spec: TargetSpec | None, saved: Any) -> TargetSpec | None:
        if spec is None or saved is None:
            return spec
        return with_method(replace(spec, ref=reference_from_dict(saved)), method)

    prediction = target(initial.prediction, data["prediction"])
    assert prediction is not None
    multivariate = data["multivariate"]
    baseline = Baseline(
        tuple(specs),
        prediction,
        target(initial.outcome, data["outcome"]),
        reference_from_dict(multivariate) if multivariate is not None else None,  # type: ignore[arg-type]
        reference_rows=data["reference_rows"],
    )
    return finished(baseline, fine_bins)


def _baseline_tag(baseline: Baseline, fine_bins: int) -> str:
    """A short hash of everything fitted: binned counts are only ever summed under it."""
    document = {"format": STATE_FORMAT, "fine_bins": fine_bins, **baseline_to_dict(baseline)}
    text = json.dumps(document, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
