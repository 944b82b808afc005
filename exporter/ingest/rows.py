"""What a source's rows must carry (`RowSchema`) and what parsing a chunk gives (`ParsedRows`).

One line, one verdict (lines as `exporter.ingest.line_scan` finds them; blank lines are
none): every line is a row of the frame or is rejected for exactly one reason, so for any
bytes ``lines == len(frame) + sum(rejected.values())``, and a chunk gives what its lines
give one by one.

Rejection reasons: ``parse`` (garbage, wrong field count, bad quoting, not one JSON
object), ``encoding`` (invalid UTF-8, lone surrogate), ``timestamp`` (missing or
unparseable), ``schema`` (the prediction, or an outcome's id/actual, is missing or of the
wrong type; a header that lacks a required column). ``too_long`` comes from the tailer,
``duplicate`` and ``late`` from the model state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

EXAMPLE_BYTES = 80  # of a rejected line, quoted in the log as an example of the reason


def excerpt(line: bytes) -> str:
    """The beginning of a rejected line, quoted for the log."""
    return repr(line[:EXAMPLE_BYTES])


@dataclass(frozen=True)
class RowSchema:
    """What a source's rows must carry. Column names are the configured ones."""

    timestamp: str | None  # None: the timestamp is optional (outcome rows)
    required: tuple[str, ...]  # columns that must be present and non-empty
    numeric: tuple[str, ...] = ()  # required columns that must be finite numbers
    text: tuple[str, ...] = ()  # columns read as text, never as numbers (ids, labels, categories)
    # text columns with few distinct values (categorical features), read as pandas
    # categoricals: the CSV parser then keeps one string per distinct value, not per row
    categories: tuple[str, ...] = ()
    numeric_features: tuple[str, ...] = ()  # read as floats when every value is a number
    timestamp_required: bool = True
    # The columns anything downstream reads (None: all of them). Parsing a column costs
    # about as much as using it, and unique text (request ids) costs the most.
    columns: frozenset[str] | None = None
    # CSV cell texts that mean "missing" besides the empty cell (config ``na_values``)
    na_values: tuple[str, ...] = ()

    def required_columns(self) -> list[str]:
        """The columns a row cannot do without, the timestamp first when it is required."""
        names = list(self.required)
        if self.timestamp is not None and self.timestamp_required:
            names.insert(0, self.timestamp)
        return names

    def numeric_columns(self) -> tuple[str, ...]:
        """Columns whose every valid value is a number: anything else rejects the row (the
        numeric required columns) or counts as invalid (numeric features)."""
        return (*self.numeric, *self.numeric_features)


@dataclass
class ParsedRows:
    frame: pd.DataFrame  # the good rows; columns as named in the log
    timestamps: np.ndarray  # float64 epoch seconds per good row (NaN where optional and absent)
    lines: int  # lines in the chunk, good and bad (blank lines not counted)
    rejected: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)  # reason -> first why, for the log

    def reject(self, reason: str, count: int, example: str) -> None:
        if count <= 0:
            return
        self.rejected[reason] = self.rejected.get(reason, 0) + count
        self.examples.setdefault(reason, example)


def empty_rows(lines: int = 0) -> ParsedRows:
    return ParsedRows(pd.DataFrame(), np.zeros(0), lines)


class MiscountedError(RuntimeError):
    """A parse path gave other than one verdict per line (a bug: `parse_chunk_safely`
    decides the chunk again in smaller parts)."""
