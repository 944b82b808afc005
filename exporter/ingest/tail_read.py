"""Reading one followed file: complete lines from its offset to its end, in chunks.

Offsets. A file's offset points just after the last complete line consumed ("consumed":
  yielded in a chunk). A partial last line (no b"\\n" yet) is not consumed: it is read again
  once its newline arrives. Nothing is buffered across polls, so the checkpointed offset alone
  is enough to resume.
CSV header. The first line of each file; never emitted as data, passed with every chunk of
  that file. A file whose header line is not complete yet is waited for. A CSV file truncated
  in place whose first new line is not its old header keeps the old header: after
  copytruncate a writer usually just goes on appending rows.
Too long lines. A line longer than max_line_bytes (not counting its b"\\n") is never buffered
  whole: it is skipped up to and including its newline and counted in Chunk.too_long when
  that newline is consumed, even polls later (the "skipping" flag is part of the state). An
  over-long first line of a CSV file is counted so, and the next line is the header.
Hot path. os.pread on descriptors in blocks of up to chunk_bytes, line ends found with
  bytes.rfind (one search per max_line_bytes, not per line); no Python object per line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from exporter.ingest.tail_files import TailedFile, stamp

_SKIP_BLOCK = 1 << 16


@dataclass(frozen=True)
class Reading:
    """How the files of a source are read."""

    csv: bool  # a header line first (CSV), or none (JSONL)
    max_line: int  # longer lines are skipped and counted (rule: too long lines)
    chunk_bytes: int  # the most bytes one chunk reads at a time


@dataclass(frozen=True)
class Chunk:
    source: str  # the configured source string (path or glob), used as a metric label
    path: str  # the file the bytes came from (its current or last known name)
    header: bytes | None  # CSV: that file's header line without line ending; None for jsonl
    data: bytes  # zero or more complete lines, each ending in b"\n"; never the CSV header
    too_long: int  # lines skipped in this step for exceeding max_line_bytes (not in data)
    end_offset: int  # byte offset in that file just after `data`


class LineReader:
    """Reads followed files of one source up to their current size, as chunks of lines.

    ``establish(f, end)`` takes f's fingerprint (False while there is too little data for
    one) and may find f to be a copy, which is then not read; ``touch(f)`` marks f active."""

    def __init__(
        self,
        source: str,
        reading: Reading,
        *,
        touch: Callable[[TailedFile], None],
        establish: Callable[[TailedFile, int], bool],
    ) -> None:
        self._source = source
        self._csv = reading.csv
        self._max_line = reading.max_line
        self._chunk_bytes = reading.chunk_bytes
        self._touch = touch
        self._establish = establish

    def drain(self, f: TailedFile) -> Iterator[Chunk]:
        """Read `f` up to the size it has now; yield complete lines. Once all of it is read
        (but a partial last line), its stat is kept: unchanged, it is not looked at again."""
        fd = f.fd
        if fd is None or f.copy_of is not None:
            return
        st = os.fstat(fd)
        f.stamp = None
        if (yield from self._read(f, fd, st.st_size)):
            f.stamp = stamp(st)

    def prepare(self, f: TailedFile, size: int) -> None:
        """A new file: its header and fingerprint, as far as its first `size` bytes hold them."""
        if self._csv and f.header is None and not self.read_header(f, size):
            return
        if not f.skipping and not f.fp:
            self._establish(f, size)

    def _read(self, f: TailedFile, fd: int, end: int) -> Generator[Chunk, None, bool]:
        """The reading loop of drain; returns whether everything up to `end` was looked at."""
        want = self._chunk_bytes
        while f.offset < end:
            done: bool | None
            if f.skipping:
                done = yield from self._skip(f, fd, end, want)
            elif self._csv and f.header is None:
                done = None if self.read_header(f, end) else True
            elif not f.fp and not self._establish(f, end):
                done = True  # too little data for a fingerprint yet
            elif f.copy_of is not None:
                done = False  # it turned out to be a copy: not read on its own
            else:
                done, want = yield from self._lines(f, fd, end, want)
            if done is not None:
                return done
        return True

    def _skip(
        self, f: TailedFile, fd: int, end: int, want: int
    ) -> Generator[Chunk, None, bool | None]:
        """One step through a too long line; False if the file ended before `end`."""
        start = f.offset
        block = os.pread(fd, min(end - start, max(want, _SKIP_BLOCK)), start)
        if not block:
            return False
        newline = block.find(b"\n")
        if newline < 0:
            f.offset = start + len(block)
            yield self._chunk(f, b"", 0)
        else:
            f.offset, f.skipping = start + newline + 1, False
            yield self._chunk(f, b"", 1)
        return None

    def _lines(
        self, f: TailedFile, fd: int, end: int, want: int
    ) -> Generator[Chunk, None, tuple[bool | None, int]]:
        """One block of up to `want` bytes as a chunk of complete lines. Returns (done, want):
        done as _read returns it, or None to go on with a block of `want` bytes."""
        start = f.offset
        block = os.pread(fd, min(end - start, want), start)
        if not block:
            return False, want
        if want > self._chunk_bytes:  # enlarged for one long line: emit just that line
            newline = block.find(b"\n")
            if newline >= 0:
                block = block[: newline + 1]
        data, used, too_long, skipping = split_complete_lines(block, self._max_line)
        if used == 0:
            if start + len(block) < end and want < self._max_line + 2:
                return None, self._max_line + 2  # one line longer than a chunk: read it whole
            return True, want
        f.offset, f.skipping = start + used, skipping
        yield self._chunk(f, data, too_long)
        if used < len(block) and not skipping and start + len(block) >= end:
            return True, want  # only a partial last line is left
        return None, self._chunk_bytes

    def read_header(self, f: TailedFile, end: int) -> bool:
        """CSV: take the header line at f.offset. False while it is not complete."""
        assert f.fd is not None
        block = os.pread(f.fd, min(end - f.offset, self._max_line + 1), f.offset)
        newline = block.find(b"\n")
        if newline < 0:
            if len(block) > self._max_line:
                f.skipping = True  # skipped and counted as too long; the next line is the header
                return True
            return False
        line = block[: newline + 1]
        if f.prev_header is not None and line != f.prev_header:
            # Truncated in place and the writer goes on with rows: keep the old header.
            f.header, f.inherited, f.data_start = f.prev_header, True, f.offset
        else:
            f.header, f.inherited = line, False
            f.data_start = f.offset = f.offset + newline + 1
        f.prev_header = None
        return True

    def _chunk(self, f: TailedFile, data: bytes, too_long: int) -> Chunk:
        self._touch(f)
        header = None if f.header is None else _strip_line_end(f.header)
        return Chunk(self._source, f.path, header, data, too_long, f.offset)


def split_complete_lines(block: bytes, max_line: int) -> tuple[bytes, int, int, bool]:
    """Split a block that starts at a line start into complete lines to emit.

    Returns (data, used, too_long, skipping): ``data`` the complete lines of at most
    ``max_line`` bytes (newline not counted) in order, ``used`` how many bytes of the block
    they and the skipped lines take, ``too_long`` how many complete lines were skipped, and
    ``skipping`` whether the block ends inside a too-long line (then ``used`` is the whole
    block). A partial last line that may still fit is left unused. The loop runs once per
    ``max_line`` bytes, not once per line.
    """
    n = len(block)
    window = max_line + 1  # a line is too long iff its first `window` bytes hold no newline
    if n <= window:
        last = block.rfind(b"\n")
        if last >= 0:
            return (block if last == n - 1 else block[: last + 1]), last + 1, 0, False
        if n == window:
            return b"", n, 0, True
        return b"", 0, 0, False
    view = memoryview(block)
    parts: list[memoryview] = []
    kept = p = too_long = 0
    skipping = False
    while p < n:
        limit = p + window
        newline = block.rfind(b"\n", p, limit)
        if newline >= 0:
            p = newline + 1
            continue
        if limit > n:
            break  # a partial last line
        if p > kept:
            parts.append(view[kept:p])
        end = block.find(b"\n", limit)
        if end < 0:
            p = kept = n
            skipping = True
            break
        too_long += 1
        p = kept = end + 1
    if p > kept:
        parts.append(view[kept:p])
    if len(parts) == 1 and len(parts[0]) == n:
        return block, p, too_long, skipping
    return b"".join(parts), p, too_long, skipping


def _strip_line_end(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line
