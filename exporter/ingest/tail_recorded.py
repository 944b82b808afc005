"""Finding files again that the tailer knows but holds no descriptor for: after a restart
from a saved state, and parked files the source no longer matches.

Restart from state. A recorded file is looked up by dev+inode: under its recorded name, else
  among the files of the same directory (logrotate names: name.1, name-20240601, ...); if the
  device number changed (remount) by inode alone. If its start still matches the fingerprint
  it is read from the recorded offset (and, if the source no longer matches it, to its end,
  then let go). If it does not: matched by the source, it was truncated (rule: truncation, in
  ``tail_rotation``); elsewhere, the inode number was reused by another file, and ours is
  gone. A recorded file that is gone is reported as lost; its content is looked for like a
  truncated file's.

Limit: after a restart a file the restored state does not know is never read if it was read
only after the last checkpoint and rotated away (renamed twice, or copytruncated) while the
exporter was down. So checkpoint soon after consuming. A glob covering the rotated names
(preds.csv*) sees such files.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from exporter.ingest.tail_copies import Copies
from exporter.ingest.tail_descriptors import TryLater
from exporter.ingest.tail_files import TailedFile
from exporter.ingest.tail_followed import Followed, Key
from exporter.ingest.tail_read import Chunk
from exporter.ingest.tail_rotation import Rotation


class Recorded:
    """Looks for the followed files that have no descriptor and are not under a matched name."""

    def __init__(self, followed: Followed, copies: Copies, rotation: Rotation) -> None:
        self._followed = followed
        self._copies = copies
        self._rotation = rotation

    def attach(self, keys: dict[Key, str]) -> tuple[list[TailedFile], set[TailedFile], bool]:
        """Find the files recorded in a restored state again (rule: restart from state), and
        the parked files the source no longer matches (rule: descriptors).
        Returns the ones that are gone (closed, for their content to be looked for), the
        suspects: found outside the source with other content, so either truncated and then
        renamed, or their inode number was reused by another file (see settle), and
        whether some could not be looked for now (out of descriptors)."""
        fol = self._followed
        lost: list[TailedFile] = []
        suspects: set[TailedFile] = set()
        unsure = False
        fol.tracked = {f.key for f in fol.files}
        if not fol.unlocated and not fol.tracked.difference(keys):
            return lost, suspects, unsure  # every file is under a matched name: nothing to do
        fol.unlocated = False
        for f in [f for f in fol.files if f.fd is None and (not f.parked or f.key not in keys)]:
            if not f.parked and f.copy_of is None and f.key in keys:
                f.parked, f.stamp = True, None  # under a matched name: compared when opened
                continue
            if f.parked and f.copy_of is not None:  # a copy that went away: nothing to read
                fol.forget(f)
                continue
            try:
                found = self._locate(f)
            except TryLater:
                unsure = fol.unlocated = True
                continue
            except OSError as exc:
                fol.error(f.path, exc)
                continue
            if found is None:
                lost.append(f)
            elif self._found(f, *found, keys):
                suspects.add(f)
        for f in lost:
            self._gone(f)
        fol.tracked = {f.key for f in fol.files}
        return lost, suspects, unsure

    def _found(
        self, f: TailedFile, path: str, fd: int, st: os.stat_result, keys: dict[Key, str]
    ) -> bool:
        """`f` found again at `path`, open as `fd`; whether it is a suspect."""
        recorded, was_current = f.path, f.current
        self._followed.budget.adopt(f, fd)
        f.dev, f.ino, f.path = st.st_dev, st.st_ino, path
        f.key = (f.dev, f.ino)
        f.current = f.key in keys
        # (in the source, other content is plainly a truncation)
        suspect = f.copy_of is None and not f.current and self._followed.truncated(f, st.st_size)
        if f.copy_of is None and was_current and not f.current:
            self._rotation.note_replaced(recorded)
        return suspect

    def _gone(self, f: TailedFile) -> None:
        fol = self._followed
        parked = f.parked
        fol.forget(f)  # its inode may be another file now: that one is free
        if f.copy_of is not None:
            return
        if not parked:
            fol.event("lost", f"{f.path}: the recorded file is gone, with its unread rows")
            return
        if f.current:  # as if we had held it: gone from under its name
            self._rotation.note_replaced(f.path)
            f.current = False
        fol.event("closed", f"{f.path}: deleted while idle; it was read to {f.offset}")

    def settle(self, f: TailedFile, held: bool) -> Iterator[Chunk]:
        """A recorded file found outside the source with other content. If a copy held its
        old content, it was truncated in place (copytruncate) and renamed since: its new rows
        are read from 0. If not, its inode number belongs to another file now, which is not
        ours to read, unless it just turned out to be some file's copy."""
        fol = self._followed
        if held:
            fol.rotations += 1
            fol.event("truncation", f"{f.path}: truncated and renamed; reading it from 0")
        elif f.copy_of is None and f.offset == f.data_start == 0 and f.fp == b"":
            fol.event("lost", f"{f.path}: the recorded file is gone, with its unread rows")
            yield from self._copies.drop(f)

    def _locate(self, f: TailedFile) -> tuple[str, int, os.stat_result] | None:
        """Where the recorded file is now: (path, fd, fstat), or None if it is gone; TryLater
        if it cannot be looked for now."""
        match = self._name_of(f)
        return None if match is None else self._open_as(f, match)

    def _name_of(self, f: TailedFile) -> str | None:
        """The name f's dev+inode has now, if any: its recorded name, else one in the same
        directory."""
        try:
            st = os.stat(f.path)
            if (st.st_dev, st.st_ino) == f.key:
                return f.path
        except OSError:
            pass
        fol = self._followed
        entries = fol.budget.listing(os.path.dirname(f.path) or ".", fol.listings)
        if entries is None:
            raise TryLater(errno.EMFILE, "no descriptor to list", f.path)
        match = next((p for p, st in entries if (st.st_dev, st.st_ino) == f.key), None)
        if match is None and entries and entries[0][1].st_dev != f.dev:
            # The device was renumbered (remount, reboot): the inode alone, verified below.
            match = next((p for p, st in entries if st.st_ino == f.ino), None)
        return match

    def _open_as(self, f: TailedFile, path: str) -> tuple[str, int, os.stat_result] | None:
        """`path` opened, if it still holds f (None if not)."""
        try:
            fd, st = self._followed.budget.open_stat(path)
        except TryLater:
            raise
        except FileNotFoundError:
            return None
        except OSError as exc:
            self._followed.error(path, exc)
            raise TryLater(exc.errno, exc.strerror, path) from exc
        if st.st_ino != f.ino or (st.st_dev != f.dev and self._truncated_fd(f, fd, st)):
            os.close(fd)
            return None
        return path, fd, st

    def _truncated_fd(self, f: TailedFile, fd: int, st: os.stat_result) -> bool:
        saved = f.fd
        f.fd = fd
        try:
            return self._followed.truncated(f, st.st_size)
        finally:
            f.fd = saved
