"""The fine grid a numeric feature's values are counted on, and counting values on it.

The fine grid is the set of points ``g_0 = min < g_1 < ... < g_{G-1} = max``: all
distinct reference values when there are no more than ``fine_bins + 1`` of them (so
discrete features are represented exactly), else ``fine_bins / 2`` probability
quantiles and ``fine_bins / 2`` points where a Wasserstein distance accumulates
(`fine_grid`); plus the PSI edges. A value is counted in one of ``2G + 1`` *slots*:
below ``g_0`` (slot 0), on a grid point ``g_j`` (slot ``2j + 1``), strictly between
``g_{j-1}`` and ``g_j`` (slot ``2j``), or above ``g_{G-1}`` (slot ``2G``). For the open
intervals (even slots, ``G + 1`` of them) the sum of distances to the interval's finite
end is kept too, which makes the Wasserstein integral exact wherever the two CDFs do not
cross inside a fine bin, and exact outside the reference range. A window therefore holds
``3G + 6`` numbers per numeric feature (about 24 KB at 1000 points), whatever its rows.
The reference is counted into these slots once (`exporter.stats.fit.fit_numeric`), a
window's values every time they arrive (`exporter.stats.profile`, `exporter.monitor`);
`exporter.stats.drift` computes KS and Wasserstein from the counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["CellIndex", "fine_grid", "fine_histogram"]


def fine_grid(sorted_values: np.ndarray, fine_bins: int, psi_edges: np.ndarray) -> np.ndarray:
    """The fine grid: all distinct values if few, else two kinds of quantiles, + PSI edges.

    Half the points are probability quantiles (every ``2n/fine_bins``-th order
    statistic), which bounds the reference mass of an open bin and so the KS error. The
    other half are quantiles of the measure ``sqrt(F (1 - F)) dx`` (interpolated, not
    data values), which is how a Wasserstein distance between two samples of the
    reference distribution accumulates: it puts points in the wide, sparse tails where
    a few values carry much of the distance, and keeps the Wasserstein error small even
    for heavy tails (lognormal, Pareto, Cauchy).
    """
    distinct, counts = np.unique(sorted_values, return_counts=True)
    if len(distinct) <= fine_bins + 1:
        return np.unique(np.concatenate([distinct, psi_edges]))
    n = len(sorted_values)
    probability_bins = max(fine_bins // 2, 1)
    positions = np.round(np.linspace(0, n - 1, probability_bins + 1)).astype(np.intp)
    share_below = np.cumsum(counts)[:-1] / n
    spread = np.diff(distinct) * np.sqrt(share_below * (1 - share_below))
    cumulative = np.concatenate([[0.0], np.cumsum(spread)])
    targets = np.linspace(0.0, cumulative[-1], fine_bins - probability_bins + 1)
    spread_points = np.interp(targets, cumulative, distinct)
    return np.unique(np.concatenate([sorted_values[positions], spread_points, psi_edges]))


def fine_histogram(
    grid: np.ndarray, values: np.ndarray, index: CellIndex | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Count finite values into the ``2G + 1`` slots of a fine grid (module docstring).

    Returns ``(counts, offsets)``: int64 counts per slot, and per open interval
    (``G + 1``) the float64 sum of each value's distance to the interval's finite end:
    ``g_0 - v`` below the grid, ``v - g_{j-1}`` inside ``(g_{j-1}, g_j)`` and above.
    One grid search (`index` speeds it up) and three ``bincount`` passes.
    """
    points = len(grid)
    right = (  # half-open bins [g_{r-1}, g_r)
        np.searchsorted(grid, values, side="right")
        if index is None
        else index.right_positions(values)
    )
    lower_point = np.concatenate([grid[:1], grid])  # g_{r-1} (g_0 for r = 0)
    on_point = lower_point[right] == values
    # Centre on the grid's middle so that per-bin sums lose no precision to a large offset.
    centre = grid[points // 2]
    lower = lower_point - centre
    half_open = np.bincount(right, minlength=points + 1)
    atoms = np.bincount(right[on_point], minlength=points + 1)
    sums = np.bincount(right, weights=values - centre, minlength=points + 1)
    counts = np.empty(2 * points + 1, dtype=np.int64)
    counts[0::2] = half_open - atoms
    counts[1::2] = atoms[1:]
    # Points on g_{r-1} add 0 to their half-open bin's distance sum.
    offsets = sums - half_open * lower
    offsets[0] = -offsets[0]
    return counts, offsets


@dataclass(frozen=True, eq=False)
class CellIndex:
    """A faster ``np.searchsorted(grid, values, side="right")`` for one fixed grid.

    A range of the grid is cut into equal cells; each cell knows the grid position at
    its left and the few grid points inside it, so a value's position is a table lookup
    plus `steps` vectorized compare-and-step passes (about 7x faster than the binary
    search for 250-point grids). The cell width comes from the central range of the
    reference (0.5% to 99.5%). When cells of that width span the whole grid in at most
    `MAX_CELLS` (`covers_grid`), a value outside the grid lands in an end cell and needs
    nothing more; otherwise (heavy tails) the cells span the central range and any value
    outside it goes through ``searchsorted``. The result is always exactly
    ``searchsorted``'s.
    """

    grid: np.ndarray
    low: float
    inverse_width: float
    cells: int
    start: np.ndarray
    steps: int
    covers_grid: bool

    MAX_STEPS = 6
    MAX_CELLS = 1 << 13  # 64 KB of table per feature
    CENTRAL_SHARE = 0.005

    @classmethod
    def build(cls, grid: np.ndarray, cdf_at_points: np.ndarray) -> CellIndex | None:
        """Index `grid` given the reference CDF at its points; None if not worth it."""
        first = int(np.searchsorted(cdf_at_points, cls.CENTRAL_SHARE))
        last = min(int(np.searchsorted(cdf_at_points, 1 - cls.CENTRAL_SHARE)), len(grid) - 1)
        low, high = float(grid[first]), float(grid[last])
        if not high > low or (high - low) < 1e-9 * max(abs(low), abs(high)):
            return None
        inner = last - first + 1
        for cells in (8 * inner, 32 * inner, 128 * inner):
            width = (high - low) / cells
            whole = math.ceil((float(grid[-1]) - float(grid[0])) / width)
            covers = whole <= cls.MAX_CELLS
            start_at, count = (float(grid[0]), max(whole, 1)) if covers else (low, cells)
            edges = start_at + (np.arange(count + 2) - 1) * width
            positions = np.searchsorted(grid, edges, "right")
            if covers:
                positions[-1] = len(grid)  # the last cell takes every value above the grid
            start = positions[:-2]
            steps = int((positions[2:] - start).max())
            if steps <= cls.MAX_STEPS:
                return cls(grid, start_at, 1 / width, count, start.astype(np.intp), steps, covers)
        return None

    def right_positions(self, values: np.ndarray) -> np.ndarray:
        """Same as ``np.searchsorted(self.grid, values, side="right")`` for finite values.

        A value inside the indexed range lands within one cell of its own (float error is
        far below a cell), and each cell's start is the grid position one cell to its left,
        so `steps` compare-and-step passes always reach the answer: no check is needed.
        Outside the range: below the grid, cell 0 starts at position 0 and stays there;
        above it, the last cell's steps reach the end. Values outside a central range
        (about 1% of a reference-like sample) are searched."""
        scaled = values - self.low
        scaled *= self.inverse_width
        outside = None if self.covers_grid else (scaled < 0) | (scaled >= self.cells)
        np.clip(scaled, 0, self.cells - 1, out=scaled)
        positions = self.start[scaled.astype(np.intp)]
        above = self.above
        for _ in range(self.steps):
            positions += above[positions] <= values
        if outside is not None and outside.any():
            where = np.flatnonzero(outside)
            positions[where] = np.searchsorted(self.grid, values[where], side="right")
        return positions

    @cached_property
    def above(self) -> np.ndarray:
        """The grid with +inf appended: ``above[p]`` is the point a position p must stay below."""
        return np.append(self.grid, np.inf)
