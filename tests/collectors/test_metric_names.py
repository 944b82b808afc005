"""Every ``mlmodel_*`` name that grafana/ and prometheus/ use exists: in the demo's scrape,
or as a recording rule defined in prometheus/rules/.

Names are read as whole PromQL tokens, colons included, so that a recording rule such as
``model_window:mlmodel_window_outcomes:gte_min_outcomes`` is checked as itself and not as
``mlmodel_window_outcomes``. A token ending in ``_`` or ``:`` is a glob or a prose fragment
(``mlmodel_*``, ``mlmodel_{mae,rmse}``), not a name, and is skipped.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from stack_support import RULE_FILES, DemoStack, load_yaml
from support import REPO, parse_samples, require_binary, wait_for

DIRECTORIES = (REPO / "grafana", REPO / "prometheus")
SUFFIXES = {".json", ".yml", ".yaml", ".tmpl"}
TOKEN = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
DEADLINE = 150.0
"""Seconds the demo gets to expose every name (quality figures need outcomes, 20-30 s after
their predictions; drift figures need drift.min_rows rows in a window: about 80 s)."""


def files() -> list[Path]:
    return sorted(
        path
        for directory in DIRECTORIES
        for path in directory.rglob("*")
        if path.is_file() and path.suffix in SUFFIXES
    )


def used_names() -> dict[str, list[str]]:
    """``mlmodel_*`` name (or recording rule naming one) -> where it is used (file:line)."""
    used: dict[str, list[str]] = {}
    for path in files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for token in TOKEN.findall(line):
                if "mlmodel_" not in token or token.endswith(("_", ":")):
                    continue
                used.setdefault(token, []).append(f"{path.relative_to(REPO)}:{number}")
    return used


def recording_rules() -> set[str]:
    return {
        rule["record"]
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def scraped_names(stack: DemoStack) -> set[str]:
    return {name for name, _ in parse_samples(stack.demo.metrics_text())}


def test_names_are_found_where_expected() -> None:
    """The scanner itself: it sees metric names, recording rules and counters' _total."""
    used = used_names()
    assert "mlmodel_alert_threshold" in used
    assert "model_window:mlmodel_window_outcomes:gte_min_outcomes" in used
    assert "mlmodel_predictions_total" in used
    assert all(":" in name for name in recording_rules())
    assert recording_rules() <= set(used), "a recording rule nothing uses"


@pytest.mark.slow
def test_every_mlmodel_name_exists_in_the_demo_scrape_or_the_recording_rules(
    demo_stack: DemoStack,
) -> None:
    used = used_names()
    assert used
    rules = recording_rules()
    missing: dict[str, list[str]] = {}

    def all_present() -> bool:
        scraped = scraped_names(demo_stack)
        missing.clear()
        missing.update({n: w for n, w in used.items() if n not in scraped and n not in rules})
        return not missing

    try:
        wait_for(
            all_present,
            timeout=demo_stack.remaining(DEADLINE),
            what="every mlmodel_* name in the demo scrape",
        )
    except AssertionError:
        lines = "\n".join(
            f"  {name}: {', '.join(where[:3])}{' ...' if len(where) > 3 else ''}"
            for name, where in sorted(missing.items())
        )
        pytest.fail(
            f"{len(missing)} mlmodel_* names are neither in the demo's /metrics nor recording "
            f"rules of prometheus/rules/:\n{lines}"
        )


@pytest.mark.slow
def test_recording_rules_return_data_from_the_demo(demo_stack: DemoStack) -> None:
    """Each recording rule that the rules and the dashboard use is evaluated to data."""
    prometheus = demo_stack.prometheus
    for rule in sorted(recording_rules()):
        wait_for(
            lambda rule=rule: prometheus.query(rule),
            timeout=demo_stack.remaining(DEADLINE),
            what=rule,
        )


@pytest.mark.slow
def test_demo_scrape_with_every_family_passes_promtool_check_metrics(demo_stack: DemoStack) -> None:
    """Once drift and quality figures exist, the demo's whole /metrics lints clean."""
    promtool = require_binary("promtool")

    def drift_exported() -> str | None:
        text = demo_stack.demo.metrics_text()
        return text if "mlmodel_feature_drift_score{" in text else None

    text = wait_for(drift_exported, timeout=demo_stack.remaining(DEADLINE), what="drift figures")
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""
