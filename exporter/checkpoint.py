"""Atomic checkpoints: tailer offsets, aggregates and pending joins in one file.

Written as temp file, fsync, rename over the old one, fsync the directory, so after a
crash at any moment the file on disk is either the old checkpoint or the new one, never a
mix; offsets and aggregates therefore always describe the same set of consumed rows.

The file is a pickle of plain data (dicts, lists, numbers, numpy arrays). It lives in the
exporter's own ``state_dir``; anyone who can write there can already change what it runs.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
FILE_NAME = "checkpoint.pickle"


class CheckpointError(Exception):
    pass


def save_checkpoint(state_dir: Path, state: dict[str, Any]) -> int:
    """Write ``state`` atomically; return the number of bytes written."""
    state_dir.mkdir(parents=True, exist_ok=True)
    payload = pickle.dumps({"format": FORMAT_VERSION, "state": state}, protocol=5)
    target = state_dir / FILE_NAME
    temporary = state_dir / f".{FILE_NAME}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            view = memoryview(payload)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, target)
    except BaseException:
        # a full disk must not also leave half a checkpoint behind
        temporary.unlink(missing_ok=True)
        raise
    directory = os.open(state_dir, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return len(payload)


def load_checkpoint(state_dir: Path) -> dict[str, Any] | None:
    """The last checkpoint's state, or None when there is none."""
    target = state_dir / FILE_NAME
    try:
        payload = target.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as err:  # a path through a file, a directory in its place, no permission
        raise CheckpointError(
            f"state_dir: cannot read the checkpoint {target}: {err.strerror or err}"
        ) from None
    try:
        document = pickle.loads(payload)
    except Exception as err:
        raise CheckpointError(
            f"{target}: unreadable checkpoint ({err}); move it away to start over"
        ) from err
    if not isinstance(document, dict) or document.get("format") != FORMAT_VERSION:
        raise CheckpointError(
            f"{target}: checkpoint format not understood; move it away to start over"
        )
    return document["state"]
