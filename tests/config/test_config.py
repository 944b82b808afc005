"""Config errors name their key path, all at once, exit 2, and never show a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exporter.config import ConfigError, load_config, parse_duration


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter.cli", "check", "--config.file", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_several_mistakes_are_each_named_by_key_path(tmp_path: Path) -> None:
    """Every problem in one file is reported at once, each with its key path, exit 2."""
    config = tmp_path / "config.yml"
    config.write_text(
        """
state_dir: ./state
max_line_bytes: -5
models:
  - name: credit
    task: binray
    predictions: {path: logs/p.csv, format: xml}
    features:
      age: nmeric
      income: {type: numeric, min: 10, max: 1}
    windows: [1h, soon]
    thresholds: {accuracy: 1.5, stale_after: never, recal: 0.8}
    drift: {method: magic}
  - task: regression
    predictions: {path: logs/r.csv}
    colums: {timestamp: ts}
"""
    )
    result = check(config)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    expected = [
        "max_line_bytes: must be >= 64",
        'models[0].task: unknown task "binray"',
        'models[0].predictions.format: unknown format "xml"',
        'models[0].features.age: unknown type "nmeric" (did you mean "numeric"?)',
        "models[0].features.income.min: must be <= max",
        "models[0].windows[1]: expected a duration",
        "models[0].thresholds.accuracy: must be <= 1",
        "models[0].thresholds.stale_after: expected a duration",
        'models[0].thresholds.recal: unknown key (did you mean "recall"?)',
        'models[0].drift.method: unknown method "magic"',
        "models[1].name: required",
        'models[1].colums: unknown key (did you mean "columns"?)',
    ]
    for message in expected:
        assert message in result.stderr, message
    assert len(result.stderr.strip().splitlines()) == len(expected)


def test_yaml_syntax_error_exits_2_without_traceback(tmp_path: Path) -> None:
    """A YAML syntax error is one clear line, not a stack trace."""
    config = tmp_path / "config.yml"
    config.write_text("models:\n  - name: [unclosed\n")
    result = check(config)
    assert result.returncode == 2
    assert "invalid YAML" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_exits_2_without_traceback(tmp_path: Path) -> None:
    """A config path that does not exist is named in the error."""
    result = check(tmp_path / "nope.yml")
    assert result.returncode == 2
    assert "nope.yml: config file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_minimal_config_is_three_keys_and_paths_resolve_against_its_folder(tmp_path: Path) -> None:
    """name, task and predictions.path suffice; relative paths resolve beside the file."""
    folder = tmp_path / "conf"
    folder.mkdir()
    config_file = folder / "c.yml"
    config_file.write_text("models: [{name: m, task: binary, predictions: {path: p.csv}}]\n")
    config = load_config(config_file)
    (model,) = config.models
    assert model.predictions.path == str(folder / "p.csv")
    assert model.predictions.format == "csv"
    assert config.state_dir == folder / "state"
    assert [w.name for w in model.windows] == ["1h", "1d", "7d"]
    assert model.thresholds["min_outcomes"] == 100
    result = check(config_file)
    assert result.returncode == 0, result.stderr
    assert "model 'm' (binary)" in result.stdout


def test_unknown_top_level_key_is_an_error(tmp_path: Path) -> None:
    """A typo at the top level is caught, not ignored."""
    config_file = tmp_path / "c.yml"
    config_file.write_text("modles: []\n")
    with pytest.raises(ConfigError) as err:
        load_config(config_file)
    assert 'modles: unknown key (did you mean "models"?)' in err.value.problems
    assert "models: required: a list with at least one model" in err.value.problems


def test_retrain_command_must_be_argv(tmp_path: Path) -> None:
    """The retraining command is a list, never a shell string."""
    config_file = tmp_path / "c.yml"
    config_file.write_text(
        "models: [{name: m, task: binary, predictions: p.csv}]\n"
        "retrain: {token_file: t, command: 'python retrain.py'}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(config_file)
    assert any(p.startswith("retrain.command: expected a list") for p in err.value.problems)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("1h30m", 5400), ("7d", 604800), (45, 45), ("500ms", 0.5)]
)
def test_durations_follow_prometheus(text: object, seconds: float) -> None:
    """Durations are written as Prometheus writes them, or as plain seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "-5m", 0, True, "h"])
def test_bad_durations_are_rejected(text: object) -> None:
    """Anything else is a clear error."""
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
