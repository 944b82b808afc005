"""Atomic checkpoints: tailer offsets, window counts and pending joins in one file.

Written as temp file, fsync, rename over the old one, fsync the directory, so after a
crash at any moment the file on disk is either the old checkpoint or the new one, never a
mix; offsets and counts therefore always describe the same set of consumed rows.

The checkpoint is data, never code. Rules of the reader:

- Only a regular file at the checkpoint path is read: a directory, FIFO, socket, device
  or symbolic link is refused before a byte is read (lstat, then open with O_NOFOLLOW and
  O_NONBLOCK and fstat again), so a FIFO cannot hang the start-up.
- At most ``MAX_FILE_BYTES`` are read; the lengths in the header must add up to the
  file's size exactly, and nothing is decoded before the SHA-256 of the whole file
  matches: a flipped bit or a truncated file is refused, never read as another state.
- The state is decoded as plain data only (`exporter.state.checkpoint_values`); the
  engine refuses a state it cannot apply.
- Every refusal is a ``CheckpointError``: one line naming the file and what to do (the
  CLI prints it and exits 2).
- A file of an older format (see ``FORMAT_VERSION``) holds a state this version lays out
  differently: it is ignored with a warning and the logs are read again from the start,
  as after a change of configuration.
- Older versions still wrote ``checkpoint.pickle``, a pickle: it is never opened
  (unpickling runs code). It is ignored with a warning, and the logs are read again
  from the start.

File layout (integers little-endian)::

    offset  size  field
    0       8     magic b"MLMXCKPT"
    8       4     format version (uint32) = FORMAT_VERSION
    12      4     flags (uint32) = 0
    16      8     S: structure length in bytes (uint64)
    24      8     D: data length in bytes (uint64)
    32      32    SHA-256 of bytes [0, 32) followed by bytes [64, 64 + S + D)
    64      S     structure: ASCII JSON (strict: no NaN or Infinity literals)
    64 + S  D     data: array, numpy scalar and bytes contents, back to back

The structure and data hold the state as `exporter.state.checkpoint_values` encodes it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import struct
from pathlib import Path
from typing import Any

from exporter.state.checkpoint_values import ValueNotUnderstood, decode_values, encode_values

# The version of the file's layout and of the state laid out in it. 2: the first binary
# format; 3: time buckets hold typed model-quality counts keyed by model-version slot and
# typed feature counts.
FORMAT_VERSION = 3
OLDER_FORMATS = frozenset({2})  # ignored with a warning: the logs are read again
FILE_NAME = "checkpoint.bin"
OLD_PICKLE_NAME = "checkpoint.pickle"  # written by versions before format 2: never opened
MAGIC = b"MLMXCKPT"
MAX_FILE_BYTES = 4 << 30  # refused above this, on write as on read

_PREFIX = struct.Struct("<8sIIQQ")  # magic, version, flags, structure length, data length
_HEADER_BYTES = _PREFIX.size + 32  # then the SHA-256

log = logging.getLogger("ml_model_exporter")


class CheckpointError(Exception):
    pass


class _OlderFormat(Exception):
    """A whole, intact file of an older format."""


def checkpoint_not_understood(state_dir: Path, problem: str) -> CheckpointError:
    """The error for a checkpoint file that cannot be used as it is: one line."""
    problem = " ".join(problem.split())
    if len(problem) > 300:
        problem = problem[:297] + "..."
    return CheckpointError(
        f"checkpoint {state_dir / FILE_NAME}: {problem}; move it away to start over "
        "(the logs are then read again from the start)"
    )


# --- write ---------------------------------------------------------------------------
def save_checkpoint(state_dir: Path, state: dict[str, Any]) -> int:
    """Write ``state`` atomically; return the number of bytes written."""
    payload = _encode_file(state)
    if len(payload) > MAX_FILE_BYTES:
        raise CheckpointError(
            f"the state takes {len(payload)} bytes, more than a checkpoint may ({MAX_FILE_BYTES})"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    target = state_dir / FILE_NAME
    temporary = state_dir / f".{FILE_NAME}.tmp"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
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


def _encode_file(state: Any) -> bytearray:
    """The whole checkpoint file for ``state`` (see the layout above). TypeError names a
    value the format cannot hold."""
    structure, buffers, data_bytes = encode_values(state)
    payload = bytearray().join([bytes(_HEADER_BYTES), structure, *buffers])
    payload[: _PREFIX.size] = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0, len(structure), data_bytes)
    payload[_PREFIX.size : _HEADER_BYTES] = _digest(payload)
    return payload


def _digest(payload: bytes | bytearray | memoryview) -> bytes:
    view = memoryview(payload)
    hasher = hashlib.sha256(view[: _PREFIX.size])
    hasher.update(view[_HEADER_BYTES:])
    return hasher.digest()


# --- read ----------------------------------------------------------------------------
def load_checkpoint(state_dir: Path) -> dict[str, Any] | None:
    """The last checkpoint's state, or None when there is none (or only one of an older
    format, which a warning names)."""
    target = state_dir / FILE_NAME
    payload = _read_regular_file(target)
    state = None
    if payload is not None:
        try:
            state = _decode_file(payload)
        except _OlderFormat as old:
            log.warning(
                "%s was written by an older version (format %s) whose state this version "
                "does not read; re-reading the logs from the start",
                target,
                old,
            )
        except CheckpointError as err:  # the reason alone: say which file, and what to do
            raise checkpoint_not_understood(state_dir, str(err)) from None
        else:
            if not isinstance(state, dict):
                raise checkpoint_not_understood(state_dir, "its state is not a mapping")
    _warn_about_pickle(state_dir, fresh=state is None)
    return state


def _warn_about_pickle(state_dir: Path, *, fresh: bool) -> None:
    old = state_dir / OLD_PICKLE_NAME
    if not os.path.lexists(old):
        return
    log.warning(
        "%s was written by an older version in an unsafe format (pickle) and is never "
        "read; %s. Delete it",
        old,
        "the logs are read again from the start" if fresh else f"{FILE_NAME} is used instead",
    )


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISLNK, "a symbolic link"),
)


def _refuse_unless_regular(state_dir: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = next((name for test, name in _KINDS if test(mode)), "an unknown kind of file")
    raise checkpoint_not_understood(state_dir, f"{kind}, not a regular file")


def _read_regular_file(target: Path) -> bytearray | None:
    """The bytes of the regular file ``target``; None when there is none."""
    state_dir = target.parent
    try:
        _refuse_unless_regular(state_dir, os.lstat(target).st_mode)
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(target, flags)
    except FileNotFoundError:
        return None
    except OSError as err:  # a path through a file, no permission, a link swapped in
        raise CheckpointError(
            f"state_dir: cannot read the checkpoint {target}: {err.strerror or err}"
        ) from None
    try:
        info = os.fstat(fd)
        _refuse_unless_regular(state_dir, info.st_mode)
        if info.st_size > MAX_FILE_BYTES:
            raise checkpoint_not_understood(
                state_dir, f"{info.st_size} bytes, more than a checkpoint may ({MAX_FILE_BYTES})"
            )
        payload = bytearray(info.st_size)
        view = memoryview(payload)
        got = 0
        while got < len(payload):
            count = os.readv(fd, [view[got:]])
            if count == 0:  # shorter than it was a moment ago: the length check refuses it
                del view
                del payload[got:]
                break
            got += count
        return payload
    except OSError as err:
        raise CheckpointError(
            f"state_dir: cannot read the checkpoint {target}: {err.strerror or err}"
        ) from None
    finally:
        os.close(fd)


def _decode_file(payload: bytes | bytearray | memoryview) -> Any:
    """The state in a whole checkpoint file (see the layout above).

    Raises CheckpointError, saying why, for anything else: another format, a file that
    is truncated, extended or corrupt, or a structure this format does not produce; and
    _OlderFormat for an intact file of an older format."""
    view = memoryview(payload)
    if len(view) < _HEADER_BYTES or bytes(view[:8]) != MAGIC:
        if bytes(view[:1]) == b"\x80" and bytes(view[1:2]) in (b"\x02", b"\x03", b"\x04", b"\x05"):
            raise CheckpointError(
                "a pickle, as older versions wrote, which is never loaded (unpickling can run code)"
            )
        if MAGIC.startswith(bytes(view[:8])):
            raise CheckpointError(f"truncated ({len(view)} bytes, shorter than its header)")
        raise CheckpointError("not a checkpoint file (no MLMXCKPT header)")
    _, version, flags, structure_bytes, data_bytes = _PREFIX.unpack_from(view)
    if version != FORMAT_VERSION and version not in OLDER_FORMATS:
        raise CheckpointError(
            f"format {version} not understood (this version reads format {FORMAT_VERSION}: "
            "the file is from a newer version, or corrupt)"
        )
    expected = _HEADER_BYTES + structure_bytes + data_bytes
    if expected != len(view):
        what = "truncated" if expected > len(view) else "longer than its header says"
        raise CheckpointError(f"{what} ({len(view)} bytes, {expected} expected)")
    if _digest(view) != bytes(view[_PREFIX.size : _HEADER_BYTES]):
        raise CheckpointError("checksum mismatch (the file is corrupt)")
    if version in OLDER_FORMATS:
        raise _OlderFormat(version)
    if flags != 0:
        raise CheckpointError(f"unknown flags {flags:#x}")
    start = _HEADER_BYTES + structure_bytes
    try:
        return decode_values(view[_HEADER_BYTES:start], view[start:])
    except ValueNotUnderstood as err:
        raise CheckpointError(str(err)) from None
