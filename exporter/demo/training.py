"""The demo's models, trained on datasets that scikit-learn ships, and the held-out rows
their traffic is drawn from.

Each model is trained on half of its dataset; the other half, the held-out validation rows,
is the pool that the reference and the live traffic draw from. The model and the pool are the
same for every ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from exporter.demo.config import CLASSIFIER, REGRESSION, DemoModel

SPLIT_SEED = 0
"""Seeds the split and every stream that must not depend on the demo's ``seed``."""
_VALIDATION_SHARE = 0.5


def _breast_cancer() -> tuple[pd.DataFrame, np.ndarray]:
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(
        columns={
            "mean radius": "mean_radius",
            "mean texture": "mean_texture",
            "mean concave points": "mean_concave_points",
            "worst area": "worst_area",
            "worst smoothness": "worst_smoothness",
        }
    )
    return frame, 1 - data.target.to_numpy()  # scikit-learn's 0 is malignant; ours is 1


def _diabetes() -> tuple[pd.DataFrame, np.ndarray]:
    # scaled=False: the raw measurements, as a lab would log them
    data = load_diabetes(as_frame=True, scaled=False)
    frame = data.frame.rename(columns={"bp": "blood_pressure", "s3": "hdl", "s5": "ltg"})
    return frame, data.target.to_numpy(dtype=float)


_DATASETS: dict[str, Callable[[], tuple[pd.DataFrame, np.ndarray]]] = {
    CLASSIFIER.name: _breast_cancer,
    REGRESSION.name: _diabetes,
}


class TrainedModel:
    """A fitted pipeline (median imputer, scaler, estimator) and its held-out pool of rows."""

    def __init__(self, model: DemoModel) -> None:
        frame, target = _DATASETS[model.name]()
        features = frame[list(model.features)].to_numpy(dtype=float)
        self.binary = model.threshold is not None
        x_train, x_val, y_train, y_val = train_test_split(
            features,
            target,
            test_size=_VALIDATION_SHARE,
            random_state=SPLIT_SEED,
            stratify=target if self.binary else None,
        )
        estimator = LogisticRegression() if self.binary else Ridge(alpha=1.0)
        self.pipeline: Pipeline = make_pipeline(
            SimpleImputer(strategy="median"), StandardScaler(), estimator
        )
        self.pipeline.fit(x_train, y_train)

        rng = np.random.default_rng([SPLIT_SEED, model.streams.pool])
        self.x = x_val
        self.y = y_val.round().astype(int)
        self.category = rng.choice(
            np.array(list(model.categories)), size=len(x_val), p=list(model.categories.values())
        )
        self.std = x_val.std(axis=0, ddof=1)
        self.min = x_val.min(axis=0)
        self.max = x_val.max(axis=0)

    @property
    def size(self) -> int:
        return len(self.y)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The logged prediction: the positive class's probability, or the regression's value
        to two decimals (progression is a whole number)."""
        if self.binary:
            return self.pipeline.predict_proba(x)[:, 1]
        return self.pipeline.predict(x).round(2)
