"""Follow one configured source (a path or a glob) of prediction-log lines.

A polling file follower without threads: the ingest loop calls ``Tailer.poll()`` every
~0.25 s and applies each yielded ``Chunk`` of complete lines before asking for the next.
``Tailer.state()`` between chunks is a JSON-serialisable snapshot to resume from exactly.
"""

# The rules, after google/mtail's filestream.go. tests/test_tailer.py names its tests after
# them. "Consumed" means: yielded in a chunk (the caller applies a chunk fully before it asks
# for the next one, so state() between chunks describes exactly what has been applied).
#
# Identity. A file is device + inode + fingerprint. The fingerprint is the first up to 256
#   data bytes: after the header line for CSV (the files of one source share their header, so
#   the header alone identifies nothing), from byte 0 for JSONL. It is taken once the file
#   holds a complete data line or 256 data bytes. While the file is shorter than 256 data bytes
#   the fingerprint is a prefix that grows; comparisons use the stored prefix.
# Offsets. A file's offset points just after the last complete line consumed. A partial last
#   line (no b"\n" yet) is not consumed: it is read again once its newline arrives. Nothing is
#   buffered across polls, so the checkpointed offset alone is enough to resume.
# CSV header. The first line of each file; never emitted as data, passed with every chunk of
#   that file. A file whose header line is not complete yet is waited for.
# Rotation by rename + create. The name now points to another inode (or to nothing). The old
#   descriptor stays open and is read to its end, including lines a slow writer completes
#   later, until a poll finds it unchanged and it is still not matched; then it is closed.
#   The new file is followed from offset 0. One rotation is counted when a name we followed
#   now holds a file we did not know.
# Restart from state. A recorded file is looked up by dev+inode: under its recorded name, else
#   among the files of the same directory (logrotate names: name.1, name-20240601, ...); if the
#   device number changed (remount) by inode alone. If its start still matches the fingerprint
#   it is read from the recorded offset (and, if the source no longer matches it, to its end,
#   then let go). If it does not: matched by the source, it was truncated (rule below);
#   elsewhere, the inode number was reused by another file, and ours is gone. A recorded file
#   that is gone is reported as lost; its content is looked for like a truncated file's.
# Truncation. Size < offset, or the bytes at the start no longer match the stored header +
#   fingerprint (the writer may have appended past the old offset before we looked). Count one
#   rotation, restart the file at 0 (after its header for CSV), and look in the same directory
#   for the copy (copytruncate): files starting with the stored header + fingerprint, with a
#   line end where we stopped. The largest continues from our offset to its end, so the rows
#   written between our last read and the copy are not lost; any other is consumed. All
#   truncations of a poll are handled before any copy is looked for, and copies before any
#   file is read. A CSV file truncated in place whose first new line is not its old header
#   keeps the old header: after copytruncate a writer usually just goes on appending rows.
# Copies. A new file whose start matches a followed file's fingerprint (another inode), that is
#   not larger, and whose last 256 bytes equal the original's bytes at the same offsets, is a
#   copy: it is never read on its own while the original holds that content. When the original
#   is truncated the copy continues it (rule above); when the original goes away the copy takes
#   over at the original's offset; when the copy grows larger than the original it takes over
#   at the original's offset and the original becomes the copy; when its start stops matching
#   it is a file of its own, read from 0.
# Deleted and recreated. While we hold a file open its inode cannot be reused, so a recreated
#   file is a new inode: the old one is read to its end, the new one from 0. Across a restart,
#   or while a file is parked (rule: descriptors), the inode number may be reused (ext4 does):
#   the fingerprint does not match, restart at 0.
# Glob. Matched files are read in a stable order, older first: files no longer matched, then by
#   mtime, then by name. On a fresh start (no state) every matched file is read from 0 (history
#   counts: windows are event-time). Files that appear later are read from 0. A file that
#   leaves the glob is read to its end through its open descriptor (a parked one once found
#   again), then dropped.
# Descriptors. Not one per followed file: at most max_open (default min(256, soft
#   RLIMIT_NOFILE / 4)) per tailer. A file no longer matched keeps its descriptor until it is
#   read to its end and let go (rule: rotation). A matched file idle for idle_seconds, or the
#   least recently active one when a descriptor is needed at the cap, is closed ("parked"): it
#   keeps its identity and offset, and the stat of its name (size, mtime, ctime) when it was
#   last read to its end. A matched file, open or parked, whose stat is unchanged is not looked
#   at again; a copy is compared with its original again when the copy's stat changes. A
#   parked file whose stat changed is reopened by name and is the same file only if dev+inode
#   match; its start is compared with header + fingerprint like any file's (rule: truncation:
#   a parked file deleted and its inode number reused by a new file is taken for truncated, and
#   the new content is read from 0 unless it is a copy). A parked file the source no longer
#   matches is looked for by dev+inode in its directory, like a recorded file after a restart.
#   New files are opened largest first (copies after their originals) and read oldest first,
#   as many at a time as descriptors allow; their originals are looked up in an index of the
#   fingerprints by first line.
# Out of descriptors. EMFILE/ENFILE (or the cap, with nothing idle to close) while listing the
#   source, opening a file or looking for copies: one idle file is closed and the step tried
#   once more; failing that, the step is left to a later poll and every file keeps its state:
#   nothing is dropped or read twice. A poll that could not look at every file that may have
#   changed handles no truncation (one of those may hold the content), nor new files.
# Too long lines. A line longer than max_line_bytes (not counting its b"\n") is never buffered
#   whole: it is skipped up to and including its newline and counted in Chunk.too_long when
#   that newline is consumed, even polls later (the "skipping" flag is part of the state). An
#   over-long first line of a CSV file is counted so, and the next line is the header.
# Errors. A missing or unreadable source makes stats().up False; no OSError escapes poll(); it
#   recovers when the file appears. Events are reported through on_event(kind, message).
# Hot path. os.pread on descriptors in blocks of up to chunk_bytes, line ends found with
#   bytes.rfind (one search per max_line_bytes, not per line); no Python object per line.
#
# Limits (what no tailer can know; the randomized test keeps clear of them):
# - A path source sees only the file under its name: a file created and rotated away between
#   two polls is never read. After a restart the same holds for every file the restored state
#   does not know: one read only after the last checkpoint and rotated away (renamed twice, or
#   copytruncated) while the exporter was down. So checkpoint soon after consuming. A glob
#   covering the rotated names (preds.csv*) sees such files.
# - A file holding no complete data line when last looked at has no fingerprint. If it is
#   filled, copied and truncated before the next look (with the header written again, or
#   JSONL), the truncation goes unnoticed and the rows in the copy are not read.
# - A copy is known by content: a new file that is byte for byte a prefix of a followed file
#   is taken for its copy. A CSV file that lost its header before we ever saw it (fresh start
#   on a file truncated by copytruncate) has its first row taken for the header.
# - A parked file is looked at only when the stat of its name changes. One appended to and
#   then deleted (or moved to another directory) within one poll loses those rows, as after a
#   restart; renamed within its directory it is found by inode. A truncation followed within
#   the same clock tick by writes back to the very same size leaves size and mtime unchanged.
# - A glob with magic in a directory part, or "**", is listed by glob.glob, which hides listing
#   errors. It is called only when a descriptor is free, and files already followed are found
#   under their names whatever it returns; a followed file renamed just as another thread took
#   the last descriptor could still be taken for rotated away, and read again.

from __future__ import annotations

import contextlib
import errno
import fnmatch
import glob
import os
import re
import resource
import stat
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FINGERPRINT_BYTES = 256
STATE_VERSION = 1

_GLOB_MAGIC = re.compile(r"[*?[]")
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_SKIP_BLOCK = 1 << 16
_OUT_OF_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})


def default_max_open() -> int:
    """Descriptors one tailer holds at most: min(256, a quarter of the soft RLIMIT_NOFILE)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 256
    return max(4, min(256, soft // 4))


class _TryLater(OSError):
    """A step that cannot be taken now (no descriptor to be had, or a file changed under us):
    the files involved keep their state and are looked at again next poll."""


@dataclass(frozen=True)
class Chunk:
    source: str  # the configured source string (path or glob), used as a metric label
    path: str  # the file the bytes came from (its current or last known name)
    header: bytes | None  # CSV: that file's header line without line ending; None for jsonl
    data: bytes  # zero or more complete lines, each ending in b"\n"; never the CSV header
    too_long: int  # lines skipped in this step for exceeding max_line_bytes (not in data)
    end_offset: int  # byte offset in that file just after `data`


@dataclass
class SourceStats:
    up: bool  # at least one matched file exists and is readable (for a path: that file)
    lag_bytes: int  # bytes written but not yet read, summed over followed files
    rotations: int  # rotations and truncations seen (monotonic; restored from state)


@dataclass(eq=False, slots=True)
class _File:
    """One followed file (or a copy of one, see ``copy_of``)."""

    rid: int
    path: str
    dev: int
    ino: int
    fd: int | None = None  # None: parked, or recorded in a state and not found again yet
    fp: bytes = b""  # fingerprint: the first up to FINGERPRINT_BYTES data bytes
    header: bytes | None = None  # CSV header line as in the file, line ending included
    inherited: bool = False  # header kept across a truncation: it is not in the file
    prev_header: bytes | None = None  # header before a truncation, until the next line is seen
    data_start: int = 0  # offset of the first data byte (after the header line)
    offset: int = 0  # just after the last complete line consumed
    skipping: bool = False  # inside a line longer than max_line_bytes
    current: bool = True  # matched by the source under its name
    copy_of: _File | None = None  # a copy of that file: not read while it holds the content
    seen_size: int = -1  # size at the previous poll (to let a rotated file go)
    parked: bool = False  # closed while idle: identity known, reopened by name when it changes
    stamp: tuple[int, int, int] | None = None  # (size, mtime, ctime) when last read to its end
    active: float = 0.0  # when it last changed or gave lines (the least recent is closed first)
    ikey: tuple[Any, ...] | None = None  # its place in the fingerprint index
    key: tuple[int, int] = (0, 0)  # (dev, ino), set from them

    def __post_init__(self) -> None:
        self.key = (self.dev, self.ino)

    @property
    def header_in_file(self) -> bytes:
        """The header bytes that precede ``data_start`` in this file (b"" for JSONL)."""
        if self.header is None or self.inherited:
            return b""
        return self.header


class Tailer:
    """Follow one source of log lines; see the rules at the top of this module."""

    def __init__(
        self,
        source: str,
        *,
        fmt: str,
        base_dir: Path,
        max_line_bytes: int = 1 << 20,
        chunk_bytes: int = 8 << 20,
        state: dict | None = None,
        on_event: Callable[[str, str], None] | None = None,
        max_open: int | None = None,
        idle_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        exclude_dir: Path | None = None,
    ) -> None:
        # the exporter's own state_dir: a glob reaching it through a symlinked folder (which
        # the config check cannot see) must not read the checkpoint as a log
        self._exclude_dir = exclude_dir
        if fmt not in ("csv", "jsonl"):
            raise ValueError(f"fmt must be 'csv' or 'jsonl', not {fmt!r}")
        if max_line_bytes < 1 or chunk_bytes < 1:
            raise ValueError("max_line_bytes and chunk_bytes must be positive")
        if max_open is not None and max_open < 4:
            # A copy is compared with its original while files rotated away are still held.
            raise ValueError("max_open must be at least 4")
        self.source = source
        pattern = Path(source)
        if not pattern.is_absolute():
            pattern = Path(base_dir) / pattern
        self._pattern = str(pattern)
        self._is_glob = bool(_GLOB_MAGIC.search(source))
        self._csv = fmt == "csv"
        self._max_line = max_line_bytes
        self._chunk_bytes = chunk_bytes
        self._on_event = on_event
        self._max_open = default_max_open() if max_open is None else max_open
        self._idle_seconds = idle_seconds
        self._clock = clock
        self._files: list[_File] = []
        self._open: dict[_File, None] = {}  # holding a descriptor, least recently active first
        self._busy: set[_File] = set()  # needed open by the step in progress: not closed
        self._rotations = 0
        self._next_id = 1
        self._up = False
        self._closed = False
        self._matched: dict[str, tuple[int, int]] = {}  # path -> (dev, ino), last poll
        self._stats: dict[tuple[int, int], os.stat_result] = {}  # (dev, ino) -> stat, last poll
        self._tracked: set[tuple[int, int]] = set()  # (dev, ino) of every file, this poll
        self._unlocated = False  # some file is recorded but not found again yet
        self._listings: dict[str, list[tuple[str, os.stat_result]] | None] = {}  # this poll
        self._copy_listings: dict[str, list[tuple[str, os.stat_result]] | None] = {}
        # Fingerprint index: (group, _fp_key(fp)) -> files, group = (header start, header).
        self._index: dict[tuple[Any, ...], dict[_File, None]] = {}
        self._groups: dict[tuple[int, bytes], int] = {}  # group -> files indexed in it
        self._unreadable: set[str] = set()
        self._reported: set[tuple[str, str]] = set()
        if state is not None:
            self._load_state(state)

    # --- public ---------------------------------------------------------------------
    def poll(self) -> Iterator[Chunk]:
        """Yield everything available now, in chunks of complete lines."""
        if self._closed:
            return
        self._listings, self._copy_listings = {}, {}
        keys = self._match()
        if keys is None:  # the source could not be listed for want of descriptors
            return
        lost, suspects, unsure = self._attach_recorded(keys)
        changed, copies = self._update_names(keys)
        followed = self._oldest_first(changed)
        # Every file whose content is gone (truncated, or lost while we were down) is known
        # before any copy is looked for, and copies are looked for before anything is read:
        # a file holding another one's content must never be read on its own.
        gone = [(f, f) for f in lost]
        for f in followed:
            try:
                if not self._ready(f, verify=False):
                    continue
                assert f.fd is not None
                if f.current:
                    self._touch(f)
                size = os.fstat(f.fd).st_size
                if self._truncated(f, size):
                    gone.append((f, self._restart_at_zero(f, size, quiet=f in suspects)))
            except _TryLater:
                unsure = True
            except OSError as exc:
                self._error(f.path, exc)
        continuations = []
        held: dict[_File, bool] = {}
        postponed: set[_File] = set()
        if unsure and gone:
            # A file that may have changed could not be looked at (a parked one whose inode
            # number went to a copy, say): no truncation is handled before all of them are.
            postponed = {g for g, _ in gone}
            self._postpone(gone, suspects)
            gone = []
        for n, (f, old) in enumerate(gone):  # nothing is yielded before every copy is taken over
            try:
                continuation, held[f] = self._take_over_from_copies(old)
            except _TryLater:
                # Not every copy could be looked at: this file and the ones after it are taken
                # as not seen yet, and nothing that may hold their content is read before the
                # next poll (the other files are, so that rotated ones are let go).
                postponed = {g for g, _ in gone[n:]}
                self._postpone(gone[n:], suspects)
                gone = gone[:n]
                break
            except OSError as exc:
                self._error(old.path, exc)
                continue
            continuations.append(continuation)
        for f in suspects:
            yield from self._settle_suspect(f, held.get(f, False))
        for _, old in gone:  # copies that did not hold the content after all take over from it
            yield from self._release_copies(old)
        for c in continuations:
            if c is None:
                continue
            try:
                if self._ready(c):
                    yield from self._drain(c)
            except OSError as exc:
                self._error(c.path, exc)
        held_back = {_directory(f.path) for f in postponed}
        for f in followed:
            if f.copy_of is not None or f in postponed:
                continue
            if held_back and self._untouched(f) and _directory(f.path) in held_back:
                continue
            try:
                if self._ready(f):
                    yield from self._service(f)
            except OSError as exc:
                self._error(f.path, exc)
        if postponed:  # copies are checked and new files looked at next poll
            return
        for f in copies:
            if f.copy_of is None or not self._copy_may_have_changed(f):
                continue
            try:
                if self._ready(f, verify=False):  # (a copy is compared there)
                    yield from self._check_copy(f)
            except OSError as exc:
                self._error(f.path, exc)
        yield from self._discover(keys)
        self._up = any((f.fd is not None or f.parked) and f.key in keys for f in self._files)
        self._evict(len(self._open), idle_before=self._clock() - self._idle_seconds)

    def state(self) -> dict:
        """Everything needed to resume exactly after the chunks yielded so far."""
        return {
            "version": STATE_VERSION,
            "rotations": self._rotations,
            "files": [
                {
                    "id": f.rid,
                    "path": f.path,
                    "dev": f.dev,
                    "ino": f.ino,
                    "fingerprint": f.fp.hex(),
                    "offset": f.offset,
                    "data_start": f.data_start,
                    "header": None if f.header is None else f.header.hex(),
                    "inherited": f.inherited,
                    "prev_header": None if f.prev_header is None else f.prev_header.hex(),
                    "skipping": f.skipping,
                    "current": f.current,
                    "copy_of": None if f.copy_of is None else f.copy_of.rid,
                }
                for f in self._files
            ],
        }

    def stats(self) -> SourceStats:
        lag = 0
        for f in self._files:
            if f.copy_of is not None:
                continue
            if f.fd is not None:
                try:
                    size = os.fstat(f.fd).st_size
                except OSError:
                    continue
            elif f.parked and f.key in self._stats:
                size = self._stats[f.key].st_size  # as of the last poll
            else:
                continue
            # A file now shorter than our offset was truncated: all of it is unread.
            lag += size - f.offset if size >= f.offset else size
        return SourceStats(up=self._up, lag_bytes=lag, rotations=self._rotations)

    def close(self) -> None:
        self._closed = True
        for f in list(self._open):
            self._close_fd(f)

    # --- one poll, step by step -----------------------------------------------------------
    def _match(self) -> dict[tuple[int, int], str] | None:
        """The regular files the source matches now: (dev, inode) -> path (of hard links, the
        least name). None when the source could not be listed for want of a descriptor."""
        names, complete = self._list_source()
        if names is None:
            return None
        if not complete:  # a followed file still under its name is matched all the same
            names = {
                *names,
                *(f.path for f in self._files if f.current and (f.fd is not None or f.parked)),
            }
        keys: dict[tuple[int, int], str] = {}  # of hard links, the first name
        matched: dict[str, tuple[int, int]] = {}
        stats: dict[tuple[int, int], os.stat_result] = {}
        excluded = self._excluded_folder()
        folders: dict[str, tuple[int, int] | None] = {}
        for name in names:
            if excluded is not None:
                folder = os.path.dirname(name)
                if folder not in folders:
                    folders[folder] = _identity(folder)
                if folders[folder] == excluded:
                    continue
            try:
                st = os.stat(name)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if name < keys.setdefault(key, name):
                    keys[key] = name
                matched[name] = key
                stats[key] = st
        self._matched, self._stats = matched, stats
        return keys

    def _excluded_folder(self) -> tuple[int, int] | None:
        return None if self._exclude_dir is None else _identity(str(self._exclude_dir))

    def _list_source(self) -> tuple[Collection[str] | None, bool]:
        """The names the source matches (what glob.glob returns), and whether the listing is
        known to be complete; None if no descriptor is to be had to list it."""
        if not self._is_glob:
            return [self._pattern], True
        directory, pattern = os.path.split(self._pattern)
        if _GLOB_MAGIC.search(directory) or pattern == "**":
            if not self._spare_descriptor():
                return None, False
            return glob.glob(self._pattern, recursive=True), False  # it hides errors
        names, complete = self._listdir(directory)
        if names is None:
            return None, False
        # As glob.glob: fnmatch, and a wildcard does not match a leading dot.
        hidden = "" if pattern.startswith(".") else r"(?!\.)"
        match = re.compile(hidden + fnmatch.translate(pattern)).match
        prefix = os.path.join(directory, "")
        return [prefix + name for name in filter(match, names)], complete

    def _spare_descriptor(self) -> bool:
        """Whether a descriptor is free (after closing an idle file if need be)."""
        for attempt in range(2):
            with contextlib.suppress(_TryLater):
                self._reserve()
            try:
                os.close(os.open(os.devnull, _OPEN_FLAGS))
                return True
            except OSError as exc:
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    return True
                if attempt or not self._evict(1):
                    self._short(exc)
                    return False
        return False

    def _listdir(self, directory: str) -> tuple[list[str] | None, bool]:
        """The names in `directory` and whether that is all of them ([], False if it cannot be
        read, as glob.glob has it); None if no descriptor is to be had even after closing an
        idle file."""
        for attempt in range(2):
            with contextlib.suppress(_TryLater):
                self._reserve()
            try:
                return os.listdir(directory or os.curdir), True
            except (FileNotFoundError, NotADirectoryError):
                return [], True
            except OSError as exc:
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    return [], False
                if attempt or not self._evict(1):
                    self._short(exc)
                    return None, False
        return None, False

    def _listing(
        self, directory: str, cache: dict[str, list[tuple[str, os.stat_result]] | None]
    ) -> list[tuple[str, os.stat_result]] | None:
        """The regular files of `directory` with their stat, once per poll and cache; None if
        no descriptor is to be had."""
        if directory in cache:
            return cache[directory]
        entries: list[tuple[str, os.stat_result]] | None = []
        for attempt in range(2):
            with contextlib.suppress(_TryLater):
                self._reserve()
            try:
                with os.scandir(directory) as it:
                    for entry in it:
                        with contextlib.suppress(OSError):
                            if entry.is_file():
                                entries.append((entry.path, entry.stat()))
                break
            except OSError as exc:
                entries = []
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    break
                if attempt or not self._evict(1):
                    self._short(exc)
                    entries = None
                    break
        if entries is not None:
            cache[directory] = entries
        return entries

    def _attach_recorded(
        self, keys: dict[tuple[int, int], str]
    ) -> tuple[list[_File], set[_File], bool]:
        """Find the files recorded in a restored state again (rule: restart from state), and
        the parked files the source no longer matches (rule: descriptors).
        Returns the ones that are gone (closed, for their content to be looked for), the
        suspects: found outside the source with other content, so either truncated and then
        renamed, or their inode number was reused by another file (see _settle_suspect), and
        whether some could not be looked for now (out of descriptors)."""
        lost: list[_File] = []
        suspects: set[_File] = set()
        unsure = False
        self._tracked = {f.key for f in self._files}
        if not self._unlocated and not self._tracked.difference(keys):
            return lost, suspects, unsure  # every file is under a matched name: nothing to do
        self._unlocated = False
        for f in [f for f in self._files if f.fd is None and (not f.parked or f.key not in keys)]:
            if not f.parked and f.copy_of is None and f.key in keys:
                f.parked, f.stamp = True, None  # under a matched name: compared when opened
                continue
            if f.parked and f.copy_of is not None:  # a copy that went away: nothing to read
                self._forget(f)
                continue
            try:
                found = self._locate(f)
            except OSError as exc:
                self._error(f.path, exc)
                continue
            if found is None:
                lost.append(f)
                continue
            if found == "retry":
                unsure = self._unlocated = True
                continue
            path, fd, st = found
            recorded, was_current = f.path, f.current
            self._adopt(f, fd)
            f.dev, f.ino, f.path = st.st_dev, st.st_ino, path
            f.key = (f.dev, f.ino)
            f.current = f.key in keys
            if f.copy_of is None and not f.current and self._truncated(f, st.st_size):
                suspects.add(f)  # (in the source, other content is plainly a truncation)
            if f.copy_of is None and was_current and not f.current:
                self._note_replaced(recorded)
        for f in lost:
            parked = f.parked
            self._forget(f)  # its inode may be another file now: that one is free
            if f.copy_of is not None:
                continue
            if not parked:
                self._event("lost", f"{f.path}: the recorded file is gone, with its unread rows")
                continue
            if f.current:  # as if we had held it: gone from under its name
                self._note_replaced(f.path)
                f.current = False
            self._event("closed", f"{f.path}: deleted while idle; it was read to {f.offset}")
        self._tracked = {f.key for f in self._files}
        return lost, suspects, unsure

    def _settle_suspect(self, f: _File, held: bool) -> Iterator[Chunk]:
        """A recorded file found outside the source with other content. If a copy held its
        old content, it was truncated in place (copytruncate) and renamed since: its new rows
        are read from 0. If not, its inode number belongs to another file now, which is not
        ours to read, unless it just turned out to be some file's copy."""
        if held:
            self._rotations += 1
            self._event("truncation", f"{f.path}: truncated and renamed; reading it from 0")
        elif f.copy_of is None and f.offset == f.data_start == 0 and f.fp == b"":
            self._event("lost", f"{f.path}: the recorded file is gone, with its unread rows")
            yield from self._drop(f)

    def _locate(self, f: _File) -> tuple[str, int, os.stat_result] | str | None:
        """Where the recorded file is now: (path, fd, fstat), "retry" or None (gone)."""
        match = None
        try:
            st = os.stat(f.path)
            if (st.st_dev, st.st_ino) == f.key:
                match = f.path
        except OSError:
            pass
        if match is None:
            entries = self._listing(os.path.dirname(f.path) or ".", self._listings)
            if entries is None:
                return "retry"
            match = next((p for p, st in entries if (st.st_dev, st.st_ino) == f.key), None)
            if match is None and entries and entries[0][1].st_dev != f.dev:
                # The device was renumbered (remount, reboot): the inode alone, verified below.
                match = next((p for p, st in entries if st.st_ino == f.ino), None)
        if match is None:
            return None
        try:
            fd = self._open_path(match)
        except _TryLater:
            return "retry"
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._error(match, exc)
            return "retry"
        st = os.fstat(fd)
        if st.st_ino != f.ino or (st.st_dev != f.dev and self._truncated_fd(f, fd, st)):
            os.close(fd)
            return None
        return match, fd, st

    def _truncated_fd(self, f: _File, fd: int, st: os.stat_result) -> bool:
        saved = f.fd
        f.fd = fd
        try:
            return self._truncated(f, st.st_size)
        finally:
            f.fd = saved

    def _update_names(self, keys: dict[tuple[int, int], str]) -> tuple[list[_File], list[_File]]:
        """Follow renames; notice files that left the source (rule: rotation). In the same
        pass over the files: returns those that may have changed (see _may_have_changed), and
        the copies."""
        changed: list[_File] = []
        copies: list[_File] = []
        stats = self._stats
        for f in list(self._files):
            if f.fd is None and not f.parked:
                continue
            path = keys.get(f.key)
            if path is not None:
                f.path, f.current = path, True
            elif f.current and not f.parked:  # (parked: not found again yet)
                f.current, f.seen_size = False, -1  # let go only after a poll that finds nothing
                if f.copy_of is not None:  # a copy that went away: nothing to read from it
                    self._forget(f)
                    continue
                self._note_replaced(f.path)
            if f.copy_of is not None:
                copies.append(f)
                continue
            # _may_have_changed(f), written out: this runs for every file in every poll.
            stamp, st = f.stamp, stats.get(f.key)
            if st is None:
                if f.fd is not None:
                    changed.append(f)
            elif (
                stamp is None
                or not f.current
                or stamp[0] != st.st_size
                or stamp[1] != st.st_mtime_ns
                or stamp[2] != st.st_ctime_ns
            ):
                changed.append(f)
        return changed, copies

    def _note_replaced(self, name: str) -> None:
        tracked = {g.key for g in self._files if g.fd is not None or g.parked}
        now = self._matched.get(name)
        if now is not None and now not in tracked:
            self._rotations += 1
            self._event(
                "rotation", f"{name}: replaced by a new file; reading the old one to its end"
            )
        else:
            self._event("rotation", f"{name}: no longer matched; reading it to its end")

    def _may_have_changed(self, f: _File) -> bool:
        """Open or parked, and not known to be read to the end it has now: the stat of its
        name differs from the one it had when it was last read to its end."""
        st = self._stats.get(f.key)
        if f.fd is None and (not f.parked or st is None):
            return False
        stamp = f.stamp
        return (
            stamp is None
            or st is None
            or not f.current
            or stamp[0] != st.st_size
            or stamp[1] != st.st_mtime_ns
            or stamp[2] != st.st_ctime_ns
        )

    def _copy_may_have_changed(self, c: _File) -> bool:
        """A copy is compared with its original again when it changed (its original changing
        cannot end the copy: appended to, it still holds the copy; truncated, the truncation
        rule hands the copy over), or when either is not under a matched name."""
        if c.fd is None and not c.parked:
            return False
        original = c.copy_of
        return (
            self._may_have_changed(c)
            or original is None
            or not original.current
            or (original.fd is None and not original.parked)
        )

    @staticmethod
    def _untouched(g: _File) -> bool:
        """Nothing consumed from it yet: it may turn out to hold a truncated file's content."""
        return g.copy_of is None and g.offset == g.data_start and not g.skipping

    def _service(self, f: _File) -> Iterator[Chunk]:
        assert f.fd is not None
        size = os.fstat(f.fd).st_size
        idle = not f.current and size == f.seen_size
        f.seen_size = size
        yield from self._drain(f)
        if idle:
            self._event("closed", f"{f.path}: rotated away and read to its end")
            yield from self._drop(f)

    def _truncated(self, f: _File, size: int) -> bool:
        """Size < offset, or the start no longer matches header + fingerprint (which grows)."""
        if size < f.offset:
            return True
        if self._csv and f.header is None:
            return False
        assert f.fd is not None
        header = f.header_in_file
        expect = header + f.fp
        raw = os.pread(f.fd, len(header) + FINGERPRINT_BYTES, f.data_start - len(header))
        if not raw.startswith(expect):
            return True
        if f.fp and len(f.fp) < FINGERPRINT_BYTES and len(raw) > len(expect):
            f.fp = raw[len(header) :]
            self._reindex(f)
        return False

    def _restart_at_zero(self, f: _File, size: int, *, quiet: bool = False) -> _File:
        """Truncation: `f` starts again at 0. Returns what it was, for its copies."""
        if not quiet:
            self._rotations += 1
            self._event(
                "truncation",
                f"{f.path}: truncated or rewritten (size {size}, offset {f.offset}); "
                "restarting at 0",
            )
        old = _File(
            f.rid,
            f.path,
            f.dev,
            f.ino,
            None,
            f.fp,
            f.header,
            f.inherited,
            f.prev_header,
            f.data_start,
            f.offset,
            f.skipping,
            f.current,
        )
        for g in self._files:
            if g.copy_of is f:
                g.copy_of = old
        previous = f.header if f.header is not None else f.prev_header
        f.header, f.inherited, f.prev_header = None, False, previous if self._csv else None
        f.data_start = f.offset = 0
        f.fp, f.skipping, f.seen_size, f.stamp = b"", False, -1, None
        self._reindex(f)
        return old

    def _postpone(self, pending: list[tuple[_File, _File]], suspects: set[_File]) -> None:
        """Undo what this poll did to files whose copies could not all be looked at: the next
        poll finds them truncated (or lost, or suspect) again."""
        for f, old in pending:
            if f is old:  # lost: looked for again
                self._files.append(f)
                self._reindex(f)
                self._unlocated = True
                continue
            for name in ("fp", "header", "inherited", "prev_header", "data_start", "offset"):
                setattr(f, name, getattr(old, name))
            f.skipping, f.seen_size, f.stamp = old.skipping, -1, None
            self._reindex(f)
            for g in self._files:
                if g.copy_of is old:
                    g.copy_of = f
            if f in suspects:
                suspects.discard(f)
                self._close_fd(f)  # found and judged again
                self._unlocated = True
            else:
                self._rotations -= 1

    def _take_over_from_copies(self, f: _File) -> tuple[_File | None, bool]:
        """Files holding f's content take over from f: the largest continues at f's offset
        (if it reaches it), the others are consumed, so that none is read on its own.
        Returns the one to read on and whether there were any."""
        if f.copy_of is not None or not f.fp:
            return None, False
        try:
            copies = self._copies_holding(f)
            continuation = copies[0][1] if copies and copies[0][0] >= f.offset else None
            for _, c in copies:
                self._promote(c, f, keep_offset=c is continuation)
        finally:
            self._busy.clear()
        if continuation is not None:
            self._event(
                "copy", f"{continuation.path}: a copy of {f.path}; reading it from {f.offset}"
            )
        return continuation, bool(copies)

    def _copies_holding(self, f: _File) -> list[tuple[int, _File]]:
        """Files of f's directory that hold f's content (what copytruncate leaves), largest
        first: f's copies, files nothing was consumed from yet, and files we do not follow
        (those are followed from now on if the source matches them). _TryLater if one of
        them cannot be looked at now."""
        header = f.header_in_file
        start = f.data_start - len(header)
        want = len(header) + FINGERPRINT_BYTES
        directory = _directory(f.path)
        found: list[tuple[int, _File]] = []
        for g in self._files:
            if g is f or (g.fd is None and not g.parked):
                continue
            untouched = self._untouched(g) and _directory(g.path) == directory
            if (g.copy_of is f or untouched) and self._ready(g, verify=False):
                assert g.fd is not None
                self._busy.add(g)
                size = os.fstat(g.fd).st_size
                raw = os.pread(g.fd, want, start)
                if _compatible(raw, header, f.fp) and self._line_ends_at(g.fd, size, f):
                    found.append((size, g))
        tracked = {g.key for g in self._files if g is not f}
        entries = self._listing(directory, self._copy_listings)
        if entries is None:
            raise _TryLater(errno.EMFILE, "no descriptor to list", directory)
        for path, listed in entries:
            if listed.st_size <= len(header) or (listed.st_dev, listed.st_ino) in tracked:
                continue
            try:
                fd = self._open_path(path)
            except _TryLater:
                raise
            except OSError:
                continue
            try:
                st = os.fstat(fd)
                holds = _compatible(os.pread(fd, want, start), header, f.fp)
                holds = holds and self._line_ends_at(fd, st.st_size, f)
            except OSError:
                holds = False
            if not holds or (st.st_dev, st.st_ino) in tracked:
                os.close(fd)
                continue
            g = _File(self._new_id(), path, st.st_dev, st.st_ino)
            g.current = path in self._matched and self._matched[path] == g.key
            self._files.append(g)
            self._adopt(g, fd)
            self._busy.add(g)
            tracked.add(g.key)
            self._tracked.add(g.key)
            found.append((st.st_size, g))
        found.sort(key=lambda item: -item[0])
        return found

    @staticmethod
    def _line_ends_at(fd: int, size: int, f: _File) -> bool:
        """A copy of `f` at least as long as f's offset has a line end where f had one."""
        if size < f.offset or f.offset <= f.data_start or f.skipping:
            return True
        return os.pread(fd, 1, f.offset - 1) == b"\n"

    def _check_copy(self, c: _File) -> Iterator[Chunk]:
        """A copy stays a copy while its start matches the original and it is not larger."""
        original = c.copy_of
        assert original is not None
        assert c.fd is not None
        if not self._ready(original, keep=(c,)):  # still being looked for after a restart
            return
        assert original.fd is not None
        header = original.header_in_file
        raw = os.pread(c.fd, len(header) + FINGERPRINT_BYTES, original.data_start - len(header))
        size, original_size = os.fstat(c.fd).st_size, os.fstat(original.fd).st_size
        if not _compatible(raw, header, original.fp) or not _agree_before(
            c.fd, original.fd, min(size, original_size)
        ):
            self._event(
                "new_file", f"{c.path}: no longer a copy of {original.path}; reading from 0"
            )
            c.copy_of, c.header, c.inherited, c.prev_header = None, None, False, None
            c.data_start = c.offset = 0
            c.fp, c.skipping, c.seen_size, c.stamp = b"", False, -1, None
            self._reindex(c)
            yield from self._drain(c)
            return
        if size <= original_size:
            c.stamp = _stamp(os.fstat(c.fd))  # compared again once it changes
        else:
            self._event("copy", f"{c.path}: grew past {original.path}; following it instead")
            c.copy_of, c.offset, c.skipping = None, original.offset, original.skipping
            c.fp, c.seen_size = raw[len(header) :], -1
            self._reindex(c)
            for g in self._files:
                if g.copy_of is original:
                    g.copy_of = c
            original.copy_of = c
            yield from self._drain(c)

    def _discover(self, keys: dict[tuple[int, int], str]) -> Iterator[Chunk]:
        """Matched files we do not follow yet: read from 0 unless they are copies."""
        tracked = self._tracked
        new = keys.keys() - tracked
        if not new:
            return
        made: list[tuple[_File, os.stat_result]] = []
        # Largest first, so that of a file and its copy the original is known first; when
        # descriptors run out, the rest (smaller) waits for the next poll.
        for key in sorted(new, key=lambda key: (-self._stats[key].st_size, keys[key])):
            path = keys[key]
            try:
                fd = self._open_path(path)
            except _TryLater:
                break
            except OSError as exc:
                if path not in self._unreadable:
                    self._unreadable.add(path)
                    self._event("unreadable", f"{path}: {exc.strerror or exc}")
                continue
            self._unreadable.discard(path)
            try:
                st = os.fstat(fd)
            except OSError:
                os.close(fd)
                continue
            if (st.st_dev, st.st_ino) in tracked:  # replaced between stat and open
                os.close(fd)
                continue
            f = _File(self._new_id(), path, st.st_dev, st.st_ino)
            self._files.append(f)
            self._adopt(f, fd)
            self._touch(f)
            tracked.add(f.key)
            made.append((f, st))
            self._event("new_file", f"{path}: following from the start")
            try:
                self._prepare(f, st.st_size)
            except OSError as exc:
                self._error(f.path, exc)
        for f, _ in sorted(made, key=lambda item: (item[1].st_mtime_ns, item[0].path)):
            if f.copy_of is not None:
                continue
            try:
                if self._ready(f):
                    yield from self._drain(f)
            except OSError as exc:
                self._error(f.path, exc)

    def _prepare(self, f: _File, size: int) -> None:
        if self._csv and f.header is None and not self._read_header(f, size):
            return
        if not f.skipping and not f.fp:
            self._establish(f, size)

    # --- reading ------------------------------------------------------------------------
    def _drain(self, f: _File) -> Iterator[Chunk]:
        """Read `f` up to the size it has now; yield complete lines. Once all of it is read
        (but a partial last line), its stat is kept: unchanged, it is not looked at again."""
        fd = f.fd
        if fd is None or f.copy_of is not None:
            return
        st = os.fstat(fd)
        f.stamp = None
        if (yield from self._read(f, fd, st.st_size)):
            f.stamp = _stamp(st)

    def _read(self, f: _File, fd: int, end: int) -> Iterator[Chunk]:
        """The reading loop of _drain; returns whether everything up to `end` was looked at."""
        want = self._chunk_bytes
        while f.offset < end:
            start = f.offset
            if f.skipping:
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
                continue
            if self._csv and f.header is None:
                if not self._read_header(f, end):
                    return True
                continue
            if not f.fp:
                if not self._establish(f, end):
                    return True
                if f.copy_of is not None:
                    return False
            block = os.pread(fd, min(end - start, want), start)
            if not block:
                return False
            if want > self._chunk_bytes:  # enlarged for one long line: emit just that line
                newline = block.find(b"\n")
                if newline >= 0:
                    block = block[: newline + 1]
            data, used, too_long, skipping = split_complete_lines(block, self._max_line)
            if used == 0:
                if start + len(block) < end and want < self._max_line + 2:
                    want = self._max_line + 2  # one line longer than a chunk: read it whole
                    continue
                return True
            f.offset, f.skipping = start + used, skipping
            yield self._chunk(f, data, too_long)
            want = self._chunk_bytes
            if used < len(block) and not skipping and start + len(block) >= end:
                return True  # only a partial last line is left
        return True

    def _read_header(self, f: _File, end: int) -> bool:
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

    def _establish(self, f: _File, end: int) -> bool:
        """Take the fingerprint once there is a complete line or 256 data bytes; a file
        that turns out to be a copy of a followed one becomes that file's copy. _TryLater
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
            self._event(
                "copy",
                f"{f.path}: a copy of {original.path}; "
                "not read while the original holds this content",
            )
        self._reindex(f)
        return True

    def _original_of(self, f: _File, size: int) -> _File | None:
        assert f.fd is not None
        for g in self._candidates(f):
            if g is f or g.copy_of is not None or not g.fp or (g.fd is None and not g.parked):
                continue
            header = g.header_in_file
            start = g.data_start - len(header)
            raw = os.pread(f.fd, len(header) + len(g.fp), start)
            if not _compatible(raw, header, g.fp) or not self._ready(g, keep=(f,)):
                continue
            assert g.fd is not None
            if size <= os.fstat(g.fd).st_size and _agree_before(f.fd, g.fd, size):
                return g
        return None

    def _candidates(self, f: _File) -> list[_File]:
        """The followed files whose fingerprint f's start may match, in the order they were
        followed: looked up by f's first line in each header group (see _fp_key)."""
        assert f.fd is not None
        found: dict[_File, None] = {}
        for group in list(self._groups):
            start, header = group
            raw = os.pread(f.fd, len(header) + FINGERPRINT_BYTES, start)
            if not raw.startswith(header):
                continue
            key = _fp_key(raw[len(header) :])
            if key is None:  # f is too short there to tell: look at every file
                return list(self._files)
            found.update(self._index.get((group, key), {}))
            found.update(self._index.get((group, None), {}))
        return sorted(found, key=lambda g: g.rid)

    # --- descriptors -------------------------------------------------------------------
    def _ready(self, f: _File, *, verify: bool = True, keep: tuple[_File, ...] = ()) -> bool:
        """Make sure `f` has a descriptor: a parked file is reopened by name and must still be
        the same dev+inode and, with `verify`, start with its header + fingerprint. False if
        `f` is not followed any more; _TryLater (looked at again next poll) if it cannot be
        opened now or is not the file it was."""
        if f.fd is not None:
            return True
        if not f.parked:
            return False
        try:
            fd = self._open_path(f.path, keep)
        except OSError:
            f.stamp = None
            raise
        try:
            st = os.fstat(fd)
        except OSError:
            os.close(fd)
            f.stamp = None
            raise
        if (st.st_dev, st.st_ino) != f.key:
            os.close(fd)
            f.stamp = None
            raise _TryLater(errno.ESTALE, "the name holds another file now", f.path)
        self._adopt(f, fd)
        if verify:
            try:
                changed = self._truncated(f, st.st_size)
            except OSError:
                changed = True
            if changed:
                self._park(f)
                f.stamp = None
                raise _TryLater(errno.ESTALE, "changed since last read", f.path)
        return True

    def _open_path(self, path: str, keep: tuple[_File, ...] = ()) -> int:
        """os.open within the cap; out of descriptors, one idle file is closed and the open
        tried once more, then _TryLater."""
        self._reserve(keep)
        for attempt in range(2):
            try:
                return os.open(path, _OPEN_FLAGS)
            except OSError as exc:
                if exc.errno not in _OUT_OF_DESCRIPTORS:
                    raise
                if attempt or not self._evict(1, keep):
                    self._short(exc)
                    raise _TryLater(exc.errno, exc.strerror, path) from exc
        raise AssertionError("unreachable")

    def _reserve(self, keep: tuple[_File, ...] = ()) -> None:
        """Room for one more descriptor under the cap: the least recently active idle files
        are closed, an eighth of the cap at a time. _TryLater if none can be closed."""
        if len(self._open) < self._max_open:
            return
        self._evict(len(self._open) - self._max_open + max(1, self._max_open // 8), keep)
        if len(self._open) >= self._max_open:
            raise _TryLater(errno.EMFILE, f"all {self._max_open} descriptors are in use")

    def _evict(
        self, count: int, keep: tuple[_File, ...] = (), idle_before: float | None = None
    ) -> int:
        """Park up to `count` files, least recently active first (with idle_before, only files
        inactive since then): matched files, the others are read to their end through their
        descriptor. Returns how many."""
        victims = []
        for f in self._open:
            if len(victims) >= count:
                break
            if (
                f.current
                and f not in self._busy
                and f not in keep
                and (idle_before is None or f.active <= idle_before)
            ):
                victims.append(f)
        for f in victims:
            self._park(f)
        return len(victims)

    def _adopt(self, f: _File, fd: int) -> None:
        f.fd, f.parked = fd, False
        self._open[f] = None

    def _park(self, f: _File) -> None:
        self._close_fd(f)
        f.parked = True

    def _touch(self, f: _File) -> None:
        f.active = self._clock()
        if f in self._open:  # most recently active last
            del self._open[f]
            self._open[f] = None

    def _close_fd(self, f: _File) -> None:
        if f.fd is not None:
            with contextlib.suppress(OSError):
                os.close(f.fd)
            f.fd = None
            self._open.pop(f, None)

    def _forget(self, f: _File) -> None:
        """No longer follow `f` (its fields stay, for its copies to take over)."""
        self._close_fd(f)
        f.parked = False
        self._unindex(f)
        if f in self._files:
            self._files.remove(f)

    def _short(self, exc: OSError) -> None:
        message = f"{self.source}: out of file descriptors ({exc.strerror}); trying next poll"
        if (self.source, message) not in self._reported:
            self._reported.add((self.source, message))
            self._event("error", message)

    # --- fingerprint index ---------------------------------------------------------------
    def _reindex(self, f: _File) -> None:
        """File `f` under its fingerprint and header again, after either changed."""
        self._unindex(f)
        if f.fp:
            header = f.header_in_file
            group = (f.data_start - len(header), header)
            f.ikey = (group, _fp_key(f.fp))
            self._index.setdefault(f.ikey, {})[f] = None
            self._groups[group] = self._groups.get(group, 0) + 1

    def _unindex(self, f: _File) -> None:
        if f.ikey is None:
            return
        bucket = self._index[f.ikey]
        del bucket[f]
        if not bucket:
            del self._index[f.ikey]
        group = f.ikey[0]
        self._groups[group] -= 1
        if not self._groups[group]:
            del self._groups[group]
        f.ikey = None

    # --- bookkeeping -------------------------------------------------------------------
    def _chunk(self, f: _File, data: bytes, too_long: int) -> Chunk:
        self._touch(f)
        header = None if f.header is None else _strip_line_end(f.header)
        return Chunk(self.source, f.path, header, data, too_long, f.offset)

    def _promote(self, c: _File, original: _File, *, keep_offset: bool) -> None:
        """A file holding `original`'s content is followed on its own from now on: at the
        original's offset (if it reaches it), or with all of it consumed. A parked one is sized
        by this poll's listing and takes its fingerprint when it is next read."""
        size = os.fstat(c.fd).st_size if c.fd is not None else self._stats[c.key].st_size
        c.copy_of, c.seen_size, c.stamp = None, -1, None
        c.header, c.inherited, c.prev_header = original.header, original.inherited, None
        c.data_start = original.data_start
        c.fp = b"" if c.fd is None else os.pread(c.fd, FINGERPRINT_BYTES, c.data_start)
        if keep_offset and size >= original.offset:
            c.offset, c.skipping = original.offset, original.skipping
        else:
            c.offset, c.skipping = max(size, c.data_start), False
        self._reindex(c)

    def _drop(self, f: _File) -> Iterator[Chunk]:
        """Let `f` go; its copies take over at its offset."""
        self._forget(f)
        yield from self._release_copies(f)

    def _release_copies(self, f: _File) -> Iterator[Chunk]:
        for c in [g for g in self._files if g.copy_of is f]:
            try:
                ready = self._ready(c, verify=False)
            except OSError:  # parked, and not to be opened now: promoted from its listing
                ready = c.key in self._stats
            if not ready:  # still being looked for after a restart, or gone
                self._forget(c)
                continue
            try:
                self._promote(c, f, keep_offset=True)
                self._event("copy", f"{c.path}: {f.path} is gone; following its copy")
                yield from self._drain(c)
            except OSError as exc:
                self._error(c.path, exc)

    def _oldest_first(self, files: list[_File]) -> list[_File]:
        def order(f: _File) -> tuple[bool, int, str]:
            st = self._stats.get(f.key) if f.current else None
            if st is not None:
                return (f.current, st.st_mtime_ns, f.path)
            try:
                mtime = os.fstat(f.fd).st_mtime_ns if f.fd is not None else 0
            except OSError:
                mtime = 0
            return (f.current, mtime, f.path)

        return sorted(files, key=order)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id - 1

    def _event(self, kind: str, message: str) -> None:
        if self._on_event is not None:
            self._on_event(kind, message)

    def _error(self, path: str, exc: OSError) -> None:
        if isinstance(exc, _TryLater):
            return  # looked at again next poll (out of descriptors is reported by _short)
        message = f"{path}: {exc}"
        if (path, message) not in self._reported:  # once per distinct error
            self._reported.add((path, message))
            self._event("error", message)

    def _load_state(self, state: dict[str, Any]) -> None:
        try:
            if state.get("version", STATE_VERSION) != STATE_VERSION:
                raise ValueError(f"unsupported version {state.get('version')!r}")
            rotations = int(state["rotations"])
            files: dict[int, _File] = {}
            links: dict[int, Any] = {}
            for item in state["files"]:
                f = _File(
                    rid=int(item["id"]),
                    path=str(item["path"]),
                    dev=int(item["dev"]),
                    ino=int(item["ino"]),
                    fp=bytes.fromhex(item["fingerprint"]),
                    header=_unhex(item.get("header")),
                    inherited=bool(item.get("inherited", False)),
                    prev_header=_unhex(item.get("prev_header")),
                    data_start=int(item["data_start"]),
                    offset=int(item["offset"]),
                    skipping=bool(item["skipping"]),
                    current=bool(item.get("current", True)),
                )
                files[f.rid] = f
                links[f.rid] = item.get("copy_of")
            for rid, original in links.items():
                if original is not None:
                    files[rid].copy_of = files[int(original)]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"invalid tailer state for {self.source!r}: {exc}") from exc
        self._rotations = rotations
        self._files = list(files.values())
        self._next_id = max(files, default=0) + 1
        self._unlocated = bool(self._files)
        for f in self._files:
            self._reindex(f)


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


def _compatible(raw: bytes, header: bytes, fp: bytes) -> bool:
    """`raw` starts with `header` and its data agrees with `fp` on their common length."""
    if not fp or not raw.startswith(header):
        return False
    data = raw[len(header) :]
    common = min(len(data), len(fp))
    return common > 0 and data[:common] == fp[:common]


def _agree_before(fd: int, other: int, end: int) -> bool:
    """Both files hold the same bytes just before `end` (a copy is a prefix of its original;
    a new file that merely starts like another one is not)."""
    start = max(0, end - FINGERPRINT_BYTES)
    return os.pread(fd, end - start, start) == os.pread(other, end - start, start)


def _fp_key(data: bytes) -> bytes | None:
    """What a fingerprint shares with the start of every file it matches: its first line, or
    its first FINGERPRINT_BYTES bytes if they hold no line end. None if `data` is shorter than
    that (such a fingerprint, or such a start, is compared with every file)."""
    newline = data.find(b"\n", 0, FINGERPRINT_BYTES)
    if newline >= 0:
        return data[: newline + 1]
    if len(data) >= FINGERPRINT_BYTES:
        return data[:FINGERPRINT_BYTES]
    return None


def _directory(path: str) -> str:
    return os.path.dirname(path) or "."


def _stamp(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _strip_line_end(line: bytes) -> bytes:
    if line.endswith(b"\r\n"):
        return line[:-2]
    if line.endswith(b"\n"):
        return line[:-1]
    return line


def _unhex(value: object) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected a hex string, got {value!r}")
    return bytes.fromhex(value)


def _identity(path: str) -> tuple[int, int] | None:
    """A folder's device and inode (None if it cannot be looked at)."""
    try:
        st = os.stat(path or ".")
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
