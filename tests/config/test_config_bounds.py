"""Config limits: no config, hostile or mistaken, takes more than a moment to check, makes
the exporter unable to start, or floods the terminal. YAML bombs, deep nesting and huge
numbers are one short error each (exit 2, no traceback); every count, length and value
that sizes the exporter's work has an upper bound, reported with its key path; a source
that could match a file in state_dir is refused."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from exporter.config import ConfigError, config_from_mapping, load_config

# The documented limits (docs/configuration.md, Limits), written out so that this
# file also runs against code without them.
MAX_CONFIG_BYTES = 1 << 20
MAX_PROBLEMS = 100
MAX_YAML_DEPTH = 50

MODEL = "  - name: m\n    task: binary\n    predictions: {path: p.csv}\n"
MEMORY_LIMIT = 1536 << 20  # the bombs used to take 3 GB; a check needs a few hundred MB


def write(directory: Path, text: str) -> Path:
    config = directory / "config.yml"
    config.write_text(text, encoding="utf-8")
    return config


def problems_of(directory: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_config(write(directory, text))
    return raised.value.problems


def check(config: Path, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    """``ml-model-exporter check`` in a process with bounded memory; (result, seconds)."""
    return cli("check", "--config.file", str(config), timeout=timeout)


def cli(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    """``ml-model-exporter ARGS`` in a process with bounded memory; (result, seconds)."""

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "exporter.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=limit_memory,  # only setrlimit, before exec
        env=env,
    )
    return result, time.monotonic() - start


def laughs(levels: int, width: int, use: str) -> str:
    """A "billion laughs" config: ``width`` aliases of ``width`` aliases of ... strings,
    ``levels`` deep, the last one used as ``use`` (``task`` or ``windows``) of a model."""
    anchors = ["lol" + ", lol" * (width - 1)]
    anchors += [", ".join([f"*l{level - 1}"] * width) for level in range(1, levels)]
    lines = ["laughs:"] + [f"  - &l{level} [{items}]" for level, items in enumerate(anchors)]
    lines += ["models:", "  - name: m", "    predictions: {path: p.csv}"]
    top = f"*l{levels - 1}"
    lines += [f"    task: {top}"] if use == "task" else ["    task: binary", f"    windows: {top}"]
    return "\n".join(lines) + "\n"


# --- YAML: bombs, nesting, huge numbers, the file size ---------------------------------------


@pytest.mark.parametrize("use", ["task", "windows"])
def test_a_yaml_bomb_is_refused_at_once_in_one_short_line(tmp_path: Path, use: str) -> None:
    """Aliases expanding past the node limit (9^7 strings) are refused while parsing: fast,
    and the message does not render the value (it used to quote all of it, 34 MB here)."""
    start = time.monotonic()
    problems = problems_of(tmp_path, laughs(7, 9, use))
    assert time.monotonic() - start < 2
    assert len(problems) == 1
    assert "values once aliases are expanded" in problems[0]
    assert len(problems[0]) < 500


@pytest.mark.parametrize("use", ["task", "windows"])
def test_an_accepted_alias_tree_is_never_rendered_in_a_message(tmp_path: Path, use: str) -> None:
    """A bad value under the node limit (9^5 strings) is quoted by a short prefix only."""
    problems = problems_of(tmp_path, laughs(5, 9, use))
    assert any(p.startswith(f"models[0].{use}") for p in problems), problems
    assert all(len(p) < 500 for p in problems), [len(p) for p in problems]


@pytest.mark.parametrize("use", ["task", "windows"])
def test_check_exits_2_on_a_billion_laughs(tmp_path: Path, use: str) -> None:
    """The classic bomb (10^9 strings) as task or windows: ``check`` exits 2 within
    seconds, one short line, no traceback (it used to take 3 GB and 35 s, then pass)."""
    result, seconds = check(write(tmp_path, laughs(9, 10, use)))
    assert result.returncode == 2, result.stderr[-300:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "values once aliases are expanded" in lines[0]
    assert len(lines[0]) < 500
    assert seconds < 15


@pytest.mark.parametrize(
    "nested", ["[" * 10_000 + "]" * 10_000, "{a: " * 10_000 + "1" + "}" * 10_000]
)
def test_check_exits_2_on_deep_nesting(tmp_path: Path, nested: str) -> None:
    """10,000 nested lists or mappings: exit 2, one line saying the nesting is too deep
    (libyaml's limit of 1,000 may speak first), no traceback; yaml's own recursion used to
    end in a RecursionError, exit 1."""
    result, _ = check(write(tmp_path, f"models: {nested}\n"))
    assert result.returncode == 2, result.stderr[-300:]
    assert "Traceback" not in result.stderr
    assert "invalid YAML" in result.stderr
    assert "nesting depth" in result.stderr or "nested deeper than 50 levels" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("parser", ["python", "libyaml"])
def test_both_yaml_parsers_apply_the_bounds(parser: str) -> None:
    """With or without libyaml, the loader refuses depth past 50, a bomb, a long integer."""
    import yaml  # noqa: PLC0415 - only this test looks inside the loader

    from exporter.config.yaml_loader import BoundedLoader, BoundedPyLoader  # noqa: PLC0415

    if parser == "libyaml" and not yaml.__with_libyaml__:
        pytest.skip("PyYAML built without libyaml")
    loader = BoundedPyLoader if parser == "python" else BoundedLoader
    deep = "a: " + "[" * 60 + "]" * 60
    fine = "a: " + "[" * 49 + "]" * 49
    for text, message in [
        (deep, "nested deeper than 50 levels"),
        (laughs(7, 9, "task"), "more than 1,000,000 values once aliases are expanded"),
        ("a: " + "1" * 101, "an integer longer than 100 digits"),
    ]:
        with pytest.raises(yaml.YAMLError, match=message):
            yaml.load(text, Loader=loader)
    shared = "d: &d {x: 1}\ne: *d\nf: {<<: *d, y: 2}\nn: " + "9" * 100
    assert yaml.load(shared, Loader=loader) == {
        "d": {"x": 1},
        "e": {"x": 1},
        "f": {"x": 1, "y": 2},
        "n": int("9" * 100),
    }
    assert str(yaml.load(fine, Loader=loader)["a"]) == "[" * 49 + "]" * 49


def test_nesting_up_to_the_limit_is_parsed(tmp_path: Path) -> None:
    """A value nested MAX_YAML_DEPTH deep (with the top mapping) is parsed and judged."""
    depth = MAX_YAML_DEPTH - 1
    text = "x: " + "[" * depth + "]" * depth + "\nmodels:\n" + MODEL
    assert problems_of(tmp_path, text) == ["x: unknown key"]


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ("max_line_bytes: " + "1" * 5000, "invalid YAML: an integer longer than 100 digits"),
        ("max_line_bytes: 1" + "0" * 400, "invalid YAML: an integer longer than 100 digits"),
        ("max_line_bytes: 1" + "0" * 99, "max_line_bytes: must be <= 67,108,864"),
        ("max_future: 1" + "0" * 400 + "d", "max_future: expected a duration"),
        ("max_future: 1" + "0" * 20 + "d", "max_future: must be at most 7d"),
    ],
)
def test_huge_numbers_are_config_errors(tmp_path: Path, line: str, key: str) -> None:
    """Numbers Python cannot convert (past 4,300 digits, past 1e308) are one error each, not
    a ValueError or OverflowError traceback, and a quoted bad value is short."""
    problems = problems_of(tmp_path, f"{line}\nmodels:\n{MODEL}")
    assert len(problems) == 1, problems
    assert key in problems[0]
    assert len(problems[0]) < 500
    result, _ = check(tmp_path / "config.yml")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_an_integer_past_1e308_built_in_code_is_a_config_error(tmp_path: Path) -> None:
    """A mapping built in code may hold an integer no float can hold: an error, not an
    OverflowError."""
    model = {"name": "m", "task": "binary", "predictions": "p.csv", "threshold": 10**400}
    with pytest.raises(ConfigError) as raised:
        config_from_mapping({"max_line_bytes": -(10**400), "models": [model]}, base_dir=tmp_path)
    assert raised.value.problems == [
        "max_line_bytes: expected a finite number, got <an integer of 1329 bits>",
        "models[0].threshold: expected a finite number, got <an integer of 1329 bits>",
    ]


def test_a_config_file_over_1_mib_is_refused(tmp_path: Path) -> None:
    """A config file larger than MAX_CONFIG_BYTES is refused before it is parsed; one of
    exactly that size is read."""
    body = f"models:\n{MODEL}"
    padding = MAX_CONFIG_BYTES - len(body) - 2
    exact = write(tmp_path, body + "#" + "x" * padding + "\n")
    assert exact.stat().st_size == MAX_CONFIG_BYTES
    assert load_config(exact).models[0].name == "m"
    problems = problems_of(tmp_path, body + "#" + "x" * (padding + 1) + "\n")
    assert problems == [
        f"{tmp_path / 'config.yml'}: config file larger than 1,048,576 bytes (1 MiB)"
    ]


def test_a_flood_of_problems_is_listed_up_to_a_limit(tmp_path: Path) -> None:
    """20,000 unknown keys: the first MAX_PROBLEMS are listed, the rest counted, quickly."""
    keys = ", ".join(f"k{index}: 1" for index in range(20_000))
    start = time.monotonic()
    problems = problems_of(
        tmp_path, f"{{{keys}, models: [{{name: m, task: binary, predictions: p}}]}}"
    )
    assert time.monotonic() - start < 10
    assert len(problems) == MAX_PROBLEMS + 1
    assert problems[-1] == "... and 19900 more problem(s) not listed"


# --- upper bounds of values, counts and lengths ----------------------------------------------


def model_with(**overrides: object) -> dict[str, object]:
    model: dict[str, object] = {"name": "m", "task": "binary", "predictions": {"path": "p.csv"}}
    model.update(overrides)
    return model


def as_yaml(top: dict[str, object]) -> str:
    """JSON is YAML: a config written as JSON, so that strings keep every character."""
    return json.dumps(top)


OVER_THE_LIMIT = [
    ({"window_buckets": 1001}, "window_buckets: must be <= 1,000"),
    ({"max_label_values": 1001}, "max_label_values: must be <= 1,000"),
    ({"max_line_bytes": (64 << 20) + 1}, "max_line_bytes: must be <= 67,108,864"),
    ({"checkpoint_interval": "50ms"}, "checkpoint_interval: must be at least 100ms"),
    ({"checkpoint_interval": "25h"}, "checkpoint_interval: must be at most 1d"),
    ({"poll_interval": "5ms"}, "poll_interval: must be at least 10ms"),
    ({"poll_interval": "61s"}, "poll_interval: must be at most 1m"),
    ({"max_future": "8d"}, "max_future: must be at most 7d"),
    ({"models": [model_with(name=f"m{i}") for i in range(1001)]}, "models: at most 1,000 models"),
    (
        {"models": [model_with(windows=[f"{h}h" for h in range(1, 12)])]},
        "models[0].windows: at most 10 windows, got 11",
    ),
    ({"models": [model_with(windows=["367d"])]}, "models[0].windows[0]: must be at most 366d"),
    ({"models": [model_with(windows=["500ms"])]}, "models[0].windows[0]: must be at least 1s"),
    (
        {"window_buckets": 1000, "models": [model_with(windows=["1h", "1d", "7d", "30d"])]},
        "models[0].windows: 4 windows x window_buckets 1,000 = 4,000 buckets; at most 3,000",
    ),
    (
        {"models": [model_with(features={f"f{i}": "numeric" for i in range(1001)})]},
        "models[0].features: at most 1,000 features, got 1,001",
    ),
    (
        {"models": [model_with(features=[f"f{i}" for i in range(1001)])]},
        "models[0].features: at most 1,000 features",
    ),
    (
        {"models": [model_with(features={"f" * 129: "numeric"})]},
        f"models[0].features.{'f' * 60}...: at most 128 characters, got 129",
    ),
    (
        {"models": [model_with(features={"a\nb": "numeric"})]},
        "models[0].features.a\\nb: must be printable",
    ),
    ({"models": [model_with(features=["age", 5])]}, "models[0].features[1]: expected a feature"),
    ({"models": [model_with(name="m" * 129)]}, "models[0].name: at most 128 characters"),
    ({"models": [model_with(name="credit\tmodel")]}, "models[0].name: must be printable"),
    (
        {"models": [model_with(model_version="\x1b[31m3")]},
        "models[0].model_version: must be printable",
    ),
    (
        {"models": [model_with(positive_class="yes\u202e")]},
        "models[0].positive_class: must be printable",
    ),
    (
        {"models": [model_with(columns={"timestamp": "t" * 129})]},
        "models[0].columns.timestamp: at most 128 characters",
    ),
    (
        {"models": [model_with(na_values=[f"na{i}" for i in range(101)])]},
        "models[0].na_values: at most 100 texts, got 101",
    ),
    (
        {"models": [model_with(na_values=["n" * 129])]},
        "models[0].na_values[0]: at most 128 characters",
    ),
    (
        {"models": [model_with(outcomes={"path": "o.jsonl", "max_pending": 100_000_001})]},
        "models[0].outcomes.max_pending: must be <= 100,000,000",
    ),
    (
        {"models": [model_with(outcomes={"path": "o.jsonl", "max_delay": "367d"})]},
        "models[0].outcomes.max_delay: must be at most 366d",
    ),
    (
        {"models": [model_with(reference={"from_stream": 1_000_001})]},
        "models[0].reference.from_stream: must be <= 1,000,000",
    ),
    ({"models": [model_with(drift={"bins": 101})]}, "models[0].drift.bins: must be <= 100"),
    (
        {"models": [model_with(drift={"min_rows": 1_000_000_001})]},
        "models[0].drift.min_rows: must be <= 1,000,000,000",
    ),
    (
        {"models": [model_with(thresholds={"stale_after": "367d"})]},
        "models[0].thresholds.stale_after: must be at most 366d",
    ),
    (
        {"models": [model_with(predictions={"path": "p" * 4097})]},
        "models[0].predictions.path: at most 4,096 characters",
    ),
    (
        {
            "models": [model_with()],
            "retrain": {"token_file": "t", "command": ["x"], "listen": ":99999"},
        },
        'retrain.listen: expected host:port with a port 0-65535, got ":99999"',
    ),
    (
        {"models": [model_with()], "retrain": {"token_file": "t", "command": ["x"] * 1001}},
        "retrain.command: at most 1,000 arguments",
    ),
    (
        {"models": [model_with()], "retrain": {"token_file": "t", "command": [["x"] * 1000]}},
        "retrain.command[0]: expected a string, got a list",
    ),
    (
        {
            "models": [model_with()],
            "retrain": {"token_file": "t", "command": ["x"], "alerts": ["A"] * 101},
        },
        "retrain.alerts: at most 100 alert names",
    ),
    (
        {
            "models": [model_with()],
            "retrain": {"token_file": "t", "command": ["x"], "cooldown": "367d"},
        },
        "retrain.cooldown: must be at most 366d",
    ),
]


@pytest.mark.parametrize(
    ("top", "expected"), OVER_THE_LIMIT, ids=[e.split(":")[0] for _, e in OVER_THE_LIMIT]
)
def test_each_bound_is_a_config_error_naming_its_key_path(
    tmp_path: Path, top: dict[str, object], expected: str
) -> None:
    """A value past its bound is one problem, naming its key path and the bound."""
    top = {"models": [model_with()], **top}
    problems = problems_of(tmp_path, as_yaml(top))
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems
    assert len(problems[0]) < 500
    assert "\n" not in problems[0]


def test_window_buckets_1e8_is_refused_by_check(tmp_path: Path) -> None:
    """``window_buckets: 1e8`` (with which ``run`` never became ready) fails ``check``."""
    result, _ = check(write(tmp_path, f"window_buckets: 100000000\nmodels:\n{MODEL}"))
    assert result.returncode == 2
    assert result.stderr.strip() == "error: window_buckets: must be <= 1,000, got 100000000"


def test_a_config_at_every_limit_is_accepted(tmp_path: Path) -> None:
    """Each value exactly at its bound passes."""
    name = "n" * 128
    top = {
        "window_buckets": 300,
        "max_label_values": 1000,
        "max_line_bytes": 64 << 20,
        "checkpoint_interval": "1d",
        "poll_interval": "10ms",
        "max_future": "7d",
        "models": [
            model_with(
                name=name,
                positive_class="p" * 128,
                model_version="v" * 128,
                outcomes={"path": "o.jsonl", "max_pending": 100_000_000, "max_delay": "366d"},
                columns={"timestamp": "t" * 128, "id": "ünïcode ok"},
                features={f"{index:0128d}": "numeric" for index in range(1000)},
                reference={"from_stream": 1_000_000},
                windows=["1s", "366d", *(f"{d}d" for d in range(1, 9))],
                drift={"bins": 100, "min_rows": 1_000_000_000},
                thresholds={"stale_after": "366d", "outcomes_stale_after": "366d"},
                na_values=[f"{index:0128d}" for index in range(100)],
            ),
            model_with(name="wide", windows=["1h"], predictions={"path": "p" * 4096}),
        ],
        "retrain": {
            "listen": "[::1]:65535",
            "token_file": "t",
            "alerts": ["A" * 128] * 100,
            "cooldown": "366d",
            "command": ["c" * 4096, *(["c"] * 999)],
        },
    }
    config = load_config(write(tmp_path, as_yaml(top)))
    first = config.models[0]
    assert (config.window_buckets, len(first.windows)) == (300, 10)
    assert len(first.features) == 1000
    assert len(first.na_values) == 100
    assert config.checkpoint_interval == 86400
    assert config.poll_interval == 0.01
    assert first.windows[0].seconds == 1
    assert config.retrain is not None
    assert len(config.retrain.command) == 1000
    assert len(config.retrain.command[0]) == 4096
    single = {"window_buckets": 1000, "checkpoint_interval": "100ms", "poll_interval": "1m"}
    config = load_config(
        write(tmp_path, as_yaml({**single, "models": [model_with(windows=["1h", "1d", "7d"])]}))
    )
    assert config.window_buckets == 1000
    assert config.checkpoint_interval == 0.1


def test_a_thousand_models_are_accepted(tmp_path: Path) -> None:
    """MAX_MODELS models, each its own log, load."""
    models = [
        model_with(name=f"m{index}", predictions={"path": f"p{index}.csv"}) for index in range(1000)
    ]
    assert len(load_config(write(tmp_path, as_yaml({"models": models}))).models) == 1000


# --- sources over state_dir ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state_dir", "source", "key"),
    [
        (".", {"predictions": {"path": "*"}}, "models[0].predictions.path"),
        (".", {"predictions": {"path": "*.csv"}}, "models[0].predictions.path"),
        ("state", {"predictions": {"path": "state/*"}}, "models[0].predictions.path"),
        ("state", {"predictions": {"path": "./st*/*.pickle"}}, "models[0].predictions.path"),
        ("var/lib/state", {"predictions": {"path": "var/*/*/*"}}, "models[0].predictions.path"),
        ("var/lib/state", {"predictions": {"path": "**/*.csv"}}, "models[0].predictions.path"),
        ("state", {"predictions": {"path": "logs/../state/p.csv"}}, "models[0].predictions.path"),
        ("state", {"outcomes": {"path": "state/o.jsonl"}}, "models[0].outcomes.path"),
        ("state", {"outcomes": {"path": "[s]tate/**"}}, "models[0].outcomes.path"),
    ],
)
def test_a_source_that_can_match_files_in_state_dir_is_an_error(
    tmp_path: Path, state_dir: str, source: dict[str, object], key: str
) -> None:
    """A path or glob that could match a file in state_dir (where each checkpoint rename
    would be read as a rotation, which forces another checkpoint, forever) is refused."""
    model = {**model_with(), **source}
    problems = problems_of(tmp_path, as_yaml({"state_dir": state_dir, "models": [model]}))
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"{key}: can match files in state_dir"), problems


def test_a_source_reaching_state_dir_through_a_symlink_is_an_error(tmp_path: Path) -> None:
    """The literal part of a glob is resolved: ``logs`` linked to the state_dir is seen."""
    (tmp_path / "state").mkdir()
    (tmp_path / "logs").symlink_to(tmp_path / "state")
    top = {"state_dir": "state", "models": [model_with(predictions={"path": "logs/*.csv"})]}
    problems = problems_of(tmp_path, as_yaml(top))
    assert problems[0].startswith("models[0].predictions.path: can match files in state_dir")


@pytest.mark.parametrize(
    ("state_dir", "path"),
    [
        ("state", "*.csv"),  # files beside state_dir only
        ("state", "*"),  # matches the folder itself, never a file in it
        (".state", "*/*.csv"),  # a wildcard never matches a leading dot
        ("state", "logs/**/*.csv"),
        ("var/state", "var/log/*.csv"),
        ("state", "state.csv"),
    ],
)
def test_a_source_beside_state_dir_is_accepted(tmp_path: Path, state_dir: str, path: str) -> None:
    """Globs that cannot reach into state_dir pass."""
    top = {"state_dir": state_dir, "models": [model_with(predictions={"path": path})]}
    assert load_config(write(tmp_path, as_yaml(top))).models[0].predictions.path.endswith(path)


def test_check_exits_2_on_a_glob_over_state_dir(tmp_path: Path) -> None:
    """The command line: one error line naming the key path, exit 2."""
    everything = MODEL.replace("p.csv", '"*"')
    config = write(tmp_path, f"state_dir: .\nmodels:\n{everything}")
    result, _ = check(config)
    assert result.returncode == 2
    assert result.stderr.startswith("error: models[0].predictions.path: can match files in")


@pytest.mark.parametrize("address", [":99999", "127.0.0.1:70000", ":1\u00b2", ":" + "9" * 5000])
def test_a_listen_address_out_of_range_is_exit_2(tmp_path: Path, address: str) -> None:
    """A port outside 0..65535 (or not a number) is one clear line and exit 2."""
    (tmp_path / "p.csv").write_text("timestamp,prediction\n")
    config = tmp_path / "config.yml"
    config.write_text("models:\n  - name: m\n    task: binary\n    predictions: {path: p.csv}\n")
    result, _ = cli("run", "--config.file", str(config), "--web.listen-address", address)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "--web.listen-address: expected host:port with a port 0-65535" in result.stderr
    assert len(result.stderr) < 500


def test_a_key_written_twice_is_an_error_but_a_merge_may_override(tmp_path: Path) -> None:
    """`task: binary` then `task: regression` in one mapping is an error naming the line
    (YAML alone keeps the last one silently); a key from a `<<` merge may be overridden."""
    (tmp_path / "p.csv").write_text("timestamp,prediction\n")
    twice = "models:\n  - name: m\n    task: binary\n    task: regression\n    predictions: p.csv\n"
    (problem,) = problems_of(tmp_path, twice)
    assert 'duplicate key "task"' in problem
    assert "line 4" in problem
    merged = (
        "base: &base {task: binary, predictions: {path: p.csv}}\n"
        "models:\n  - <<: *base\n    name: m\n    task: regression\n"
    )
    assert problems_of(tmp_path, merged) == ["base: unknown key"]  # no duplicate
