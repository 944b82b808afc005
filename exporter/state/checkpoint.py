"""Atomic checkpoints: tailer offsets, aggregates and pending joins in one file.

Written as temp file, fsync, rename over the old one, fsync the directory, so after a
crash at any moment the file on disk is either the old checkpoint or the new one, never a
mix; offsets and aggregates therefore always describe the same set of consumed rows.

The checkpoint is data, never code (SPEC 8). Rules of the reader:

- Only a regular file at the checkpoint path is read: a directory, FIFO, socket, device
  or symbolic link is refused before a byte is read (lstat, then open with O_NOFOLLOW and
  O_NONBLOCK and fstat again), so a FIFO cannot hang the start-up.
- At most ``MAX_FILE_BYTES`` are read; the lengths in the header must add up to the
  file's size exactly, and nothing is decoded before the SHA-256 of the whole file
  matches: a flipped bit or a truncated file is refused, never read as another state.
- Decoding builds only dicts, lists, tuples, str, int, float, bool, None, bytes, numpy
  arrays and numpy scalars. Nothing is looked up by name and no constructor is called with
  data from the file, so a hostile file can at worst describe a wrong state; the engine
  refuses a state it cannot apply.
- Every refusal is a ``CheckpointError``: one line naming the file and what to do (the
  CLI prints it and exits 2).
- Older versions wrote ``checkpoint.pickle``, a pickle: it is never opened (unpickling
  runs code). It is ignored with a warning, and the logs are read again from the start.

File layout (version 2; integers little-endian)::

    offset  size  field
    0       8     magic b"MLMXCKPT"
    8       4     format version (uint32) = 2
    12      4     flags (uint32) = 0
    16      8     S: structure length in bytes (uint64)
    24      8     D: data length in bytes (uint64)
    32      32    SHA-256 of bytes [0, 32) followed by bytes [64, 64 + S + D)
    64      S     structure: ASCII JSON (strict: no NaN or Infinity literals)
    64 + S  D     data: array, numpy scalar and bytes contents, back to back

The structure is the state as JSON in which str, int, finite float, bool and null stand
for themselves and everything else is a list whose first element is a tag:

    ["d", {key: value, ...}]           dict whose keys are all str
    ["m", [key, value, key, value...]] any other dict (keys encoded like values)
    ["l", value, ...]                  list
    ["t", value, ...]                  tuple
    ["n", "7ff0000000000000"]          float that is not finite: its IEEE 754 bits (hex)
    ["a", dtype, [shape], offset]      numpy array: C-order bytes at data[offset:]
    ["o", [shape], [value, ...]]       numpy array of dtype object: its elements, C order
    ["s", dtype, offset]               numpy scalar: its bytes at data[offset:]
    ["b", offset, length]              bytes

``dtype`` is a little-endian numpy type string: ``|b1``, ``|i1``, ``<i2/4/8``, ``|u1``,
``<u2/4/8``, ``<f2/4/8/16``, ``<c8/16/32``, ``<Un`` or ``|Sn``; never an object or
structured dtype. Dict order, int/float/bool types, -0.0, NaN payloads and every array's
dtype and shape come back exactly (arrays in native byte order, C-contiguous, writable).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import stat
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 2
FILE_NAME = "checkpoint.bin"
OLD_PICKLE_NAME = "checkpoint.pickle"  # written by versions before format 2: never opened
MAGIC = b"MLMXCKPT"
MAX_FILE_BYTES = 4 << 30  # refused above this, on write as on read

_PREFIX = struct.Struct("<8sIIQQ")  # magic, version, flags, structure length, data length
_HEADER_BYTES = _PREFIX.size + 32  # then the SHA-256
_DTYPE = re.compile(r"\|b1|\|[iu]1|<[iu][248]|<f(2|4|8|16)|<c(8|16|32)|<U\d{1,9}|\|S\d{1,9}")
_ARRAY_KINDS = frozenset("biufcUS")
_NATIVE_LITTLE = sys.byteorder == "little"
_AS_IS = frozenset((str, int, bool, type(None)))  # JSON values that are themselves

log = logging.getLogger("ml_model_exporter")


class CheckpointError(Exception):
    pass


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
    payload = encode_state(state)
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


def encode_state(state: Any) -> bytearray:
    """The whole checkpoint file for ``state`` (see the layout above). TypeError names a
    value the format cannot hold."""
    encoder = _Encoder()
    tree = encoder.value(state)
    structure = json.dumps(tree, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    parts: list[Any] = [bytes(_HEADER_BYTES), structure.encode("ascii"), *encoder.buffers]
    payload = bytearray().join(parts)
    payload[: _PREFIX.size] = _PREFIX.pack(MAGIC, FORMAT_VERSION, 0, len(parts[1]), encoder.size)
    payload[_PREFIX.size : _HEADER_BYTES] = _digest(payload)
    return payload


def _digest(payload: bytes | bytearray | memoryview) -> bytes:
    view = memoryview(payload)
    hasher = hashlib.sha256(view[: _PREFIX.size])
    hasher.update(view[_HEADER_BYTES:])
    return hasher.digest()


class _Encoder:
    """Turns a value tree into the JSON structure; array contents go to ``buffers``."""

    def __init__(self) -> None:
        self.buffers: list[Any] = []
        self.size = 0

    def _data(self, buffer: Any, nbytes: int) -> int:
        offset = self.size
        if nbytes:
            self.buffers.append(buffer)
            self.size += nbytes
        return offset

    def value(self, value: Any) -> Any:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return value
        if kind is float:
            return value if math.isfinite(value) else ["n", struct.pack(">d", value).hex()]
        if kind is dict:
            if all(type(key) is str for key in value):
                return ["d", {key: self.value(item) for key, item in value.items()}]
            pairs = []
            for key, item in value.items():
                pairs.append(self.value(key))
                pairs.append(self.value(item))
            return ["m", pairs]
        if kind is list:
            if all(type(item) in _AS_IS for item in value):  # ids, labels: no need to look
                return ["l", *value]
            return ["l", *[self.value(item) for item in value]]
        if kind is tuple:
            return ["t", *[self.value(item) for item in value]]
        if kind is np.ndarray:
            return self._array(value)
        if isinstance(value, (dict, list, tuple)):
            # a defaultdict, Counter or namedtuple: read back as the plain dict/list/tuple
            plain = dict if isinstance(value, dict) else list if isinstance(value, list) else tuple
            return self.value(plain(value))
        return self._scalar(value)

    def _scalar(self, value: Any) -> Any:
        """A numpy scalar, bytes or str subclass; the values an object array may hold."""
        kind = type(value)
        if kind is str or kind is int or kind is float or kind is bool or value is None:
            return self.value(value)
        if isinstance(value, np.generic) and value.dtype.kind in "biufc":
            scalar = np.asarray(value)
            descr = _stored_dtype(scalar.dtype)
            if descr != scalar.dtype.str:
                scalar = scalar.astype(descr)
            return ["s", descr, self._data(scalar, scalar.nbytes)]
        if isinstance(value, str):  # np.str_ and other str subclasses: their text
            return str(value)
        if isinstance(value, bytes):  # np.bytes_ too
            data = bytes(value)
            return ["b", self._data(data, len(data)), len(data)]
        raise TypeError(f"a checkpoint cannot hold a {kind.__module__}.{kind.__qualname__}")

    def _array(self, array: np.ndarray) -> list[Any]:
        dtype = array.dtype
        if dtype.kind == "O":
            items = [self._scalar(item) for item in array.reshape(-1).tolist()]
            return ["o", list(array.shape), items]
        descr = _STORED_AS.get(dtype) or _stored_dtype(dtype)
        if descr != dtype.str:
            array = array.astype(descr)
        elif not array.flags.c_contiguous:
            array = np.array(array, order="C")
        return ["a", descr, list(array.shape), self._data(array, array.nbytes)]


_STORED_AS: dict[np.dtype, str] = {}  # dtypes seen: their type string in the file


def _stored_dtype(dtype: np.dtype) -> str:
    """The little-endian type string ``dtype``'s values are stored as."""
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.subdtype:
        raise TypeError(f"a checkpoint cannot hold a numpy array of dtype {dtype}")
    big = dtype.byteorder == ">" or (dtype.byteorder == "=" and not _NATIVE_LITTLE)
    stored = (dtype.newbyteorder("<") if big else dtype).str
    if len(_STORED_AS) < 256:
        _STORED_AS[dtype] = stored
    return stored


# --- read ----------------------------------------------------------------------------
def load_checkpoint(state_dir: Path) -> dict[str, Any] | None:
    """The last checkpoint's state, or None when there is none."""
    target = state_dir / FILE_NAME
    payload = _read_regular_file(target)
    _warn_about_pickle(state_dir, fresh=payload is None)
    if payload is None:
        return None
    try:
        state = decode_state(payload)
    except CheckpointError as err:  # the reason alone: say which file, and what to do
        raise checkpoint_not_understood(state_dir, str(err)) from None
    if not isinstance(state, dict):
        raise checkpoint_not_understood(state_dir, "its state is not a mapping")
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


def decode_state(payload: bytes | bytearray | memoryview) -> Any:
    """The state in a whole checkpoint file (see the layout above).

    Raises CheckpointError, saying why, for anything else: another format, a file that
    is truncated, extended or corrupt, or a structure this format does not produce."""
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
    if version != FORMAT_VERSION:
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
    if flags != 0:
        raise CheckpointError(f"unknown flags {flags:#x}")
    start = _HEADER_BYTES + structure_bytes
    try:
        tree = json.loads(str(view[_HEADER_BYTES:start], "ascii"), parse_constant=_no_constant)
        decoder = _Decoder(view[start:])
        state = decoder.value(tree)
        if decoder.used != data_bytes:
            raise CheckpointError(f"{data_bytes - decoder.used} bytes of data belong to no value")
        return state
    except CheckpointError:
        raise
    except Exception as err:  # a structure the writer never produces
        reason = f"{type(err).__name__}: {err}"
        raise CheckpointError(f"structure not understood ({_brief(reason)})") from None


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a value of this format")


class _Decoder:
    """Builds the value tree from the JSON structure and the data section.

    Values take their bytes from the data section in the order the writer put them
    there, back to back, so no two share bytes and all the arrays together take no more
    memory than the file."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.used = 0  # bytes of data taken so far

    def value(self, node: Any) -> Any:
        kind = type(node)
        if kind is str or kind is int or kind is float or kind is bool or node is None:
            return node
        if kind is not list or not node or type(node[0]) is not str:
            raise CheckpointError(f"unexpected {_brief(node)} in the structure")
        tag = node[0]
        if tag == "d" and len(node) == 2 and type(node[1]) is dict:
            return {key: self.value(item) for key, item in node[1].items()}
        if tag == "l":
            items = node[1:]
            if all(type(item) in _AS_IS for item in items):
                return items
            return [self.value(item) for item in items]
        if tag == "t":
            return tuple(self.value(item) for item in node[1:])
        if tag == "m" and len(node) == 2 and type(node[1]) is list and len(node[1]) % 2 == 0:
            pairs = node[1]
            return {self.value(pairs[i]): self.value(pairs[i + 1]) for i in range(0, len(pairs), 2)}
        if tag == "a" and len(node) == 4:
            return self._array(node[1], node[2], node[3])
        if tag == "o" and len(node) == 3:
            return self._objects(node[1], node[2])
        if tag == "s" and len(node) == 3:
            return self._array(node[1], [], node[2])[()]
        if tag == "b" and len(node) == 3:
            offset, length = _count(node[1]), _count(node[2])
            self._take(offset, length)
            return bytes(self.data[offset : offset + length])
        if tag == "n" and len(node) == 2 and type(node[1]) is str and len(node[1]) == 16:
            number = struct.unpack(">d", bytes.fromhex(node[1]))[0]
            if math.isfinite(number):
                raise CheckpointError("a finite float tagged as not finite")
            return number
        raise CheckpointError(f"unknown node {_brief(node)} in the structure")

    def _take(self, offset: int, length: int) -> None:
        if offset != self.used:
            raise CheckpointError(f"data at {offset} where {self.used} comes next")
        if offset + length > len(self.data):
            raise CheckpointError("an array reaches past the end of the data")
        self.used += length

    def _array(self, descr: Any, shape: Any, offset: Any) -> np.ndarray:
        dtype = _DTYPES.get(descr) if type(descr) is str else None
        if dtype is None:
            if type(descr) is not str or not _DTYPE.fullmatch(descr):
                raise CheckpointError(f"dtype {_brief(descr)} not allowed")
            dtype = np.dtype(descr)
            if len(_DTYPES) < 256:
                _DTYPES[descr] = dtype
        dims = _shape(shape)
        count = math.prod(dims)
        start = _count(offset)
        self._take(start, count * dtype.itemsize)
        if count == 0 or dtype.itemsize == 0:
            array = np.zeros(dims, dtype=dtype)
        else:
            array = np.frombuffer(self.data, dtype=dtype, count=count, offset=start)
            array = array.reshape(dims).copy()
        if not dtype.isnative:
            array = array.astype(dtype.newbyteorder("="))
        return array

    def _objects(self, shape: Any, items: Any) -> np.ndarray:
        dims = _shape(shape)
        if type(items) is not list or len(items) != math.prod(dims):
            raise CheckpointError("an object array's elements do not match its shape")
        values = [self.value(item) for item in items]
        if not all(isinstance(value, _OBJECT_ITEMS) for value in values):
            raise CheckpointError("an object array holds a container")
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(dims)


_DTYPES: dict[str, np.dtype] = {}  # type strings seen and allowed: their dtype
_OBJECT_ITEMS = (str, int, float, bool, type(None), bytes, np.generic)


def _count(node: Any) -> int:
    if type(node) is not int or node < 0:
        raise CheckpointError(f"{_brief(node)} is not a count")
    return node


def _shape(node: Any) -> tuple[int, ...]:
    if type(node) is not list or len(node) > 32:
        raise CheckpointError(f"{_brief(node)} is not a shape")
    for size in node:
        if type(size) is not int or size < 0:
            raise CheckpointError(f"{_brief(node)} is not a shape")
    return tuple(node)


def _brief(value: Any) -> str:
    """``value`` for a one-line message: at most 60 characters of its repr."""
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."
