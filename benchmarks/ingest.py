"""Ingest speed and memory, measured in one run against pandas.read_csv of the same file.

    python benchmarks/ingest.py [--rows 1000000] [--dir benchmarks/data]

Writes a CSV with a timestamp, id, score, outcome, 20 numeric and 5 categorical features,
then times, each in a fresh subprocess so peak RSS is its own:
  * pandas.read_csv of the whole file (type inference, the usual way to load it),
  * the exporter ingesting it from its tailer through parsing, windows and counters,
and the exporter's peak RSS at 200k and 1.2M rows (memory must not grow with rows: the
state is buckets, not rows). Times are the best of 3 fresh processes each. Prints rows/s
and the ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

NUMERIC = [f"num_{i}" for i in range(20)]
CATEGORICAL = [f"cat_{i}" for i in range(5)]
START = 1_717_200_000
# 4 s apart, so 200k rows already span more than the longest window (7d): every window's
# bucket ring is full in both runs and RSS compares like with like.
SECONDS_PER_ROW = 4


def write_log(path: Path, rows: int, seed: int = 0) -> None:
    if path.exists() and path.stat().st_size > 0:
        return
    rng = np.random.default_rng(seed)
    block = 200_000
    with path.open("w") as handle:
        header = ["timestamp", "id", "prediction", "actual", *NUMERIC, *CATEGORICAL]
        handle.write(",".join(header) + "\n")
        for offset in range(0, rows, block):
            n = min(block, rows - offset)
            index = np.arange(offset, offset + n)
            frame = {
                "timestamp": pd.to_datetime(
                    START + index * SECONDS_PER_ROW, unit="s", utc=True
                ).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "id": np.char.add("req-", index.astype(str)),
                "prediction": rng.random(n).round(4),
                "actual": rng.integers(0, 2, n),
            }
            for name in NUMERIC:
                frame[name] = rng.normal(0, 1, n).round(5)
            for name in CATEGORICAL:
                frame[name] = np.array(["alpha", "beta", "gamma", "delta"])[rng.integers(0, 4, n)]
            pd.DataFrame(frame).to_csv(handle, header=False, index=False)


def measure_read_csv(path: Path) -> dict[str, float]:
    started = time.perf_counter()
    frame = pd.read_csv(path)
    elapsed = time.perf_counter() - started
    return {"seconds": elapsed, "rows": len(frame), "peak_rss_mb": _peak_rss_mb()}


def measure_exporter(path: Path, *, profile_features: bool = True) -> dict[str, float]:
    from exporter.config import config_from_mapping  # noqa: PLC0415 - timed in a subprocess
    from exporter.ingest.engine import Engine  # noqa: PLC0415
    from exporter.monitor.build import build_monitors, monitor_factory  # noqa: PLC0415
    from exporter.runtime import configure_process  # noqa: PLC0415

    configure_process()

    features = dict.fromkeys(NUMERIC, "numeric") | dict.fromkeys(CATEGORICAL, "categorical")
    with tempfile.TemporaryDirectory() as state:
        config = config_from_mapping(
            {
                "state_dir": state,
                "models": [
                    {
                        "name": "bench",
                        "task": "binary",
                        "predictions": {"path": str(path)},
                        "features": features,
                        "windows": ["1h", "1d", "7d"],
                    }
                ],
            },
            base_dir=path.parent,
        )
        # With profiles, as `run` does: the 25 features get their data-quality profiles (no
        # reference here). Without: the model-quality path alone (tail, parse, windows).
        monitors = build_monitors(config) if profile_features else {}
        engine = Engine(config, checkpoints=False, monitor_factory=monitor_factory(monitors))
        started = time.perf_counter()
        while engine.step():
            pass
        elapsed = time.perf_counter() - started
        snapshot = engine.snapshot()
    rows = sum(snapshot.models[0].predictions_total.values())
    return {"seconds": elapsed, "rows": rows, "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_subprocess(kind: str, path: Path, repeat: int = 3) -> dict[str, float]:
    """Best time of ``repeat`` fresh processes (the machine is shared: the minimum is the
    least disturbed run), with the largest peak RSS seen."""
    runs = []
    for _ in range(repeat):
        output = subprocess.run(
            [sys.executable, __file__, "--measure", kind, str(path)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(json.loads(output.strip().splitlines()[-1]))
    best = min(runs, key=lambda run: run["seconds"])
    return {**best, "peak_rss_mb": max(run["peak_rss_mb"] for run in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small-rows", type=int, default=200_000)
    parser.add_argument("--large-rows", type=int, default=1_200_000)
    parser.add_argument("--dir", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--measure", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, file = args.measure
        if kind == "read_csv":
            print(json.dumps(measure_read_csv(Path(file))))
        else:
            print(json.dumps(measure_exporter(Path(file), profile_features=kind == "exporter")))
        return

    args.dir.mkdir(parents=True, exist_ok=True)
    big = args.dir / f"ingest-v2-{args.rows}.csv"
    small = args.dir / f"ingest-v2-{args.small_rows}.csv"
    large = args.dir / f"ingest-v2-{args.large_rows}.csv"
    print("writing the test files (once; reused later) ...", file=sys.stderr)
    for path, rows in ((big, args.rows), (small, args.small_rows), (large, args.large_rows)):
        write_log(path, rows)
    size_mb = big.stat().st_size / 1e6

    pandas_run = _in_subprocess("read_csv", big)
    ours = _in_subprocess("exporter", big)
    quality_only = _in_subprocess("exporter-quality-only", big)
    ours_small = _in_subprocess("exporter", small, repeat=1)  # RSS: the full pipeline
    ours_large = _in_subprocess("exporter", large, repeat=1)
    assert ours["rows"] == args.rows, ours
    assert ours_small["rows"] == args.small_rows, ours_small
    assert ours_large["rows"] == args.large_rows, ours_large

    pandas_rate = pandas_run["rows"] / pandas_run["seconds"]
    print(f"file: {args.rows:,} rows, 20 numeric + 5 categorical features, {size_mb:.0f} MB")
    print(
        f"pandas.read_csv                     : {pandas_run['seconds']:6.2f} s"
        f"  {pandas_rate:>10,.0f} rows/s  peak RSS {pandas_run['peak_rss_mb']:6.0f} MB"
    )
    for name, run in (
        ("exporter ingest, model quality     ", quality_only),
        ("exporter ingest, + 25 feature DQ   ", ours),
    ):
        rate = run["rows"] / run["seconds"]
        print(
            f"{name}: {run['seconds']:6.2f} s  {rate:>10,.0f} rows/s"
            f"  peak RSS {run['peak_rss_mb']:6.0f} MB  ratio {rate / pandas_rate:.2f}x"
            " of read_csv (target >= 0.5x)"
        )
    growth = ours_large["peak_rss_mb"] / ours_small["peak_rss_mb"]
    print(
        f"exporter peak RSS: {ours_small['peak_rss_mb']:.0f} MB at {args.small_rows:,} rows, "
        f"{ours_large['peak_rss_mb']:.0f} MB at {args.large_rows:,} rows "
        f"(ratio {growth:.2f}, target ~1.0)"
    )


if __name__ == "__main__":
    main()
