"""Class labels in a reference compare as the live ones do: as canonical label text.

The live path reads ``1.0`` and ``1`` as the same class (the confusion matrix says ``1``);
a reference CSV written by pandas from float labels holds ``1.0``. Without the same reading
on both sides, every class looked unseen and prediction and outcome drift fired on
identical distributions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from support import read_everything

from exporter.config import config_from_mapping

START = 1_767_571_200
ROWS = 600


def write_case(folder: Path, reference_label: str, live_label: str) -> None:
    rng = np.random.default_rng(7)
    classes = rng.integers(1, 4, size=(2, ROWS))
    reference = ["x,prediction,actual"] + [
        f"{rng.random()},{reference_label.format(c)},{reference_label.format(c)}"
        for c in classes[0]
    ]
    live = ["timestamp,x,prediction,actual"] + [
        f"{START + i * 60},{rng.random()},{live_label.format(c)},{live_label.format(c)}"
        for i, c in enumerate(classes[1])
    ]
    (folder / "reference.csv").write_text("\n".join(reference) + "\n")
    (folder / "predictions.csv").write_text("\n".join(live) + "\n")


def drift_samples(folder: Path) -> dict[str, float]:
    config = config_from_mapping(
        {
            "state_dir": str(folder / "state"),
            "models": [
                {
                    "name": "m",
                    "task": "multiclass",
                    "predictions": {"path": "predictions.csv"},
                    "features": {"x": "numeric"},
                    "reference": {"path": "reference.csv"},
                    "windows": ["1d"],
                    "drift": {"method": "chisquare"},
                }
            ],
        },
        base_dir=folder,
    )
    registry = read_everything(config, now=START + ROWS * 60 + 30)
    labels = {"model": "m", "window": "1d", "method": "chisquare"}
    return {
        name: registry.get_sample_value(f"mlmodel_{name}_drift_score", labels)
        for name in ("prediction", "outcome")
    }


def test_float_written_class_labels_in_the_reference_match_integer_live_labels(
    tmp_path: Path,
) -> None:
    write_case(tmp_path, reference_label="{}.0", live_label="{}")
    same_text = tmp_path / "same"
    same_text.mkdir()
    write_case(same_text, reference_label="{}", live_label="{}")
    expected = drift_samples(same_text)
    assert drift_samples(tmp_path) == expected
    assert all(score < 20 for score in expected.values()), expected  # 2 dof: no drift
