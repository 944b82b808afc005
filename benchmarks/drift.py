"""Drift speed, memory and accuracy, measured in one run against scipy and Evidently.

    python benchmarks/drift.py [--sizes 10000,100000,1000000] [--dir benchmarks/data]
                               [--no-evidently]

Writes (once; reused later) a 50,000-row reference CSV and current windows of 10k, 100k
and 1M rows with 20 numeric and 5 categorical features (5 of them drifted, the rest
drawn as the reference), a score and an outcome. Then, each in a fresh subprocess so peak
RSS is its own:

* the exporter: the reference read and fitted once (`exporter.monitor.build.build_monitor`),
  then the window's file ingested by the `Engine` as `run` drives it (tailer in 8 MiB
  chunks, the next chunk parsed on the parse-ahead thread while the current one goes
  through `ModelState` + `Monitor`), and every data-quality and drift family built by
  `MonitorCollector` (one window holding every row; also with the default 3 windows);
* scipy's exact tests on the same data (ks_2samp, wasserstein_distance, chi2_contingency,
  jensenshannon per feature), after loading both files with pandas;
* Evidently's DataDriftPreset on the same files, in its own virtualenv
  (``benchmarks/data/venv-evidently``, created here when missing, git-ignored with
  ``benchmarks/data``): Evidently 0.7.23 does not import with pandas 3 and is never a
  dependency of the exporter. If the venv cannot be made the reason is printed and the
  run goes on without it.

Compared times: the exporter's ingest (parse + profile) plus drift computation, against
Evidently's read of the current CSV plus its report (reference fitting and loading are
printed apart: the exporter does it once at start, Evidently in every report).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
NUMERIC = [f"num_{i:02d}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
DRIFTED = frozenset({"num_00", "num_01", "num_02", "num_03", "cat_0"})
REFERENCE_ROWS = 50_000
START = 1_717_200_000.0
WINDOW_SECONDS = 3600.0  # every row of a current file lies in one 1h window
EVIDENTLY = ("evidently==0.7.23", "pandas<3")
EVIDENTLY_TIMEOUT = 3600
EVIDENTLY_REPEAT_MAX_ROWS = 100_000  # a 1M-row report takes over a minute: run it once

CATEGORIES = {
    "cat_0": (["web", "app", "branch", "partner"], [0.5, 0.3, 0.15, 0.05]),
    "cat_1": (["basic", "pro", "team", "enterprise"], [0.4, 0.3, 0.2, 0.1]),
    "cat_2": ([f"region_{i}" for i in range(8)], [0.125] * 8),
    "cat_3": (["a", "b"], [0.7, 0.3]),
    "cat_4": ([f"segment_{i}" for i in range(6)], [0.3, 0.25, 0.2, 0.1, 0.1, 0.05]),
}
DRIFTED_PROPORTIONS = {"cat_0": [0.3, 0.45, 0.15, 0.1]}


# --- data ----------------------------------------------------------------------------


def make_rows(rng: np.random.Generator, rows: int, drifted: bool) -> pd.DataFrame:
    """Features of five distribution shapes; with `drifted`, the DRIFTED ones change."""
    data: dict[str, np.ndarray] = {}
    for index, name in enumerate(NUMERIC):
        shift = drifted and name in DRIFTED
        shape = index % 5
        if shape == 0:
            values = rng.normal(50 + (5 if shift else 0), 10, rows)
        elif shape == 1:
            values = rng.lognormal(3, 0.9 if shift else 0.7, rows)
        elif shape == 2:
            values = rng.uniform(10 if shift else 0, 110 if shift else 100, rows)
        elif shape == 3:
            values = rng.poisson(5 if shift else 4, rows).astype(float)
        else:
            mix = rng.random(rows) < 0.3
            values = np.where(mix, rng.normal(-2, 0.5, rows), rng.normal(2, 1, rows))
        data[name] = np.round(values, 4)
    for name, (names, proportions) in CATEGORIES.items():
        chosen = DRIFTED_PROPORTIONS.get(name, proportions) if drifted else proportions
        data[name] = np.array(names, dtype=object)[rng.choice(len(names), rows, p=chosen)]
    frame = pd.DataFrame(data)
    logit = 0.08 * (frame["num_00"] - 50) + 0.5 * (np.log(frame["num_01"]) - 3)
    score = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.5, rows))))
    frame["prediction"] = score.round(4)
    frame["actual"] = (rng.random(rows) < score).astype(int)
    return frame


def write_files(directory: Path, sizes: list[int]) -> tuple[Path, dict[int, Path]]:
    directory.mkdir(parents=True, exist_ok=True)
    reference = directory / f"drift-reference-{REFERENCE_ROWS}.csv"
    if not reference.exists():
        make_rows(np.random.default_rng(1), REFERENCE_ROWS, False).to_csv(reference, index=False)
    currents = {}
    for rows in sizes:
        path = directory / f"drift-current-{rows}.csv"
        currents[rows] = path
        if path.exists():
            continue
        rng = np.random.default_rng([2, rows])
        temporary = path.with_suffix(".tmp")
        with temporary.open("w") as handle:
            block = 200_000
            for offset in range(0, rows, block):
                n = min(block, rows - offset)
                frame = make_rows(rng, n, True)
                index = np.arange(offset, offset + n)
                stamps = START + index * (WINDOW_SECONDS * 0.99 / rows)
                frame.insert(
                    0,
                    "timestamp",
                    pd.to_datetime(stamps, unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                )
                frame.insert(1, "id", np.char.add("req-", index.astype(str)))
                frame.to_csv(handle, header=offset == 0, index=False)
        temporary.replace(path)
    return reference, currents


# --- measurements (each in its own process) -----------------------------------------------


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_exporter(reference: Path, current: Path, windows: list[str]) -> dict:
    sys.path.insert(0, str(REPO))
    import exporter.ingest.engine  # noqa: PLC0415 - timed in a subprocess
    from exporter.collectors.drift import MonitorCollector  # noqa: PLC0415
    from exporter.collectors.isolation import ScrapeErrors  # noqa: PLC0415
    from exporter.config import config_from_mapping  # noqa: PLC0415
    from exporter.ingest.engine import Engine  # noqa: PLC0415
    from exporter.monitor.build import build_monitor  # noqa: PLC0415

    started = time.perf_counter()
    features = dict.fromkeys(NUMERIC, "numeric") | dict.fromkeys(CATEGORICAL, "categorical")
    state_dir = tempfile.mkdtemp()
    config = config_from_mapping(
        {
            "state_dir": state_dir,
            "models": [
                {
                    "name": "bench",
                    "task": "binary",
                    "predictions": {"path": str(current)},
                    "features": features,
                    "reference": {"path": str(reference)},
                    "windows": windows,
                }
            ],
        },
        base_dir=current.parent,
    )
    model = config.models[0]
    monitor = build_monitor(model, 0)
    assert monitor is not None
    fitted = time.perf_counter()
    spent = {"parse": 0.0, "monitor": 0.0}

    def timed(key: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any) -> Any:
            begin = time.perf_counter()
            try:
                return function(*args)
            finally:
                spent[key] += time.perf_counter() - begin

        return run

    for name in ("observe", "profile_groups", "profile_outcomes"):
        setattr(monitor, name, timed("monitor", getattr(monitor, name)))
    # parse runs on the engine's parse-ahead thread, overlapping the rest
    exporter.ingest.engine.parse_chunk = timed("parse", exporter.ingest.engine.parse_chunk)  # type: ignore[method-assign]
    # The exporter as `run` drives it: tailer (8 MiB chunks), parse ahead, model state
    # and feature profiles; no checkpoints (a benchmark of ingest, not of the disk).
    engine = Engine(config, checkpoints=False, monitor_factory=lambda _: monitor)
    begin = time.perf_counter()
    while engine.step():
        pass
    ingested = time.perf_counter()
    snapshot = engine.snapshot()
    families = list(MonitorCollector({model.name: monitor})(snapshot, ScrapeErrors()))
    done = time.perf_counter()
    engine.close()
    state = engine.models[model.name]
    checkpoint_bytes = len(pickle.dumps(state.state(), protocol=5))
    longest = max(model.windows, key=lambda w: w.seconds).name
    values: dict[str, dict[str, float]] = {}
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if labels.get("window") != longest:
                continue
            key = labels.get("feature", "")
            name = sample.name.removeprefix("mlmodel_")
            if "method" in labels:
                name += ":" + labels["method"]
            values.setdefault(key, {})[name] = sample.value
    return {
        "fit_seconds": fitted - started,
        "ingest_seconds": ingested - begin,
        "parse_seconds": spent["parse"],
        "monitor_seconds": spent["monitor"],
        "drift_seconds": done - ingested,
        "total_seconds": done - begin,
        "rows": int(sum(state.predictions_total.values())),
        "peak_rss_mb": _peak_rss_mb(),
        "checkpoint_mb": checkpoint_bytes / 1e6,
        "values": values,
    }


def measure_scipy(reference: Path, current: Path) -> dict:
    from scipy import stats  # noqa: PLC0415
    from scipy.spatial.distance import jensenshannon  # noqa: PLC0415

    started = time.perf_counter()
    ref = pd.read_csv(reference)
    reference_loaded = time.perf_counter()
    cur = pd.read_csv(current)
    loaded = time.perf_counter()
    values: dict[str, dict[str, float]] = {}
    for name in NUMERIC:
        a, b = ref[name].to_numpy(), cur[name].to_numpy()
        ks = stats.ks_2samp(a, b)
        values[name] = {
            "ks": float(ks.statistic),
            "ks_pvalue": float(ks.pvalue),
            "wasserstein": float(stats.wasserstein_distance(a, b) / max(a.std(), 0.001)),
        }
    for name in CATEGORICAL:
        ref_counts = ref[name].value_counts()
        cur_counts = cur[name].value_counts().reindex(ref_counts.index, fill_value=0)
        table = np.array([ref_counts.to_numpy(), cur_counts.to_numpy()])
        chi = stats.chi2_contingency(table[:, table.sum(axis=0) > 0], correction=False)
        values[name] = {
            "chisquare": float(chi.statistic),
            "chisquare_pvalue": float(chi.pvalue),
            "jensenshannon": float(jensenshannon(ref_counts.to_numpy(), cur_counts.to_numpy())),
        }
    done = time.perf_counter()
    return {
        "load_seconds": loaded - started,
        "current_read_csv_seconds": loaded - reference_loaded,
        "test_seconds": done - loaded,
        "total_seconds": done - started,
        "peak_rss_mb": _peak_rss_mb(),
        "values": values,
    }


EVIDENTLY_SCRIPT = r"""
import json, resource, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

reference, current, numeric, categorical = sys.argv[1:5]
numeric, categorical = numeric.split(","), categorical.split(","),
columns = numeric + categorical
started = time.perf_counter()
ref = pd.read_csv(reference, usecols=columns)
loaded_reference = time.perf_counter()
cur = pd.read_csv(current, usecols=columns)
loaded = time.perf_counter()
definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
snapshot = Report([DataDriftPreset()]).run(
    Dataset.from_pandas(cur, data_definition=definition),
    Dataset.from_pandas(ref, data_definition=definition),
)
result = snapshot.dict()
done = time.perf_counter()
drift = {}
for metric in result["metrics"]:
    config = metric["config"]
    if config.get("type", "").endswith("ValueDrift"):
        drift[config["column"]] = [config["method"], metric["value"], config["threshold"]]
print(json.dumps({
    "reference_load_seconds": loaded_reference - started,
    "current_load_seconds": loaded - loaded_reference,
    "report_seconds": done - loaded,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "drift": drift,
}))
"""


def evidently_python(directory: Path) -> tuple[Path | None, str]:
    """The venv's python with Evidently, made if missing; or None and why not."""
    venv = directory / "venv-evidently"
    python = venv / "bin" / "python"
    check = [str(python), "-c", "import evidently, pandas; print(evidently.__version__)"]
    if python.exists() and subprocess.run(check, check=False, capture_output=True).returncode == 0:
        return python, ""
    print(f"creating {venv} with {' '.join(EVIDENTLY)} ...", file=sys.stderr)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *EVIDENTLY],
            check=True,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        subprocess.run(check, check=True, capture_output=True)
    except (OSError, subprocess.SubprocessError) as err:
        detail = getattr(err, "stderr", "") or ""
        return None, f"{err} {detail.strip().splitlines()[-1] if detail.strip() else ''}"
    return python, ""


def measure_evidently(python: Path, reference: Path, current: Path) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as script:
        script.write(EVIDENTLY_SCRIPT)
    try:
        output = subprocess.run(
            [
                str(python),
                script.name,
                str(reference),
                str(current),
                ",".join(NUMERIC),
                ",".join(CATEGORICAL),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=EVIDENTLY_TIMEOUT,
            env={**os.environ, "PYTHONWARNINGS": "ignore"},
        ).stdout
    finally:
        os.unlink(script.name)
    return json.loads(output.strip().splitlines()[-1])


def _in_subprocess(kind: str, *args: str) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--measure", kind, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


# --- report --------------------------------------------------------------------------------


def accuracy(ours: dict, exact: dict) -> dict[str, float]:
    """Largest differences of the exporter's binned statistics from scipy's."""
    ks = wasserstein = js = chi = 0.0
    decisions = 0
    for name in NUMERIC:
        mine, theirs = ours[name], exact[name]
        ks = max(ks, abs(mine["feature_drift_score:ks"] - theirs["ks"]))
        wasserstein = max(
            wasserstein,
            abs(mine["feature_drift_score:wasserstein"] - theirs["wasserstein"])
            / theirs["wasserstein"],
        )
        decisions += (mine["feature_drift_pvalue:ks"] < 0.05) != (theirs["ks_pvalue"] < 0.05)
    for name in CATEGORICAL:
        mine, theirs = ours[name], exact[name]
        js = max(js, abs(mine["feature_drift_score:jensenshannon"] - theirs["jensenshannon"]))
        chi = max(
            chi,
            abs(mine["feature_drift_score:chisquare"] - theirs["chisquare"])
            / max(theirs["chisquare"], 1e-12),
        )
    return {"ks": ks, "wasserstein": wasserstein, "js": js, "chi": chi, "decisions": decisions}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dir", type=Path, default=HERE / "data")
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs (default 3)")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, *paths = args.measure
        paths = [str(Path(p).resolve()) if "/" in p else p for p in paths]
        if kind == "scipy":
            result = measure_scipy(Path(paths[0]), Path(paths[1]))
        else:
            result = measure_exporter(Path(paths[0]), Path(paths[1]), paths[2].split(","))
        print(json.dumps(result))
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    print("writing the data files (once; reused later) ...", file=sys.stderr)
    reference, currents = write_files(args.dir.resolve(), sizes)
    python, why_not = (None, "--no-evidently") if args.no_evidently else evidently_python(args.dir)

    results = {}
    for rows in sizes:
        current = currents[rows]
        print(f"{rows:,} rows: exporter, scipy, Evidently ...", file=sys.stderr)
        one = _fastest(args.repeat, "exporter", str(reference), str(current), "1h")
        three = _fastest(args.repeat, "exporter", str(reference), str(current), "1h,1d,7d")
        exact = _fastest(args.repeat, "scipy", str(reference), str(current))
        evidently = None
        if python is not None:
            runs = args.repeat if rows <= EVIDENTLY_REPEAT_MAX_ROWS else 1
            try:
                evidently = min(
                    (measure_evidently(python, reference, current) for _ in range(runs)),
                    key=lambda r: r["current_load_seconds"] + r["report_seconds"],
                )
            except (subprocess.SubprocessError, ValueError) as err:
                why_not = f"Evidently failed at {rows:,} rows: {err}"
        assert one["rows"] == rows, one
        results[rows] = (one, three, exact, evidently)
    report(sizes, results, python is not None, why_not, args.repeat)
    # Memory must not grow with rows: the exporter alone on twice the largest window (its
    # rows twice over, so the same hour and buckets).
    largest = max(sizes)
    doubled = args.dir.resolve() / f"drift-current-{largest}-twice.csv"
    if not doubled.exists():
        # streamed: a parent holding the file would pass its RSS on to the measured child
        # (Linux keeps the high-water mark of a forked process across exec)
        temporary = doubled.with_suffix(".tmp")
        with temporary.open("wb") as out:
            for skip_header in (False, True):
                with currents[largest].open("rb") as source:
                    if skip_header:
                        source.readline()
                    shutil.copyfileobj(source, out, 8 << 20)
        temporary.replace(doubled)
    twice = _fastest(args.repeat, "exporter", str(reference), str(doubled), "1h")
    assert twice["rows"] == 2 * largest, twice
    one = results[largest][0]
    growth = twice["total_seconds"] / one["total_seconds"]
    print(
        f"memory: the exporter alone on {2 * largest:,} rows (the {largest:,}-row window "
        f"twice): {twice['total_seconds']:.2f} s ({growth:.2f}x "
        f"the time of {largest:,}), peak RSS {twice['peak_rss_mb']:.0f} MB (vs "
        f"{one['peak_rss_mb']:.0f} MB), checkpointed state {twice['checkpoint_mb']:.1f} MB"
    )


def _fastest(repeat: int, kind: str, *args: str) -> dict:
    return min(
        (_in_subprocess(kind, *args) for _ in range(repeat)), key=lambda r: r["total_seconds"]
    )


def report(
    sizes: list[int], results: dict[int, tuple], have_evidently: bool, why_not: str, repeat: int
) -> None:
    print(
        f"reference: {REFERENCE_ROWS:,} rows; windows of {', '.join(f'{s:,}' for s in sizes)} "
        f"rows; {len(NUMERIC)} numeric + {len(CATEGORICAL)} categorical features, "
        f"{len(DRIFTED)} drifted ({', '.join(sorted(DRIFTED))}); best of {repeat} runs "
        f"(Evidently above {EVIDENTLY_REPEAT_MAX_ROWS:,} rows: 1 run)"
    )
    first = results[sizes[0]][0]
    print(f"exporter: reference read and fitted once, at start: {first['fit_seconds']:.2f} s")
    print()
    print(
        "| rows | exporter: ingest + drift | rows/s | parse (parse-ahead thread) | "
        "monitor profiles | model state, tailer, waiting | drift figures | "
        "Evidently: read + report | Evidently / exporter | "
        "Evidently report / (profiles + drift) | scipy exact tests |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows in sizes:
        one, _, exact, evidently = results[rows]
        ours = one["total_seconds"]
        # the main thread's ingest time that is not the monitor's (parse runs beside it)
        model_state = one["ingest_seconds"] - one["monitor_seconds"]
        monitor = one["monitor_seconds"] + one["drift_seconds"]
        if evidently is not None:
            theirs = evidently["current_load_seconds"] + evidently["report_seconds"]
            evidently_text = (
                f"{theirs:.2f} s | {theirs / ours:.1f}x | "
                f"{evidently['report_seconds'] / monitor:.1f}x"
            )
        else:
            evidently_text = "n/a | n/a | n/a"
        print(
            f"| {rows:,} | {ours:.3f} s | {rows / ours:,.0f} | {one['parse_seconds']:.3f} s | "
            f"{one['monitor_seconds']:.3f} s | {model_state:.3f} s | {one['drift_seconds']:.3f} s "
            f"| {evidently_text} | {exact['test_seconds']:.2f} s |"
        )
    print()
    print(
        "| rows | exporter peak RSS | checkpoint (state) | 3 windows (1h, 1d, 7d): time, "
        "peak RSS, checkpoint | Evidently peak RSS | pandas.read_csv of the window |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for rows in sizes:
        one, three, exact, evidently = results[rows]
        evidently_rss = f"{evidently['peak_rss_mb']:.0f} MB" if evidently else "n/a"
        print(
            f"| {rows:,} | {one['peak_rss_mb']:.0f} MB | {one['checkpoint_mb']:.1f} MB | "
            f"{three['total_seconds']:.3f} s, {three['peak_rss_mb']:.0f} MB, "
            f"{three['checkpoint_mb']:.1f} MB | {evidently_rss} | "
            f"{exact['current_read_csv_seconds']:.2f} s |"
        )
    print()
    if len(sizes) > 1:
        per_row = [results[r][0]["total_seconds"] / r for r in sizes]
        print(
            "exporter time per row: "
            + ", ".join(f"{p * 1e6:.2f} us at {r:,}" for p, r in zip(per_row, sizes, strict=True))
            + f" (x{per_row[-1] / per_row[0]:.2f} from {sizes[0]:,} to {sizes[-1]:,} rows; "
            "linear = 1)"
        )
        rss = [results[r][0]["peak_rss_mb"] for r in sizes]
        print(
            "exporter peak RSS: "
            + ", ".join(f"{m:.0f} MB at {r:,}" for m, r in zip(rss, sizes, strict=True))
            + " (a file under one 8 MiB chunk needs less; the state is the checkpoint column)"
        )
    print()
    print("accuracy against scipy on the same data (largest difference over the features):")
    for rows in sizes:
        one, _, exact, evidently = results[rows]
        error = accuracy(one["values"], exact["values"])
        ours_flagged = sorted(
            name for name, v in one["values"].items() if v.get("feature_drifted") == 1
        )
        line = (
            f"  {rows:>9,} rows: KS {error['ks']:.4f} abs, Wasserstein {error['wasserstein']:.2%} "
            f"rel, Jensen-Shannon {error['js']:.1e} abs, chi-square {error['chi']:.1e} rel, "
            f"KS decisions (p < 0.05) differing: {error['decisions']}; "
            f"auto flags {', '.join(ours_flagged)}"
        )
        if evidently is not None:
            flagged = sorted(
                name
                for name, (method, value, threshold) in evidently["drift"].items()
                if (value < threshold if "p_value" in method else value >= threshold)
            )
            line += f"; Evidently flags {', '.join(flagged)}"
        print(line)
    if not have_evidently:
        print(f"Evidently not measured: {why_not}")
    elif why_not:
        print(why_not)


if __name__ == "__main__":
    main()
