"""Writes the golden logs and references (run once; their outputs are pinned in *.prom).

    python tests/golden/generate.py

The files are committed: the goldens must not move when numpy's generators do.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LOGS = HERE / "logs"
START = 1_767_571_200  # 2026-01-05T00:00:00Z
STEP = 120
ROWS = 2_160  # three days, one row every two minutes


def _iso(t: float) -> str:
    return np.datetime_as_string(np.datetime64(int(t), "s"), unit="s") + "Z"


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    lines = [",".join(header)] + [",".join("" if c is None else str(c) for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def _credit(rng: np.random.Generator) -> None:
    """Binary, CSV, late outcomes in JSONL, numeric/discrete/categorical, auto drift."""
    header = ["timestamp", "id", "model_version", "age", "income", "n_items", "plan", "score"]

    def rows(n: int, shift: float, stamp: bool) -> list[list[object]]:
        out = []
        for i in range(n):
            age = int(rng.integers(18, 90)) if rng.random() > 0.03 else None
            income = round(float(rng.lognormal(10.5 + shift, 0.4)), 2)
            items = int(rng.poisson(3 + 2 * shift))
            plan = rng.choice(["basic", "gold", "platinum"] + (["trial"] if shift else []))
            score = round(float(rng.beta(2, 2 + shift * 3)), 4)
            t = START + i * STEP
            row: list[object] = [_iso(t) if stamp else "", f"r-{i}", 1 if i < n * 0.6 else 2]
            out.append([*row, age, income, items, plan, score])
        return out

    reference = [r[3:] for r in rows(1_500, 0.0, False)]
    truth = rng.random(1_500) < 0.4
    _write_csv(
        LOGS / "credit_reference.csv",
        ["age", "income", "n_items", "plan", "prediction", "actual"],
        [[*r[:-1], r[-1], int(t)] for r, t in zip(reference, truth, strict=True)],
    )
    live = rows(ROWS, 0.0, True)
    for r in live[ROWS // 2 :]:
        r[4] = round(float(r[4]) * 1.6, 2)  # income drifts on the second half
    lines = [",".join(header)]
    for i, r in enumerate(live):
        lines.append(",".join("" if c is None else str(c) for c in r))
        if i == 500:
            lines += ["not,enough,fields", f"{_iso(START + i * STEP)},bad-age,1,old,1,1,gold,0.5"]
        if i == 900:
            lines.append("2026-13-45T00:00:00Z,bad-time,1,30,1000,1,gold,0.5")
        if i == 1_200:
            lines.append(f"{_iso(START + 40 * 86400)},future,1,30,1000,1,gold,0.5")
    (LOGS / "credit_predictions.csv").write_text("\n".join(lines) + "\n")
    outcomes = []
    for i, r in enumerate(live):
        if rng.random() < 0.1:
            continue  # this outcome never comes
        delay = float(rng.uniform(10, 3_600))
        actual = int((float(r[-1]) > 0.5) ^ (rng.random() < (0.1 if i < ROWS // 2 else 0.25)))
        outcomes.append((START + i * STEP + delay, f"r-{i}", actual))
    outcomes.sort()
    text = [json.dumps({"id": i, "actual": a, "timestamp": _iso(t)}) for t, i, a in outcomes]
    text.insert(100, '{"id": "r-x", "actual": ')  # a torn line
    text.insert(200, json.dumps({"id": "never-predicted", "actual": 1, "timestamp": _iso(START)}))
    (LOGS / "credit_outcomes.jsonl").write_text("\n".join(text) + "\n")


def _species(rng: np.random.Generator) -> None:
    """Multiclass, JSONL, outcome in the row, from_stream reference, PSI, multivariate."""
    classes = ["setosa", "versicolor", "virginica"]
    lines = []
    for i in range(ROWS):
        drifted = i > ROWS * 0.7
        label = int(rng.integers(0, 3))
        petal = float(rng.normal(1.5 + label + (0.8 if drifted else 0), 0.3))
        sepal = float(rng.normal(5 + 0.5 * label, 0.4))
        width = float(rng.normal(3 - 0.2 * label, 0.3)) if rng.random() > 0.02 else None
        color = str(rng.choice(["blue", "purple", "white"], p=[0.5, 0.3, 0.2]))
        predicted = label if rng.random() < (0.92 if not drifted else 0.7) else (label + 1) % 3
        row = {
            "timestamp": START + i * STEP,
            "prediction": classes[predicted],
            "actual": classes[label] if rng.random() > 0.05 else None,
            "petal": round(petal, 3),
            "sepal": round(sepal, 3),
            "width": None if width is None else round(width, 3),
            "color": color,
        }
        lines.append(json.dumps(row))
        if i == 700:
            lines.append(json.dumps({**row, "petal": "long"}))
        if i == 701:
            lines.append("[1, 2, 3]")
    (LOGS / "species.jsonl").write_text("\n".join(lines) + "\n")


def _delivery(rng: np.random.Generator, name: str) -> None:
    """Regression, CSV, outcome in the row, reference file."""
    header = ["timestamp", "distance_km", "hour", "zone", "prediction", "actual"]

    def rows(n: int, live: bool) -> list[list[object]]:
        out = []
        for i in range(n):
            drifted = live and i > ROWS // 3
            distance = float(rng.gamma(2.0, 4.0 + (3.0 if drifted else 0.0)))
            hour = int(rng.integers(6, 23))
            zone = str(rng.choice(["north", "south", "east", "west"]))
            actual = 5 + 2.1 * distance + 0.3 * hour + float(rng.normal(0, 3))
            prediction = 6 + 2.0 * distance + 0.3 * hour
            stamp: object = _iso(START + i * STEP) if live else ""
            out.append(
                [
                    stamp,
                    round(distance, 3),
                    hour,
                    zone,
                    round(prediction, 3),
                    round(actual, 3) if rng.random() > 0.04 else None,
                ]
            )
        return out

    _write_csv(LOGS / f"{name}_reference.csv", header[1:], [r[1:] for r in rows(800, False)])
    _write_csv(LOGS / f"{name}.csv", header, rows(ROWS, True))


def _fraud(rng: np.random.Generator, name: str) -> None:
    """Binary, outcome in the row, categorical-heavy, a static version."""
    header = ["timestamp", "id", "country", "device", "amount", "prediction", "actual"]

    def rows(n: int, live: bool) -> list[list[object]]:
        out = []
        for i in range(n):
            drifted = live and i > ROWS // 2
            country = str(rng.choice(["de", "fr", "it", "es"] + (["xx"] if drifted else [])))
            device = str(rng.choice(["ios", "android", "web"], p=[0.3, 0.3, 0.4]))
            amount = round(float(rng.exponential(80 + (40 if drifted else 0))), 2)
            actual = int(rng.random() < 0.08)
            predicted = actual if rng.random() < 0.9 else 1 - actual
            stamp: object = _iso(START + i * STEP) if live else ""
            out.append([stamp, f"t-{i}", country, device, amount, predicted, actual])
        return out

    _write_csv(LOGS / f"{name}_reference.csv", header[2:], [r[2:] for r in rows(1_000, False)])
    _write_csv(LOGS / f"{name}.csv", header, rows(ROWS, True))


def main() -> None:
    LOGS.mkdir(exist_ok=True)
    rng = np.random.default_rng(20261129)
    _credit(rng)
    _species(rng)
    _delivery(rng, "delivery")
    _delivery(rng, "delivery_w")
    _fraud(rng, "fraud")
    _fraud(rng, "fraud_js")


if __name__ == "__main__":
    main()
