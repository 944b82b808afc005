"""Golden `/metrics` and `check` outputs: the behaviour a redesign must not move.

The logs under tests/golden/logs cover every task, window length, feature type and drift
method, with rejected lines and late, missing and unknown outcomes. The exporter reads them
with the clock fixed, and every sample is compared with tests/golden/metrics.prom, as
node_exporter pins its collectors' output. Samples that measure this run rather than the
data (durations, wall-clock times, the checkpoint) are left out.

After an intended change of output: ``UPDATE_GOLDENS=1 python -m pytest tests/e2e/test_golden.py``
and review the diff of the .prom and .txt files.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from support import read_everything

from exporter.cli import main as cli_main
from exporter.config import load_config

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
NOW = 1_767_830_460.0  # 2026-01-08T00:01:00Z, a minute after the last row
UPDATE = os.environ.get("UPDATE_GOLDENS") == "1"
# what this run, not the data, decides
RUN_DEPENDENT = (
    "mlmodel_exporter_checkpoint",
    "mlmodel_exporter_last_checkpoint",
    "mlmodel_exporter_build_info",
    "mlmodel_exporter_tls",
)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(GOLDEN / "logs", tmp_path / "logs")
    shutil.copy(GOLDEN / "config.yml", tmp_path / "config.yml")
    return tmp_path


def exported_text(config_path: Path) -> str:
    """What `/metrics` shows after the exporter has read every log once at NOW."""
    return generate_latest(read_everything(load_config(config_path), now=NOW)).decode()


def pinned_lines(text: str, workdir: Path) -> list[str]:
    """The data-dependent samples, one `name{labels} value` line each, sorted."""
    text = text.replace(str(workdir), "<DIR>")
    lines = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(RUN_DEPENDENT):
                continue
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            lines.append(f"{sample.name}{{{labels}}} {sample.value!r}")
    return sorted(lines)


def parse_pinned(lines: list[str]) -> dict[str, float]:
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines}


def same_value(a: float, b: float) -> bool:
    # Summation order may change in a redesign; 1e-9 relative is far below any printed figure.
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def test_metrics_match_the_golden_file(workdir: Path) -> None:
    golden = GOLDEN / "metrics.prom"
    lines = pinned_lines(exported_text(workdir / "config.yml"), workdir)
    if UPDATE:
        golden.write_text("\n".join(lines) + "\n")
    expected = parse_pinned(golden.read_text().splitlines())
    actual = parse_pinned(lines)
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = [
        f"{key}: golden {expected[key]!r}, now {actual[key]!r}"
        for key in sorted(set(expected) & set(actual))
        if not same_value(expected[key], actual[key])
    ]
    summary = f"{len(missing)} missing, {len(extra)} extra, {len(changed)} changed"
    assert not missing, f"{summary}; missing: {missing[:10]}"
    assert not extra, f"{summary}; extra: {extra[:10]}"
    assert not changed, f"{summary}; changed: {changed[:10]}"


def test_golden_case_covers_every_task_window_type_and_method() -> None:
    text = (GOLDEN / "metrics.prom").read_text()
    for task_metric in ("mlmodel_accuracy_ratio", "mlmodel_mae", "mlmodel_f1_ratio"):
        assert task_metric in text
    for window in ("1h", "1d", "7d"):
        assert f'window="{window}"' in text
    for method in ("psi", "ks", "wasserstein", "jensenshannon", "chisquare"):
        assert f'method="{method}"' in text, method
    for reason in ("parse", "timestamp"):
        assert f'reason="{reason}"' in text, reason


def test_check_output_matches_the_golden_file(workdir: Path) -> None:
    golden = GOLDEN / "check.txt"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli_main(["check", "--config.file", str(workdir / "config.yml")]) == 0
    text = out.getvalue().replace(str(workdir), "<DIR>")
    if UPDATE:
        golden.write_text(text)
    assert text == golden.read_text()
