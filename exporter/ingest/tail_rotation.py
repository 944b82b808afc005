"""Rotation and truncation: noticing that a followed name or its content changed, and what then.

Rotation by rename + create. The name now points to another inode (or to nothing). The old
  descriptor stays open and is read to its end, including lines a slow writer completes
  later, until a poll finds it unchanged and it is still not matched; then it is closed.
  The new file is followed from offset 0. One rotation is counted when a name we followed
  now holds a file we did not know.
Truncation. Size < offset, or the bytes at the start no longer match the stored header +
  fingerprint (the writer may have appended past the old offset before we looked). Count one
  rotation, restart the file at 0 (after its header for CSV), and look in the same directory
  for the copy (copytruncate, rule in ``tail_copies``). All truncations of a poll are handled
  before any copy is looked for, and copies before any file is read.
Deleted and recreated. While we hold a file open its inode cannot be reused, so a recreated
  file is a new inode: the old one is read to its end, the new one from 0. Across a restart,
  or while a file is parked (rule: descriptors), the inode number may be reused (ext4 does):
  the fingerprint does not match, restart at 0.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from exporter.ingest.tail_copies import Copies
from exporter.ingest.tail_descriptors import TryLater
from exporter.ingest.tail_files import TailedFile, may_have_changed
from exporter.ingest.tail_followed import Followed, Key
from exporter.ingest.tail_read import Chunk

Gone = list[tuple[TailedFile, TailedFile]]  # (file, what it held before it was truncated)


class Rotation:
    """Follows renames, lets rotated files go, and restarts truncated ones with their copies."""

    def __init__(self, followed: Followed, copies: Copies) -> None:
        self._followed = followed
        self._copies = copies

    def update_names(self, keys: dict[Key, str]) -> tuple[list[TailedFile], list[TailedFile]]:
        """Follow renames; notice files that left the source (rule: rotation). In the same
        pass over the files: returns those that may have changed, and the copies."""
        fol = self._followed
        changed: list[TailedFile] = []
        copies: list[TailedFile] = []
        stats = fol.stats
        for f in list(fol.files):
            if f.fd is None and not f.parked:
                continue
            path = keys.get(f.key)
            if path is not None:
                f.path, f.current = path, True
            elif f.current and not f.parked:  # (parked: not found again yet)
                f.current, f.seen_size = False, -1  # let go only after a poll that finds nothing
                if f.copy_of is not None:  # a copy that went away: nothing to read from it
                    fol.forget(f)
                    continue
                self.note_replaced(f.path)
            if f.copy_of is not None:
                copies.append(f)
            elif may_have_changed(f, stats.get(f.key)):
                changed.append(f)
        return changed, copies

    def note_replaced(self, name: str) -> None:
        fol = self._followed
        tracked = {g.key for g in fol.files if g.fd is not None or g.parked}
        now = fol.matched.get(name)
        if now is not None and now not in tracked:
            fol.rotations += 1
            fol.event("rotation", f"{name}: replaced by a new file; reading the old one to its end")
        else:
            fol.event("rotation", f"{name}: no longer matched; reading it to its end")

    def service(self, f: TailedFile) -> Iterator[Chunk]:
        """Read `f` on; one rotated away that did not change since the last poll is let go."""
        assert f.fd is not None
        size = os.fstat(f.fd).st_size
        idle = not f.current and size == f.seen_size
        f.seen_size = size
        yield from self._followed.reader.drain(f)
        if idle:
            self._followed.event("closed", f"{f.path}: rotated away and read to its end")
            yield from self._copies.drop(f)

    # --- truncation -----------------------------------------------------------------------
    def find_truncated(
        self, followed: list[TailedFile], suspects: set[TailedFile]
    ) -> tuple[Gone, bool]:
        """The files of `followed` that were truncated, restarted at 0, with what they held;
        and whether some could not be looked at now."""
        fol = self._followed
        gone: Gone = []
        unsure = False
        for f in followed:
            try:
                if not fol.ready(f, verify=False):
                    continue
                assert f.fd is not None
                if f.current:
                    fol.budget.touch(f)
                size = os.fstat(f.fd).st_size
                if fol.truncated(f, size):
                    gone.append((f, self._restart_at_zero(f, size, quiet=f in suspects)))
            except TryLater:
                unsure = True
            except OSError as exc:
                fol.error(f.path, exc)
        return gone, unsure

    def _restart_at_zero(self, f: TailedFile, size: int, *, quiet: bool) -> TailedFile:
        """Truncation: `f` starts again at 0. Returns what it was, for its copies."""
        fol = self._followed
        if not quiet:
            fol.rotations += 1
            fol.event(
                "truncation",
                f"{f.path}: truncated or rewritten (size {size}, offset {f.offset}); "
                "restarting at 0",
            )
        old = f.detached()
        for g in fol.files:
            if g.copy_of is f:
                g.copy_of = old
        previous = f.header if f.header is not None else f.prev_header
        f.restart(previous if fol.csv else None)
        fol.index.add(f)
        return old

    def hand_over(
        self, gone: Gone, suspects: set[TailedFile], unsure: bool
    ) -> tuple[Gone, list[TailedFile | None], dict[TailedFile, bool], set[TailedFile]]:
        """Files holding the content of the `gone` ones take over from them. Returns the gone
        files handled, the files that continue them, whether each had copies, and the files
        left for the next poll."""
        continuations: list[TailedFile | None] = []
        held: dict[TailedFile, bool] = {}
        postponed: set[TailedFile] = set()
        if unsure and gone:
            # A file that may have changed could not be looked at (a parked one whose inode
            # number went to a copy, say): no truncation is handled before all of them are.
            postponed = {g for g, _ in gone}
            self._postpone(gone, suspects)
            return [], continuations, held, postponed
        for n, (f, old) in enumerate(gone):  # nothing is yielded before every copy is taken over
            try:
                continuation, held[f] = self._copies.take_over(old)
            except TryLater:
                # Not every copy could be looked at: this file and the ones after it are taken
                # as not seen yet, and nothing that may hold their content is read before the
                # next poll (the other files are, so that rotated ones are let go).
                postponed = {g for g, _ in gone[n:]}
                self._postpone(gone[n:], suspects)
                return gone[:n], continuations, held, postponed
            except OSError as exc:
                self._followed.error(old.path, exc)
                continue
            continuations.append(continuation)
        return gone, continuations, held, postponed

    def _postpone(self, pending: Gone, suspects: set[TailedFile]) -> None:
        """Undo what this poll did to files whose copies could not all be looked at: the next
        poll finds them truncated (or lost, or suspect) again."""
        fol = self._followed
        for f, old in pending:
            if f is old:  # lost: looked for again
                fol.files.append(f)
                fol.index.add(f)
                fol.unlocated = True
                continue
            for name in ("fp", "header", "inherited", "prev_header", "data_start", "offset"):
                setattr(f, name, getattr(old, name))
            f.skipping, f.seen_size, f.stamp = old.skipping, -1, None
            fol.index.add(f)
            for g in fol.files:
                if g.copy_of is old:
                    g.copy_of = f
            if f in suspects:
                suspects.discard(f)
                fol.budget.close_fd(f)  # found and judged again
                fol.unlocated = True
            else:
                fol.rotations -= 1
