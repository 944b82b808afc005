"""The files one tailer follows: opened within its budget, checked against their identity, read.

This is what the parts of a poll (``tail_rotation``, ``tail_copies``, ``tail_recorded``) share:
the followed files and their fingerprint index, what this poll listed, the rotation count,
and the events reported through on_event(kind, message), each distinct error once.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable

from exporter.ingest.tail_descriptors import DescriptorBudget, Listing, TryLater
from exporter.ingest.tail_files import (
    FINGERPRINT_BYTES,
    FingerprintIndex,
    TailedFile,
    agree_before,
    compatible,
)
from exporter.ingest.tail_read import LineReader, Reading

Key = tuple[int, int]  # (dev, ino)


class Followed:
    """The followed files of one source and the checks every part of a poll makes on them."""

    def __init__(
        self,
        source: str,
        reading: Reading,
        *,
        max_open: int,
        idle_seconds: float,
        clock: Callable[[], float],
        on_event: Callable[[str, str], None] | None,
    ) -> None:
        self.source = source
        self.csv = reading.csv
        self.files: list[TailedFile] = []
        self.index = FingerprintIndex()
        self.budget = DescriptorBudget(max_open, idle_seconds, clock, self.short)
        self.reader = LineReader(source, reading, touch=self.budget.touch, establish=self.establish)
        self.rotations = 0
        self.next_id = 1
        self.unlocated = False  # some file is recorded but not found again yet
        # What this poll found: set by the Tailer at its start, extended by the steps.
        self.matched: dict[str, Key] = {}  # path -> (dev, ino)
        self.stats: dict[Key, os.stat_result] = {}  # (dev, ino) -> stat of a matched name
        self.tracked: set[Key] = set()  # (dev, ino) of every file
        self.listings: dict[str, Listing | None] = {}  # folders searched for recorded files
        self.copy_listings: dict[str, Listing | None] = {}  # folders searched for copies
        self._on_event = on_event
        self._reported: set[tuple[str, str]] = set()

    # --- events ---------------------------------------------------------------------------
    def event(self, kind: str, message: str) -> None:
        if self._on_event is not None:
            self._on_event(kind, message)

    def error(self, path: str, exc: OSError) -> None:
        if isinstance(exc, TryLater):
            return  # looked at again next poll (out of descriptors is reported by short)
        self._once(path, f"{path}: {exc}")

    def short(self, exc: OSError) -> None:
        self._once(
            self.source,
            f"{self.source}: out of file descriptors ({exc.strerror}); trying next poll",
        )

    def _once(self, where: str, message: str) -> None:
        if (where, message) not in self._reported:
            self._reported.add((where, message))
            self.event("error", message)

    # --- the set of files -------------------------------------------------------------------
    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def forget(self, f: TailedFile) -> None:
        """No longer follow `f` (its fields stay, for its copies to take over)."""
        self.budget.close_fd(f)
        f.parked = False
        self.index.remove(f)
        if f in self.files:
            self.files.remove(f)

    # --- checks -----------------------------------------------------------------------------
    def ready(
        self, f: TailedFile, *, verify: bool = True, keep: tuple[TailedFile, ...] = ()
    ) -> bool:
        """Make sure `f` has a descriptor: a parked file is reopened by name and must still be
        the same dev+inode and, with `verify`, start with its header + fingerprint. False if
        `f` is not followed any more; TryLater (looked at again next poll) if it cannot be
        opened now or is not the file it was."""
        if f.fd is not None:
            return True
        if not f.parked:
            return False
        try:
            fd, st = self.budget.open_stat(f.path, keep)
        except OSError:
            f.stamp = None
            raise
        if (st.st_dev, st.st_ino) != f.key:
            os.close(fd)
            f.stamp = None
            raise TryLater(errno.ESTALE, "the name holds another file now", f.path)
        self.budget.adopt(f, fd)
        if verify:
            try:
                changed = self.truncated(f, st.st_size)
            except OSError:
                changed = True
            if changed:
                self.budget.park(f)
                f.stamp = None
                raise TryLater(errno.ESTALE, "changed since last read", f.path)
        return True

    def truncated(self, f: TailedFile, size: int) -> bool:
        """Size < offset, or the start no longer matches header + fingerprint (which grows)."""
        if size < f.offset:
            return True
        if self.csv and f.header is None:
            return False
        assert f.fd is not None
        header = f.header_in_file
        expect = header + f.fp
        raw = os.pread(f.fd, len(header) + FINGERPRINT_BYTES, f.data_start - len(header))
        if not raw.startswith(expect):
            return True
        if f.fp and len(f.fp) < FINGERPRINT_BYTES and len(raw) > len(expect):
            f.fp = raw[len(header) :]
            self.index.add(f)
        return False

    def establish(self, f: TailedFile, end: int) -> bool:
        """Take the fingerprint once there is a complete line or 256 data bytes; a file
        that turns out to be a copy of a followed one becomes that file's copy. TryLater
        (no fingerprint yet) if a file it may be a copy of cannot be looked at now."""
        assert f.fd is not None
        head = os.pread(f.fd, FINGERPRINT_BYTES, f.data_start)
        if not head or (len(head) < FINGERPRINT_BYTES and b"\n" not in head):
            return False
        original = None
        if f.offset == f.data_start and not f.skipping:
            original = self._original_of(f, end)
        f.fp = head
        if original is not None:
            f.copy_of = original
            f.header, f.inherited = original.header, original.inherited
            f.prev_header, f.data_start = None, original.data_start
            f.offset, f.skipping = original.data_start, False
            self.event(
                "copy",
                f"{f.path}: a copy of {original.path}; "
                "not read while the original holds this content",
            )
        self.index.add(f)
        return True

    def _original_of(self, f: TailedFile, size: int) -> TailedFile | None:
        assert f.fd is not None
        for g in self.index.candidates(f, self.files):
            if g is f or g.copy_of is not None or not g.fp or (g.fd is None and not g.parked):
                continue
            header = g.header_in_file
            start = g.data_start - len(header)
            raw = os.pread(f.fd, len(header) + len(g.fp), start)
            if not compatible(raw, header, g.fp) or not self.ready(g, keep=(f,)):
                continue
            assert g.fd is not None
            if size <= os.fstat(g.fd).st_size and agree_before(f.fd, g.fd, size):
                return g
        return None
