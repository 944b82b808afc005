"""A chunk of a log into rows by its format's parser, never raising and never losing a chunk.

`parse_chunk_safely` is what the engine calls. It checks each chunk's verdicts against
its own count of the lines ("one line, one verdict", `exporter.ingest.rows`), and should
`parse_csv` or `parse_jsonl` raise on some input (or miscount), it decides that chunk
again in halves down to single lines; a line that still fails is rejected (``parse``).
Nothing skips a chunk.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from exporter.ingest.csv_rows import parse_csv
from exporter.ingest.jsonl_rows import parse_jsonl
from exporter.ingest.line_scan import line_count, physical_lines
from exporter.ingest.rows import MiscountedError, ParsedRows, RowSchema, empty_rows, excerpt


def parse_chunk_safely(
    fmt: str, header: bytes | None, data: bytes, schema: RowSchema
) -> ParsedRows:
    """`parse_csv` (with the file's ``header``) or `parse_jsonl` of ``data``; never raises.

    Should the parser raise on some input, or give a count that breaks "one line, one
    verdict", the chunk is decided again in halves down to single lines; a line that still
    fails is rejected (``parse``). The good lines around it count as usual."""

    def parse(part: bytes) -> ParsedRows:
        if fmt == "csv":
            return parse_csv(header or b"", part, schema)
        return parse_jsonl(part, schema)

    try:
        return _checked(parse, data)
    except Exception:  # anything: a bug or a library's limit must not stop the source
        pass
    return _parse_in_halves(parse, physical_lines(data))


def _checked(parse: Callable[[bytes], ParsedRows], data: bytes) -> ParsedRows:
    rows = parse(data)
    accepted = len(rows.frame)
    if (
        rows.lines != line_count(data)
        or rows.lines != accepted + sum(rows.rejected.values())
        or len(rows.timestamps) != accepted
    ):
        raise MiscountedError(f"{rows.lines} lines, {accepted} rows, rejected {rows.rejected}")
    return rows


def _parse_in_halves(parse: Callable[[bytes], ParsedRows], lines: list[bytes]) -> ParsedRows:
    """The verdicts on ``lines`` (which did not parse together): each half parsed on its
    own, and a half that fails too is split again; a single line that fails is rejected."""
    if not lines:
        return empty_rows()
    if len(lines) == 1:
        try:
            return _checked(parse, lines[0])
        except Exception as err:  # the last resort: this line alone fails
            result = empty_rows(line_count(lines[0]))
            why = f"unreadable ({type(err).__name__})"
            result.reject("parse", result.lines, f"{why}: {excerpt(lines[0])}")
            return result
    middle = len(lines) // 2
    parts = []
    for half in (lines[:middle], lines[middle:]):
        try:
            parts.append(_checked(parse, b"".join(half)))
        except Exception:  # narrowed down in the next halving
            parts.append(_parse_in_halves(parse, half))
    return _combined(parts)


def _combined(parts: list[ParsedRows]) -> ParsedRows:
    frames = [part.frame for part in parts if len(part.frame)]
    if len(frames) > 1:
        frame = pd.concat(frames, ignore_index=True)
    else:
        frame = frames[0] if frames else pd.DataFrame()
    timestamps = np.concatenate([part.timestamps for part in parts if len(part.frame)] or [[]])
    result = ParsedRows(frame, timestamps.astype(np.float64), sum(part.lines for part in parts))
    for part in parts:
        for reason, count in part.rejected.items():
            result.reject(reason, count, part.examples.get(reason, ""))
    return result
