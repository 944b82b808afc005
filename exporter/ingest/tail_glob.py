"""The files one configured source (a path or a glob) names now, and the order to read them in.

Glob. Matched files are read in a stable order, older first: files no longer matched, then by
  mtime, then by name. On a fresh start (no state) every matched file is read from 0 (history
  counts: windows are event-time). Files that appear later are read from 0. A file that
  leaves the glob is read to its end through its open descriptor (a parked one once found
  again), then dropped. Files in the exporter's own state directory are never matched.

Limits: a path source sees only the file under its name: a file created and rotated away
between two polls is never read (a glob covering the rotated names, preds.csv*, sees such
files). A glob with magic in a directory part, or "**", is listed by glob.glob, which hides
listing errors. It is called only when a descriptor is free, and files already followed are
found under their names whatever it returns; a followed file renamed just as another thread
took the last descriptor could still be taken for rotated away, and read again.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import stat
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from exporter.ingest.tail_descriptors import DescriptorBudget
from exporter.ingest.tail_files import TailedFile, folder_identity

_GLOB_MAGIC = re.compile(r"[*?[]")

Key = tuple[int, int]  # (dev, ino)


class SourceGlob:
    """Lists the regular files a source matches, within the descriptor budget."""

    def __init__(
        self, source: str, base_dir: Path, exclude_dir: Path | None, budget: DescriptorBudget
    ) -> None:
        pattern = Path(source)
        if not pattern.is_absolute():
            pattern = Path(base_dir) / pattern
        self._pattern = str(pattern)
        self._is_glob = bool(_GLOB_MAGIC.search(source))
        # the exporter's own state_dir: a glob reaching it through a symlinked folder (which
        # the config check cannot see) must not read the checkpoint as a log
        self._exclude_dir = exclude_dir
        self._budget = budget

    def match(
        self, followed: Callable[[], Iterable[str]]
    ) -> tuple[dict[Key, str], dict[str, Key], dict[Key, os.stat_result]] | None:
        """The regular files the source matches now: (dev, inode) -> path (of hard links, the
        least name), path -> (dev, inode), and (dev, inode) -> stat. `followed` names the
        files followed under a matched name, matched all the same when the listing may be
        incomplete. None when the source could not be listed for want of a descriptor."""
        names, complete = self._list()
        if names is None:
            return None
        if not complete:
            names = {*names, *followed()}
        keys: dict[Key, str] = {}
        matched: dict[str, Key] = {}
        stats: dict[Key, os.stat_result] = {}
        excluded = None if self._exclude_dir is None else folder_identity(str(self._exclude_dir))
        folders: dict[str, Key | None] = {}
        for name in names:
            if excluded is not None:
                folder = os.path.dirname(name)
                if folder not in folders:
                    folders[folder] = folder_identity(folder)
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
        return keys, matched, stats

    def _list(self) -> tuple[Collection[str] | None, bool]:
        """The names the source matches (what glob.glob returns), and whether the listing is
        known to be complete; None if no descriptor is to be had to list it."""
        if not self._is_glob:
            return [self._pattern], True
        folder, pattern = os.path.split(self._pattern)
        if _GLOB_MAGIC.search(folder) or pattern == "**":
            if not self._budget.spare_descriptor():
                return None, False
            return glob.glob(self._pattern, recursive=True), False  # it hides errors
        names, complete = self._budget.listdir(folder)
        if names is None:
            return None, False
        # As glob.glob: fnmatch, and a wildcard does not match a leading dot.
        hidden = "" if pattern.startswith(".") else r"(?!\.)"
        match = re.compile(hidden + fnmatch.translate(pattern)).match
        prefix = os.path.join(folder, "")
        return [prefix + name for name in filter(match, names)], complete


def oldest_first(files: list[TailedFile], stats: dict[Key, os.stat_result]) -> list[TailedFile]:
    """Files no longer matched first, then by mtime (of the name, else of the descriptor),
    then by name."""

    def order(f: TailedFile) -> tuple[bool, int, str]:
        st = stats.get(f.key) if f.current else None
        if st is not None:
            return (f.current, st.st_mtime_ns, f.path)
        try:
            mtime = os.fstat(f.fd).st_mtime_ns if f.fd is not None else 0
        except OSError:
            mtime = 0
        return (f.current, mtime, f.path)

    return sorted(files, key=order)
