"""The descriptor budget of one tailer: open files within a cap, parking the idle ones.

Descriptors. Not one per followed file: at most max_open (default min(256, soft
  RLIMIT_NOFILE / 4)) per tailer. A file no longer matched keeps its descriptor until it is
  read to its end and let go (rule: rotation, in ``tail_rotation``). A matched file idle for
  idle_seconds, or the least recently active one when a descriptor is needed at the cap, is
  closed ("parked"): it keeps its identity and offset, and the stat of its name (size, mtime,
  ctime) when it was last read to its end. A matched file, open or parked, whose stat is
  unchanged is not looked at again; a copy is compared with its original again when the
  copy's stat changes. A parked file whose stat changed is reopened by name and is the same
  file only if dev+inode match; its start is compared with header + fingerprint like any
  file's (rule: truncation: a parked file deleted and its inode number reused by a new file is
  taken for truncated, and the new content is read from 0 unless it is a copy). A parked file
  the source no longer matches is looked for by dev+inode in its directory, like a recorded
  file after a restart. New files are opened largest first (copies after their originals) and
  read oldest first, as many at a time as descriptors allow; their originals are looked up in
  an index of the fingerprints by first line.
Out of descriptors. EMFILE/ENFILE (or the cap, with nothing idle to close) while listing the
  source, opening a file or looking for copies: one idle file is closed and the step tried
  once more; failing that, the step is left to a later poll (``TryLater``) and every file
  keeps its state: nothing is dropped or read twice. A poll that could not look at every file
  that may have changed handles no truncation (one of those may hold the content), nor new
  files.

Limit: a parked file is looked at only when the stat of its name changes. One appended to and
then deleted (or moved to another directory) within one poll loses those rows, as after a
restart; renamed within its directory it is found by inode. A truncation followed within the
same clock tick by writes back to the very same size leaves size and mtime unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import os
import resource
from collections.abc import Callable
from typing import TypeVar

from exporter.ingest.tail_files import TailedFile

OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})

Listing = list[tuple[str, os.stat_result]]
T = TypeVar("T")


def default_max_open() -> int:
    """Descriptors one tailer holds at most: min(256, a quarter of the soft RLIMIT_NOFILE)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 256
    return max(4, min(256, soft // 4))


class TryLater(OSError):
    """A step that cannot be taken now (no descriptor to be had, or a file changed under us):
    the files involved keep their state and are looked at again next poll."""


class DescriptorBudget:
    """Which followed files hold a descriptor, least recently active first, and every
    descriptor-taking call of the tailer made within the cap."""

    def __init__(
        self,
        max_open: int,
        idle_seconds: float,
        clock: Callable[[], float],
        on_short: Callable[[OSError], None],
    ) -> None:
        self._max_open = max_open
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._on_short = on_short  # out of descriptors: reported, and tried again next poll
        self.open: dict[TailedFile, None] = {}  # least recently active first
        self.busy: set[TailedFile] = set()  # needed open by the step in progress: not closed

    # --- opening within the cap -------------------------------------------------------------
    def open_stat(self, path: str, keep: tuple[TailedFile, ...] = ()) -> tuple[int, os.stat_result]:
        """os.open within the cap and the fstat of what it opened. Out of descriptors, one
        idle file is closed and the open tried once more, then TryLater; if the fstat fails
        the descriptor is closed again (the caller owns none)."""
        self.reserve(keep)
        fd = self._retry(lambda: os.open(path, OPEN_FLAGS), keep, reserve=False)
        try:
            return fd, os.fstat(fd)
        except OSError:
            os.close(fd)
            raise

    def spare_descriptor(self) -> bool:
        """Whether a descriptor is free (after closing an idle file if need be)."""
        try:
            self._retry(lambda: os.close(os.open(os.devnull, OPEN_FLAGS)))
        except TryLater:
            return False
        except OSError:
            return True
        return True

    def listdir(self, folder: str) -> tuple[list[str] | None, bool]:
        """The names in `folder` and whether that is all of them ([], False if it cannot be
        read, as glob.glob has it); None if no descriptor is to be had even after closing an
        idle file."""
        try:
            return self._retry(lambda: os.listdir(folder or os.curdir)), True
        except TryLater:
            return None, False
        except (FileNotFoundError, NotADirectoryError):
            return [], True
        except OSError:
            return [], False

    def listing(self, folder: str, cache: dict[str, Listing | None]) -> Listing | None:
        """The regular files of `folder` with their stat, once per poll and cache; None if
        no descriptor is to be had."""
        if folder in cache:
            return cache[folder]

        def scan() -> Listing:
            entries = []
            with os.scandir(folder) as it:
                for entry in it:
                    with contextlib.suppress(OSError):
                        if entry.is_file():
                            entries.append((entry.path, entry.stat()))
            return entries

        try:
            entries = self._retry(scan)
        except TryLater:
            return None
        except OSError:
            entries = []
        cache[folder] = entries
        return entries

    def _retry(
        self, step: Callable[[], T], keep: tuple[TailedFile, ...] = (), *, reserve: bool = True
    ) -> T:
        """`step` (which takes a descriptor); out of descriptors, one idle file is closed and
        it is tried once more, then TryLater. Other errors are raised as they are."""
        for attempt in range(2):
            if reserve:
                with contextlib.suppress(TryLater):
                    self.reserve()
            try:
                return step()
            except OSError as exc:
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    raise
                if attempt or not self.evict(1, keep):
                    self._on_short(exc)
                    raise TryLater(exc.errno, exc.strerror, exc.filename) from exc
        raise AssertionError("unreachable")

    def reserve(self, keep: tuple[TailedFile, ...] = ()) -> None:
        """Room for one more descriptor under the cap: the least recently active idle files
        are closed, an eighth of the cap at a time. TryLater if none can be closed."""
        if len(self.open) < self._max_open:
            return
        self.evict(len(self.open) - self._max_open + max(1, self._max_open // 8), keep)
        if len(self.open) >= self._max_open:
            raise TryLater(errno.EMFILE, f"all {self._max_open} descriptors are in use")

    # --- parking --------------------------------------------------------------------------
    def evict(
        self, count: int, keep: tuple[TailedFile, ...] = (), idle_before: float | None = None
    ) -> int:
        """Park up to `count` files, least recently active first (with idle_before, only files
        inactive since then): matched files, the others are read to their end through their
        descriptor. Returns how many."""
        victims = []
        for f in self.open:
            if len(victims) >= count:
                break
            if (
                f.current
                and f not in self.busy
                and f not in keep
                and (idle_before is None or f.active <= idle_before)
            ):
                victims.append(f)
        for f in victims:
            self.park(f)
        return len(victims)

    def park_idle(self) -> None:
        """Park every file idle for idle_seconds."""
        self.evict(len(self.open), idle_before=self._clock() - self._idle_seconds)

    def adopt(self, f: TailedFile, fd: int) -> None:
        f.fd, f.parked = fd, False
        self.open[f] = None

    def park(self, f: TailedFile) -> None:
        self.close_fd(f)
        f.parked = True

    def touch(self, f: TailedFile) -> None:
        f.active = self._clock()
        if f in self.open:  # most recently active last
            del self.open[f]
            self.open[f] = None

    def close_fd(self, f: TailedFile) -> None:
        if f.fd is not None:
            with contextlib.suppress(OSError):
                os.close(f.fd)
            f.fd = None
            self.open.pop(f, None)

    def close_all(self) -> None:
        for f in list(self.open):
            self.close_fd(f)
