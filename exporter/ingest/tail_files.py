"""What the tailer knows about one followed file, and the identity rules over its bytes.

Identity. A file is device + inode + fingerprint. The fingerprint is the first up to 256
  data bytes: after the header line for CSV (the files of one source share their header, so
  the header alone identifies nothing), from byte 0 for JSONL. It is taken once the file
  holds a complete data line or 256 data bytes. While the file is shorter than 256 data bytes
  the fingerprint is a prefix that grows; comparisons use the stored prefix.
Copies (how one is recognised; what becomes of it is in ``tail_copies``). A new file whose
  start matches a followed file's fingerprint (another inode), that is not larger, and whose
  last 256 bytes equal the original's bytes at the same offsets, is a copy.

Limits: a file holding no complete data line when last looked at has no fingerprint. If it
is filled, copied and truncated before the next look (with the header written again, or
JSONL), the truncation goes unnoticed and the rows in the copy are not read. A copy is known
by content: a new file that is byte for byte a prefix of a followed file is taken for its copy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

FINGERPRINT_BYTES = 256

Stamp = tuple[int, int, int]  # (size, mtime_ns, ctime_ns) of a file's name


@dataclass(eq=False, slots=True)
class TailedFile:
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
    copy_of: TailedFile | None = None  # a copy of that file: not read while it holds the content
    seen_size: int = -1  # size at the previous poll (to let a rotated file go)
    parked: bool = False  # closed while idle: identity known, reopened by name when it changes
    stamp: Stamp | None = None  # the stat of its name when last read to its end
    active: float = 0.0  # when it last changed or gave lines (the least recent is closed first)
    ikey: tuple[Any, ...] | None = None  # its place in the FingerprintIndex
    key: tuple[int, int] = (0, 0)  # (dev, ino), set from them

    def __post_init__(self) -> None:
        self.key = (self.dev, self.ino)

    @property
    def header_in_file(self) -> bytes:
        """The header bytes that precede ``data_start`` in this file (b"" for JSONL)."""
        if self.header is None or self.inherited:
            return b""
        return self.header

    def detached(self) -> TailedFile:
        """What this file holds now, as a closed record for its copies to take over from."""
        return TailedFile(
            self.rid,
            self.path,
            self.dev,
            self.ino,
            None,
            self.fp,
            self.header,
            self.inherited,
            self.prev_header,
            self.data_start,
            self.offset,
            self.skipping,
            self.current,
        )

    def restart(self, prev_header: bytes | None) -> None:
        """Read again from byte 0, as a file never seen (the header is taken again)."""
        self.header, self.inherited, self.prev_header = None, False, prev_header
        self.data_start = self.offset = 0
        self.fp, self.skipping, self.seen_size, self.stamp = b"", False, -1, None


def stamp(st: os.stat_result) -> Stamp:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def may_have_changed(f: TailedFile, st: os.stat_result | None) -> bool:
    """Open or parked, and not known to be read to the end it has now: `st`, the stat of its
    name this poll, differs from the one it had when it was last read to its end."""
    if f.fd is None and (not f.parked or st is None):
        return False
    seen = f.stamp
    return (
        st is None
        or not f.current
        or seen is None
        or seen != (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    )


def untouched(f: TailedFile) -> bool:
    """Nothing consumed from it yet: it may turn out to hold a truncated file's content."""
    return f.copy_of is None and f.offset == f.data_start and not f.skipping


def compatible(raw: bytes, header: bytes, fp: bytes) -> bool:
    """`raw` starts with `header` and its data agrees with `fp` on their common length."""
    if not fp or not raw.startswith(header):
        return False
    data = raw[len(header) :]
    common = min(len(data), len(fp))
    return common > 0 and data[:common] == fp[:common]


def agree_before(fd: int, other: int, end: int) -> bool:
    """Both files hold the same bytes just before `end` (a copy is a prefix of its original;
    a new file that merely starts like another one is not)."""
    start = max(0, end - FINGERPRINT_BYTES)
    return os.pread(fd, end - start, start) == os.pread(other, end - start, start)


def line_ends_at(fd: int, size: int, f: TailedFile) -> bool:
    """A copy of `f` at least as long as f's offset has a line end where f had one."""
    if size < f.offset or f.offset <= f.data_start or f.skipping:
        return True
    return os.pread(fd, 1, f.offset - 1) == b"\n"


def fp_key(data: bytes) -> bytes | None:
    """What a fingerprint shares with the start of every file it matches: its first line, or
    its first FINGERPRINT_BYTES bytes if they hold no line end. None if `data` is shorter than
    that (such a fingerprint, or such a start, is compared with every file)."""
    newline = data.find(b"\n", 0, FINGERPRINT_BYTES)
    if newline >= 0:
        return data[: newline + 1]
    if len(data) >= FINGERPRINT_BYTES:
        return data[:FINGERPRINT_BYTES]
    return None


def directory(path: str) -> str:
    return os.path.dirname(path) or "."


def folder_identity(path: str) -> tuple[int, int] | None:
    """A folder's device and inode (None if it cannot be looked at)."""
    try:
        st = os.stat(path or ".")
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


class FingerprintIndex:
    """The followed files by (header group, first line of the fingerprint), so that a new file
    is compared only with the files it may be a copy of; a group is (header start, header)."""

    def __init__(self) -> None:
        self._index: dict[tuple[Any, ...], dict[TailedFile, None]] = {}
        self._groups: dict[tuple[int, bytes], int] = {}  # group -> files indexed in it

    def add(self, f: TailedFile) -> None:
        """File `f` under its fingerprint and header again, after either changed."""
        self.remove(f)
        if f.fp:
            header = f.header_in_file
            group = (f.data_start - len(header), header)
            f.ikey = (group, fp_key(f.fp))
            self._index.setdefault(f.ikey, {})[f] = None
            self._groups[group] = self._groups.get(group, 0) + 1

    def remove(self, f: TailedFile) -> None:
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

    def candidates(self, f: TailedFile, every: list[TailedFile]) -> list[TailedFile]:
        """The files of `every` whose fingerprint f's start may match, in the order they were
        followed: looked up by f's first line in each header group (see fp_key)."""
        assert f.fd is not None
        found: dict[TailedFile, None] = {}
        for group in list(self._groups):
            start, header = group
            raw = os.pread(f.fd, len(header) + FINGERPRINT_BYTES, start)
            if not raw.startswith(header):
                continue
            key = fp_key(raw[len(header) :])
            if key is None:  # f is too short there to tell: look at every file
                return list(every)
            found.update(self._index.get((group, key), {}))
            found.update(self._index.get((group, None), {}))
        return sorted(found, key=lambda g: g.rid)
