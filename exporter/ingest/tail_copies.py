"""Copies of followed files: never read on their own while the original holds their content.

Copies. A copy (how one is recognised: ``tail_files``) is never read on its own while the
  original holds that content. When the original is truncated the copy continues it (rule
  below); when the original goes away the copy takes over at the original's offset; when the
  copy grows larger than the original it takes over at the original's offset and the original
  becomes the copy; when its start stops matching it is a file of its own, read from 0.
Copytruncate. After a truncation, the directory is searched for the copy: files starting with
  the stored header + fingerprint, with a line end where we stopped. The largest continues
  from our offset to its end, so the rows written between our last read and the copy are not
  lost; any other is consumed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator

from exporter.ingest.tail_descriptors import TryLater
from exporter.ingest.tail_files import (
    FINGERPRINT_BYTES,
    TailedFile,
    agree_before,
    compatible,
    directory,
    line_ends_at,
    may_have_changed,
    stamp,
    untouched,
)
from exporter.ingest.tail_followed import Followed
from exporter.ingest.tail_read import Chunk


class Copies:
    """Hands a file's content over between an original and the files holding a copy of it."""

    def __init__(self, followed: Followed) -> None:
        self._followed = followed

    def may_have_changed(self, c: TailedFile) -> bool:
        """A copy is compared with its original again when it changed (its original changing
        cannot end the copy: appended to, it still holds the copy; truncated, the truncation
        rule hands the copy over), or when either is not under a matched name."""
        if c.fd is None and not c.parked:
            return False
        original = c.copy_of
        return (
            may_have_changed(c, self._followed.stats.get(c.key))
            or original is None
            or not original.current
            or (original.fd is None and not original.parked)
        )

    def check(self, c: TailedFile) -> Iterator[Chunk]:
        """A copy stays a copy while its start matches the original and it is not larger."""
        fol = self._followed
        original = c.copy_of
        assert original is not None
        assert c.fd is not None
        if not fol.ready(original, keep=(c,)):  # still being looked for after a restart
            return
        assert original.fd is not None
        header = original.header_in_file
        raw = os.pread(c.fd, len(header) + FINGERPRINT_BYTES, original.data_start - len(header))
        size, original_size = os.fstat(c.fd).st_size, os.fstat(original.fd).st_size
        if not compatible(raw, header, original.fp) or not agree_before(
            c.fd, original.fd, min(size, original_size)
        ):
            fol.event("new_file", f"{c.path}: no longer a copy of {original.path}; reading from 0")
            c.copy_of = None
            c.restart(None)
            fol.index.add(c)
            yield from fol.reader.drain(c)
            return
        if size <= original_size:
            c.stamp = stamp(os.fstat(c.fd))  # compared again once it changes
        else:
            fol.event("copy", f"{c.path}: grew past {original.path}; following it instead")
            c.copy_of, c.offset, c.skipping = None, original.offset, original.skipping
            c.fp, c.seen_size = raw[len(header) :], -1
            fol.index.add(c)
            for g in fol.files:
                if g.copy_of is original:
                    g.copy_of = c
            original.copy_of = c
            yield from fol.reader.drain(c)

    def take_over(self, f: TailedFile) -> tuple[TailedFile | None, bool]:
        """Files holding f's content take over from f: the largest continues at f's offset
        (if it reaches it), the others are consumed, so that none is read on its own.
        Returns the one to read on and whether there were any."""
        if f.copy_of is not None or not f.fp:
            return None, False
        try:
            copies = self._holding(f)
            continuation = copies[0][1] if copies and copies[0][0] >= f.offset else None
            for _, c in copies:
                self._promote(c, f, keep_offset=c is continuation)
        finally:
            self._followed.budget.busy.clear()
        if continuation is not None:
            self._followed.event(
                "copy", f"{continuation.path}: a copy of {f.path}; reading it from {f.offset}"
            )
        return continuation, bool(copies)

    def _holding(self, f: TailedFile) -> list[tuple[int, TailedFile]]:
        """Files of f's directory that hold f's content (what copytruncate leaves), largest
        first: f's copies, files nothing was consumed from yet, and files we do not follow
        (those are followed from now on if the source matches them). TryLater if one of
        them cannot be looked at now."""
        found = self._followed_holding(f) + self._unfollowed_holding(f)
        found.sort(key=lambda item: -item[0])
        return found

    def _followed_holding(self, f: TailedFile) -> list[tuple[int, TailedFile]]:
        fol = self._followed
        header = f.header_in_file
        start = f.data_start - len(header)
        folder = directory(f.path)
        found = []
        for g in fol.files:
            if g is f or (g.fd is None and not g.parked):
                continue
            near = untouched(g) and directory(g.path) == folder
            if (g.copy_of is f or near) and fol.ready(g, verify=False):
                assert g.fd is not None
                fol.budget.busy.add(g)
                size = os.fstat(g.fd).st_size
                raw = os.pread(g.fd, len(header) + FINGERPRINT_BYTES, start)
                if compatible(raw, header, f.fp) and line_ends_at(g.fd, size, f):
                    found.append((size, g))
        return found

    def _unfollowed_holding(self, f: TailedFile) -> list[tuple[int, TailedFile]]:
        fol = self._followed
        header = f.header_in_file
        start = f.data_start - len(header)
        want = len(header) + FINGERPRINT_BYTES
        folder = directory(f.path)
        tracked = {g.key for g in fol.files if g is not f}
        entries = fol.budget.listing(folder, fol.copy_listings)
        if entries is None:
            raise TryLater(errno.EMFILE, "no descriptor to list", folder)
        found = []
        for path, listed in entries:
            if listed.st_size <= len(header) or (listed.st_dev, listed.st_ino) in tracked:
                continue
            try:
                fd, st = fol.budget.open_stat(path)
            except TryLater:
                raise
            except OSError:
                continue
            try:
                holds = compatible(os.pread(fd, want, start), header, f.fp)
                holds = holds and line_ends_at(fd, st.st_size, f)
            except OSError:
                holds = False
            if not holds or (st.st_dev, st.st_ino) in tracked:
                os.close(fd)
                continue
            g = TailedFile(fol.new_id(), path, st.st_dev, st.st_ino)
            g.current = path in fol.matched and fol.matched[path] == g.key
            fol.files.append(g)
            fol.budget.adopt(g, fd)
            fol.budget.busy.add(g)
            tracked.add(g.key)
            fol.tracked.add(g.key)
            found.append((st.st_size, g))
        return found

    def _promote(self, c: TailedFile, original: TailedFile, *, keep_offset: bool) -> None:
        """A file holding `original`'s content is followed on its own from now on: at the
        original's offset (if it reaches it), or with all of it consumed. A parked one is sized
        by this poll's listing and takes its fingerprint when it is next read."""
        fol = self._followed
        size = os.fstat(c.fd).st_size if c.fd is not None else fol.stats[c.key].st_size
        c.copy_of, c.seen_size, c.stamp = None, -1, None
        c.header, c.inherited, c.prev_header = original.header, original.inherited, None
        c.data_start = original.data_start
        c.fp = b"" if c.fd is None else os.pread(c.fd, FINGERPRINT_BYTES, c.data_start)
        if keep_offset and size >= original.offset:
            c.offset, c.skipping = original.offset, original.skipping
        else:
            c.offset, c.skipping = max(size, c.data_start), False
        fol.index.add(c)

    def drop(self, f: TailedFile) -> Iterator[Chunk]:
        """Let `f` go; its copies take over at its offset."""
        self._followed.forget(f)
        yield from self.release(f)

    def release(self, f: TailedFile) -> Iterator[Chunk]:
        """The copies of `f`, which is gone, follow on from its offset."""
        fol = self._followed
        for c in [g for g in fol.files if g.copy_of is f]:
            try:
                ready = fol.ready(c, verify=False)
            except OSError:  # parked, and not to be opened now: promoted from its listing
                ready = c.key in fol.stats
            if not ready:  # still being looked for after a restart, or gone
                fol.forget(c)
                continue
            try:
                self._promote(c, f, keep_offset=True)
                fol.event("copy", f"{c.path}: {f.path} is gone; following its copy")
                yield from fol.reader.drain(c)
            except OSError as exc:
                fol.error(c.path, exc)
