"""One model's traffic: rows drawn from its held-out pool, due at its rate, drifting after
``drift_after``.

Row ``k`` is due ``(k + 1) / rate`` seconds after the start and its content depends only on
``seed`` and ``k``, however the rows are fetched: the stream is made in blocks, each from its
own random stream. The reference is drawn the same way from a stream of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from exporter.demo.config import REFERENCE_ROWS, DemoModel
from exporter.demo.logs import format_value
from exporter.demo.training import SPLIT_SEED, TrainedModel

NOISE_STD = 0.05
"""Noise added to each drawn row, in standard deviations of the held-out rows."""
MISSING_RATE = 0.01
"""Share of rows with one numeric feature left empty."""
OUTCOME_JITTER = 0.5
"""Outcomes arrive ``outcome_delay * (1 + OUTCOME_JITTER * u)`` after the prediction, u ~ U[0,1)."""
REGIME_ROWS = 4000
"""Rows simulated per regime (before / after the drift) for the story's estimates."""
_BLOCK = 256


@dataclass(frozen=True)
class Rows:
    """Drawn rows: the values scored (``x``, NaN where missing) and as logged (``text``)."""

    x: np.ndarray
    text: np.ndarray
    category: np.ndarray
    actual: np.ndarray
    prediction: np.ndarray
    jitter: np.ndarray
    """Per row, ``u`` of :data:`OUTCOME_JITTER` (empty for outcomes in the row)."""


def pool_order(key: list[int], positions: np.ndarray, size: int) -> np.ndarray:
    """The pool row at each stream position: the stream goes through the pool in passes,
    every row once per pass, in a new random order each pass (pass ``p``'s order depends
    only on ``key`` and ``p``)."""
    passes = positions // size
    idx = np.empty(len(positions), dtype=np.int64)
    for p in np.unique(passes):
        order = np.random.default_rng([*key, int(p)]).permutation(size)
        here = passes == p
        idx[here] = order[positions[here] % size]
    return idx


@dataclass
class Traffic:
    """The rows one model serves, and samples drawn as they are."""

    model: DemoModel
    trained: TrainedModel
    seed: int
    rate: float
    drift_after: float
    _block_index: int = field(default=-1, init=False)
    _block: Rows | None = field(default=None, init=False)

    @property
    def shift(self) -> np.ndarray:
        """Per feature, the shift after the drift in reference standard deviations."""
        return np.array([self.model.drift_shift.get(name, 0.0) for name in self.model.features])

    def sample(self, rng: np.random.Generator, drifted: np.ndarray, idx: np.ndarray) -> Rows:
        """Rows from the pool rows ``idx`` (see :func:`pool_order`): + noise (+ shift where
        ``drifted``), scored as logged."""
        pool = self.trained
        n = len(drifted)
        width = len(self.model.features)
        noise = rng.normal(0.0, NOISE_STD, (n, width)) * pool.std
        missing = rng.random(n) < MISSING_RATE
        missing_col = rng.integers(0, width, n)
        # drawn last, and only for delayed outcomes, so that the other draws stay as they are
        jitter = rng.random(n) if self.model.delayed_outcomes else np.empty(0)

        x = np.clip(pool.x[idx] + noise, pool.min, pool.max)
        x = x + np.outer(drifted, self.shift * pool.std)
        text = np.array([[format_value(v) for v in row] for row in x], dtype=object)
        x = text.astype(float)  # score exactly what is logged
        rows = np.flatnonzero(missing)
        x[rows, missing_col[rows]] = np.nan
        text[rows, missing_col[rows]] = ""
        return Rows(
            x=x,
            text=text,
            category=pool.category[idx],
            actual=pool.y[idx],
            prediction=pool.predict(x),
            jitter=jitter,
        )

    def _draw(
        self, noise: list[int], order: list[int], positions: np.ndarray, drifted: np.ndarray
    ) -> Rows:
        """The rows at stream ``positions``, from the random streams keyed ``noise`` and
        ``order`` (see :func:`pool_order`)."""
        idx = pool_order(order, positions, self.trained.size)
        return self.sample(np.random.default_rng(noise), drifted, idx)

    def reference(self) -> Rows:
        """:data:`REFERENCE_ROWS` rows of pre-drift traffic, the same for every ``seed``."""
        noise, order = self.model.streams.reference
        return self._draw(
            [SPLIT_SEED, noise],
            [SPLIT_SEED, order],
            np.arange(REFERENCE_ROWS),
            np.zeros(REFERENCE_ROWS, bool),
        )

    def regimes(self, streams: tuple[int, int]) -> dict[str, Rows]:
        """:data:`REGIME_ROWS` rows before and after the drift, from a ``streams`` pair of their
        own (keyed with ``seed``), so that the logs are not affected."""
        noise, order = streams
        rng = np.random.default_rng([self.seed, noise])
        idx = pool_order([self.seed, order], np.arange(REGIME_ROWS), self.trained.size)
        return {
            regime: self.sample(rng, np.full(REGIME_ROWS, drifted), idx)
            for regime, drifted in (("before", False), ("after", True))
        }

    def due(self, elapsed: float) -> int:
        """How many rows are due ``elapsed`` seconds after the start."""
        return max(0, math.floor(elapsed * self.rate + 1e-9))

    def row_time(self, k: int) -> float:
        """Seconds after the start at which row ``k`` is due."""
        return (k + 1) / self.rate

    def row(self, k: int) -> tuple[Rows, int]:
        """Row ``k`` of the stream: its block and its index there."""
        b = k // _BLOCK
        if self._block is None or b != self._block_index:
            ks = np.arange(b * _BLOCK, (b + 1) * _BLOCK)
            noise, order = self.model.streams.traffic
            drifted = (ks + 1) / self.rate >= self.drift_after
            self._block = self._draw([self.seed, noise, b], [self.seed, order], ks, drifted)
            self._block_index = b
        return self._block, k % _BLOCK
