"""One simulated model serving its traffic into its logs.

At construction the model is trained and its reference and the headers of its logs are
written (files are created or overwritten); from :meth:`ModelServer.start` on, each
:meth:`ModelServer.step` appends the rows due by then. The outcome of a row is either in the
row (``actual``) or, for a model with an outcome log, appended there 1-1.5 x
``outcome_delay`` later.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from exporter.demo.config import MODEL_VERSION, DemoModel
from exporter.demo.logs import CsvLog, OutcomeLog, iso, write_csv
from exporter.demo.traffic import OUTCOME_JITTER, Traffic
from exporter.demo.training import TrainedModel


class ModelServer:
    """One model of the demo, writing its reference, prediction log and outcomes."""

    def __init__(
        self,
        model: DemoModel,
        log_dir: Path,
        *,
        seed: int,
        rate: float,
        drift_after: float,
        outcome_delay: float,
    ) -> None:
        self.model = model
        self.log_dir = Path(log_dir)
        self.outcome_delay = outcome_delay
        self.traffic = Traffic(
            model, TrainedModel(model), seed=seed, rate=rate, drift_after=drift_after
        )
        self._t0: float | None = None
        self._written = 0

        self.log_dir.mkdir(parents=True, exist_ok=True)
        reference = self.traffic.reference()
        self.reference_x: np.ndarray = reference.x
        write_csv(
            self.reference_path,
            model.reference_columns,
            (
                [*values, category, f"{prediction:.{model.prediction_decimals}f}", int(actual)]
                for values, category, prediction, actual in zip(
                    reference.text,
                    reference.category,
                    reference.prediction,
                    reference.actual,
                    strict=True,
                )
            ),
        )
        self._predictions = CsvLog(self.predictions_path, model.log_columns)
        self._outcomes = OutcomeLog(self.outcomes_path) if self.outcomes_path else None

    @property
    def predictions_path(self) -> Path:
        return self.log_dir / self.model.predictions_file

    @property
    def reference_path(self) -> Path:
        return self.log_dir / self.model.reference_file

    @property
    def outcomes_path(self) -> Path | None:
        outcomes = self.model.outcomes_file
        return self.log_dir / outcomes if outcomes else None

    @property
    def rate(self) -> float:
        return self.traffic.rate

    @property
    def drift_after(self) -> float:
        return self.traffic.drift_after

    def start(self, t0: float) -> None:
        """Set time 0 of the story (clock seconds); rows are due from then on."""
        self._t0 = t0

    def step(self, now: float) -> int:
        """Append the rows due by ``now`` (clock seconds) and the outcomes arrived by then;
        returns how many prediction rows were written."""
        if self._t0 is None:
            raise RuntimeError("ModelServer.start() was not called")
        model, traffic = self.model, self.traffic
        due = traffic.due(now - self._t0)
        lines = []
        for k in range(self._written, due):
            rows, i = traffic.row(k)
            t = self._t0 + traffic.row_time(k)
            line = [
                iso(t),
                model.request_id(k),
                MODEL_VERSION,
                *rows.text[i],
                rows.category[i],
                f"{rows.prediction[i]:.{model.prediction_decimals}f}",
            ]
            if self._outcomes is None:
                line.append(int(rows.actual[i]))
            else:
                delay = self.outcome_delay * (1.0 + OUTCOME_JITTER * float(rows.jitter[i]))
                self._outcomes.hold(t + delay, k, model.request_id(k), int(rows.actual[i]))
            lines.append(line)
        self._predictions.append(lines)
        written = max(0, due - self._written)
        self._written = max(self._written, due)
        if self._outcomes is not None:
            self._outcomes.release(now)
        return written
