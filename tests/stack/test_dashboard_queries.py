"""Every Grafana dashboard is valid, and every panel query returns data from a real
Prometheus scraping the demo (with the shipped recording rules).

Grafana's variables are substituted as Grafana would for one selection: ``$model`` /
``${model}`` -> a demo model, ``$model_version`` -> ``.*`` (All), ``$window`` -> ``5m``,
``$__rate_interval`` -> ``1m``, ``$__range`` -> ``5m``, ``$__interval`` -> ``15s``. A panel
whose queries name classification metrics (accuracy, precision, ...) is about the demo's
binary model, one that names regression metrics (MAE, RMSE, ...) about its regression model;
every other panel that uses ``$model`` must return data for each demo model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from stack_support import DemoStack
from support import REPO, SHARED, wait_for

DASHBOARDS = sorted((REPO / "grafana" / "dashboards").glob("*.json"))
SCHEMA = SHARED / "schemas" / "grafana-dashboard.jsonschema.json"
DEADLINE = 150.0
"""Seconds the demo gets to produce every panel's data (outcomes come 20-30 s after their
predictions; drift figures need drift.min_rows rows in a window, which the regression
model's 5m window reaches at about 80 s; rates need two scrapes)."""

FIXED_VARIABLES = {
    "model_version": ".*",
    "window": "5m",
    "__rate_interval": "1m",
    "__range": "5m",
    "__interval": "15s",
}
CLASSIFICATION = re.compile(
    r"mlmodel_(accuracy|precision|recall|f1|roc_auc)_ratio|mlmodel_log_loss|mlmodel_confusion"
    r'|metric=~?"[^"]*\b(accuracy|precision|recall|f1|roc_auc)\b'
)
REGRESSION = re.compile(r'mlmodel_(mae|rmse|mape_ratio|r2)\b|metric=~?"[^"]*\b(mae|rmse|mape)\b')
VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' collapsed panels included."""
    stack = list(dashboard.get("panels", []))
    while stack:
        panel = stack.pop(0)
        yield panel
        stack[:0] = panel.get("panels", [])


def substitute(expr: str, model: str) -> str:
    values = {**FIXED_VARIABLES, "model": model}

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise AssertionError(f"unknown variable ${name} in {expr!r}")
        return values[name]

    return VARIABLE.sub(replace, expr)


def models_for(panel: dict[str, Any], models: dict[str, str]) -> list[str]:
    """The demo models whose data the panel must show (see the module docstring)."""
    exprs = " ".join(t.get("expr", "") for t in panel.get("targets", []))
    if CLASSIFICATION.search(exprs):
        return [name for name, task in models.items() if task in ("binary", "multiclass")]
    if REGRESSION.search(exprs):
        return [name for name, task in models.items() if task == "regression"]
    return list(models)


def queries(models: dict[str, str]) -> list[tuple[str, str, str]]:
    """(dashboard panel target, model, PromQL) for every query of every dashboard."""
    result = []
    for path in DASHBOARDS:
        for panel in panels(load(path)):
            for target in panel.get("targets", []):
                expr = target.get("expr")
                if not expr or target.get("hide"):
                    continue
                title = f"panel {panel.get('id')} {panel.get('title')!r}"
                name = f"{path.name} {title} {target['refId']}"
                uses_model = re.search(r"\$\{?model\b(?!_)|\[\[model\]\]", expr)
                for model in models_for(panel, models) if uses_model else [""]:
                    result.append((name, model, substitute(expr, model or "-")))
    return result


def test_there_are_dashboards() -> None:
    assert DASHBOARDS, "no grafana/dashboards/*.json"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_valid_against_the_schema(path: Path) -> None:
    if not SCHEMA.is_file():
        pytest.skip(f"{SCHEMA} not found: shared/ must sit beside the repository")
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validate(load(path), schema)


@pytest.mark.slow
def test_every_dashboard_has_queries_for_both_demo_models(demo_stack: DemoStack) -> None:
    """The demo has one classifier and one regression, and each has panels of its own."""
    used = {model for _, model, _ in queries(demo_stack.models) if model}
    assert set(demo_stack.models.values()) == {"binary", "regression"}
    assert used == set(demo_stack.models)


@pytest.mark.slow
def test_every_panel_query_returns_data(demo_stack: DemoStack) -> None:
    prometheus = demo_stack.prometheus
    pending = queries(demo_stack.models)
    assert pending
    empty: dict[str, str] = {}

    def poll() -> bool:
        empty.clear()
        for name, model, expr in pending:
            if not prometheus.query(expr):
                empty[f"{name} [{model}]" if model else name] = expr
        return not empty

    try:
        wait_for(poll, timeout=demo_stack.remaining(DEADLINE), what="data for every panel query")
    except AssertionError:
        lines = "\n".join(f"  {name}: {expr}" for name, expr in sorted(empty.items()))
        pytest.fail(f"{len(empty)} of {len(pending)} panel queries return no data:\n{lines}")


@pytest.mark.slow
def test_annotation_queries_run(demo_stack: DemoStack) -> None:
    """Annotation queries (firing alerts) may be empty, but they must be valid PromQL."""
    for path in DASHBOARDS:
        for annotation in load(path).get("annotations", {}).get("list", []):
            if annotation.get("expr"):
                for model in demo_stack.models:
                    demo_stack.prometheus.query(substitute(annotation["expr"], model))


@pytest.mark.slow
def test_variable_queries_list_the_demo_models_versions_and_windows(
    demo_stack: DemoStack,
) -> None:
    """``label_values(selector, label)`` variables, as Grafana runs them (series API)."""
    prometheus = demo_stack.prometheus
    checked = 0
    for path in DASHBOARDS:
        for variable in load(path).get("templating", {}).get("list", []):
            if variable.get("type") != "query":
                continue
            query = variable.get("query")
            query = query.get("query") if isinstance(query, dict) else query
            match = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\)\s*", query or "")
            assert match, f"{path.name} variable {variable['name']}: {query!r}"
            selector, label = match.groups()
            for model in demo_stack.models:
                selected = substitute(selector, model)

                def values(selected: str = selected, label: str = label) -> set[str]:
                    series = prometheus.api("series", **{"match[]": selected})
                    return {s[label] for s in series if label in s}

                found = wait_for(
                    values,
                    timeout=demo_stack.remaining(DEADLINE),
                    what=f"{variable['name']} values for {model}",
                )
                if variable["name"] == "model":
                    assert set(demo_stack.models) <= found
                elif variable["name"] == "window":
                    assert found == {"5m", "1h"}
                elif variable["name"] == "model_version":
                    assert found == {"1"}
                checked += 1
    assert checked
