"""Follow one configured source (a path or a glob) of prediction-log lines.

A polling file follower without threads: the ingest loop calls ``Tailer.poll()`` every
~0.25 s and applies each yielded ``Chunk`` of complete lines before asking for the next.
``Tailer.state()`` between chunks is a JSON-serialisable snapshot to resume from exactly.

The rules follow google/mtail's filestream.go; each is written down where its code is, and
tests/ingest/test_tailer.py names its tests after them. "Consumed" means: yielded in a chunk
(the caller applies a chunk fully before it asks for the next one, so state() between chunks
describes exactly what has been applied).

- ``tail_files``: identity (dev + inode + fingerprint), how a copy is recognised.
- ``tail_read``: offsets, the CSV header, too long lines, the hot path.
- ``tail_glob``: the glob and the order files are read in.
- ``tail_descriptors``: descriptors (parking idle files), out of descriptors.
- ``tail_rotation``: rotation by rename + create, truncation, deleted and recreated.
- ``tail_copies``: copies and copytruncate.
- ``tail_recorded``: restart from state.
- ``tail_state``: the saved state.

Errors. A missing or unreadable source makes stats().up False; no OSError escapes poll(); it
recovers when the file appears. Events are reported through on_event(kind, message).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from exporter.config import DEFAULT_MAX_LINE_BYTES
from exporter.ingest.tail_copies import Copies
from exporter.ingest.tail_descriptors import TryLater, default_max_open
from exporter.ingest.tail_files import TailedFile, directory, untouched
from exporter.ingest.tail_followed import Followed, Key
from exporter.ingest.tail_glob import SourceGlob, oldest_first
from exporter.ingest.tail_read import Chunk, Reading
from exporter.ingest.tail_recorded import Recorded
from exporter.ingest.tail_rotation import Gone, Rotation
from exporter.ingest.tail_state import dump_state, load_state


@dataclass
class SourceStats:
    up: bool  # at least one matched file exists and is readable (for a path: that file)
    lag_bytes: int  # bytes written but not yet read, summed over followed files
    rotations: int  # rotations and truncations seen (monotonic; restored from state)


class Tailer:
    """Follow one source of log lines; see the rules in the modules listed above."""

    def __init__(
        self,
        source: str,
        *,
        fmt: str,
        base_dir: Path,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        chunk_bytes: int = 8 << 20,
        state: dict | None = None,
        on_event: Callable[[str, str], None] | None = None,
        max_open: int | None = None,
        idle_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        exclude_dir: Path | None = None,
    ) -> None:
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"fmt must be 'csv' or 'jsonl', not {fmt!r}")
        if max_line_bytes < 1 or chunk_bytes < 1:
            raise ValueError("max_line_bytes and chunk_bytes must be positive")
        if max_open is not None and max_open < 4:
            # A copy is compared with its original while files rotated away are still held.
            raise ValueError("max_open must be at least 4")
        self.source = source
        self._followed = fol = Followed(
            source,
            Reading(csv=fmt == "csv", max_line=max_line_bytes, chunk_bytes=chunk_bytes),
            max_open=default_max_open() if max_open is None else max_open,
            idle_seconds=idle_seconds,
            clock=clock,
            on_event=on_event,
        )
        self._glob = SourceGlob(source, base_dir, exclude_dir, fol.budget)
        self._copies = Copies(fol)
        self._rotation = Rotation(fol, self._copies)
        self._recorded = Recorded(fol, self._copies, self._rotation)
        self._up = False
        self._closed = False
        self._unreadable: set[str] = set()
        if state is not None:
            fol.rotations, fol.files = load_state(state, source)
            fol.next_id = max((f.rid for f in fol.files), default=0) + 1
            fol.unlocated = bool(fol.files)
            for f in fol.files:
                fol.index.add(f)

    # --- public ---------------------------------------------------------------------
    def poll(self) -> Iterator[Chunk]:
        """Yield everything available now, in chunks of complete lines."""
        if self._closed:
            return
        fol = self._followed
        fol.listings, fol.copy_listings = {}, {}
        keys = self._match()
        if keys is None:  # the source could not be listed for want of descriptors
            return
        lost, suspects, unsure = self._recorded.attach(keys)
        changed, copies = self._rotation.update_names(keys)
        followed = oldest_first(changed, fol.stats)
        # Every file whose content is gone (truncated, or lost while we were down) is known
        # before any copy is looked for, and copies are looked for before anything is read:
        # a file holding another one's content must never be read on its own.
        truncated, unsure_now = self._rotation.find_truncated(followed, suspects)
        gone, continuations, held, postponed = self._rotation.hand_over(
            [(f, f) for f in lost] + truncated, suspects, unsure or unsure_now
        )
        yield from self._after_truncations(gone, continuations, held, suspects)
        yield from self._read_on(followed, postponed)
        if postponed:  # copies are checked and new files looked at next poll
            return
        yield from self._check_copies(copies)
        yield from self._discover(keys)
        self._up = any((f.fd is not None or f.parked) and f.key in keys for f in fol.files)
        fol.budget.park_idle()

    def state(self) -> dict:
        """Everything needed to resume exactly after the chunks yielded so far."""
        return dump_state(self._followed.rotations, self._followed.files)

    def stats(self) -> SourceStats:
        fol = self._followed
        lag = 0
        for f in fol.files:
            if f.copy_of is not None:
                continue
            if f.fd is not None:
                try:
                    size = os.fstat(f.fd).st_size
                except OSError:
                    continue
            elif f.parked and f.key in fol.stats:
                size = fol.stats[f.key].st_size  # as of the last poll
            else:
                continue
            # A file now shorter than our offset was truncated: all of it is unread.
            lag += size - f.offset if size >= f.offset else size
        return SourceStats(up=self._up, lag_bytes=lag, rotations=fol.rotations)

    def close(self) -> None:
        self._closed = True
        self._followed.budget.close_all()

    # --- one poll, step by step -----------------------------------------------------------
    def _match(self) -> dict[Key, str] | None:
        fol = self._followed
        found = self._glob.match(
            lambda: (f.path for f in fol.files if f.current and (f.fd is not None or f.parked))
        )
        if found is None:
            return None
        keys, fol.matched, fol.stats = found
        return keys

    def _after_truncations(
        self,
        gone: Gone,
        continuations: list[TailedFile | None],
        held: dict[TailedFile, bool],
        suspects: set[TailedFile],
    ) -> Iterator[Chunk]:
        fol = self._followed
        for f in suspects:
            yield from self._recorded.settle(f, held.get(f, False))
        for _, old in gone:  # copies that did not hold the content after all take over from it
            yield from self._copies.release(old)
        for c in continuations:
            if c is not None:
                yield from self._guarded(c, fol.reader.drain)

    def _read_on(self, followed: list[TailedFile], postponed: set[TailedFile]) -> Iterator[Chunk]:
        """The files that may have changed, but those whose content may be held elsewhere."""
        held_back = {directory(f.path) for f in postponed}
        for f in followed:
            if f.copy_of is not None or f in postponed:
                continue
            if held_back and untouched(f) and directory(f.path) in held_back:
                continue
            yield from self._guarded(f, self._rotation.service)

    def _check_copies(self, copies: list[TailedFile]) -> Iterator[Chunk]:
        for f in copies:
            if f.copy_of is None or not self._copies.may_have_changed(f):
                continue
            # (verify=False: a copy is compared with its original there)
            yield from self._guarded(f, self._copies.check, verify=False)

    def _guarded(
        self,
        f: TailedFile,
        read: Callable[[TailedFile], Iterator[Chunk]],
        *,
        verify: bool = True,
    ) -> Iterator[Chunk]:
        """read(f) once `f` has a descriptor; an OSError is reported and leaves `f` for the
        next poll."""
        try:
            if self._followed.ready(f, verify=verify):
                yield from read(f)
        except OSError as exc:
            self._followed.error(f.path, exc)

    def _discover(self, keys: dict[Key, str]) -> Iterator[Chunk]:
        """Matched files we do not follow yet: read from 0 unless they are copies."""
        fol = self._followed
        tracked = fol.tracked
        new = keys.keys() - tracked
        if not new:
            return
        made: list[tuple[TailedFile, os.stat_result]] = []
        # Largest first, so that of a file and its copy the original is known first; when
        # descriptors run out, the rest (smaller) waits for the next poll.
        for key in sorted(new, key=lambda key: (-fol.stats[key].st_size, keys[key])):
            try:
                opened = self._open_new(keys[key])
            except TryLater:
                break
            if opened is None:
                continue
            f, st = opened
            made.append(opened)
            try:
                fol.reader.prepare(f, st.st_size)
            except OSError as exc:
                fol.error(f.path, exc)
        for f, _ in sorted(made, key=lambda item: (item[1].st_mtime_ns, item[0].path)):
            if f.copy_of is None:
                yield from self._guarded(f, fol.reader.drain)

    def _open_new(self, path: str) -> tuple[TailedFile, os.stat_result] | None:
        """A matched file followed from now on (None if it cannot be, or is followed already)."""
        fol = self._followed
        try:
            fd, st = fol.budget.open_stat(path)
        except TryLater:
            raise
        except OSError as exc:
            if path not in self._unreadable:
                self._unreadable.add(path)
                fol.event("unreadable", f"{path}: {exc.strerror or exc}")
            return None
        self._unreadable.discard(path)
        if (st.st_dev, st.st_ino) in fol.tracked:  # replaced between stat and open
            os.close(fd)
            return None
        f = TailedFile(fol.new_id(), path, st.st_dev, st.st_ino)
        fol.files.append(f)
        fol.budget.adopt(f, fd)
        fol.budget.touch(f)
        fol.tracked.add(f.key)
        fol.event("new_file", f"{path}: following from the start")
        return f, st
