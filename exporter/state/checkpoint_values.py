"""The value encoding inside a checkpoint file: a tree of plain data as a JSON structure
plus a data section holding the bytes of its arrays, numpy scalars and bytes.

In the structure str, int, finite float, bool and null stand for themselves and
everything else is a list whose first element is a tag::

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

Decoding builds only dicts, lists, tuples, str, int, float, bool, None, bytes, numpy
arrays and numpy scalars. Nothing is looked up by name and no constructor is called with
data from the file, so a hostile file can at worst describe a wrong state.
"""

from __future__ import annotations

import json
import math
import re
import struct
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

_DTYPE = re.compile(r"\|b1|\|[iu]1|<[iu][248]|<f(2|4|8|16)|<c(8|16|32)|<U\d{1,9}|\|S\d{1,9}")
_ARRAY_KINDS = frozenset("biufcUS")
_NATIVE_LITTLE = sys.byteorder == "little"
_AS_IS = frozenset((str, int, bool, type(None)))  # JSON values that are themselves
_OBJECT_ITEMS = (str, int, float, bool, type(None), bytes, np.generic)


class ValueNotUnderstood(ValueError):
    """A structure or data section the encoder never produces; says what is wrong."""


# --- encode --------------------------------------------------------------------------
def encode_values(state: Any) -> tuple[bytes, list[Any], int]:
    """The ASCII JSON structure of ``state``, the buffers of its data section in order,
    and their total size. TypeError names a value the encoding cannot hold."""
    encoder = _Encoder()
    tree = encoder.value(state)
    structure = json.dumps(tree, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return structure.encode("ascii"), encoder.buffers, encoder.size


class _Encoder:
    """Turns a value tree into the JSON structure; array contents go to ``buffers``."""

    def __init__(self) -> None:
        self.buffers: list[Any] = []
        self.size = 0
        self._by_type: dict[type, Callable[[Any], Any]] = {
            str: _itself,
            int: _itself,
            bool: _itself,
            type(None): _itself,
            float: _float,
            dict: self._dict,
            list: self._list,
            tuple: lambda value: ["t", *[self.value(item) for item in value]],
            np.ndarray: self._array,
        }

    def _data(self, buffer: Any, nbytes: int) -> int:
        offset = self.size
        if nbytes:
            self.buffers.append(buffer)
            self.size += nbytes
        return offset

    def value(self, value: Any) -> Any:
        encode = self._by_type.get(type(value))
        if encode is not None:
            return encode(value)
        if isinstance(value, (dict, list, tuple)):
            # a defaultdict, Counter or namedtuple: read back as the plain dict/list/tuple
            plain = dict if isinstance(value, dict) else list if isinstance(value, list) else tuple
            return self.value(plain(value))
        return self._scalar(value)

    def _dict(self, value: dict) -> list[Any]:
        if all(type(key) is str for key in value):
            return ["d", {key: self.value(item) for key, item in value.items()}]
        pairs = []
        for key, item in value.items():
            pairs.append(self.value(key))
            pairs.append(self.value(item))
        return ["m", pairs]

    def _list(self, value: list) -> list[Any]:
        if all(type(item) in _AS_IS for item in value):  # ids, labels: no need to look
            return ["l", *value]
        return ["l", *[self.value(item) for item in value]]

    def _scalar(self, value: Any) -> Any:
        """A numpy scalar, bytes or str subclass; the values an object array may hold."""
        kind = type(value)
        if kind in _AS_IS or kind is float:
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


def _itself(value: Any) -> Any:
    return value


def _float(value: float) -> Any:
    return value if math.isfinite(value) else ["n", struct.pack(">d", value).hex()]


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


# --- decode --------------------------------------------------------------------------
def decode_values(structure: memoryview, data: memoryview) -> Any:
    """The value tree of a structure and its data section (`encode_values`); anything the
    encoder never produces is a ValueNotUnderstood saying what."""
    try:
        tree = json.loads(str(structure, "ascii"), parse_constant=_no_constant)
        decoder = _Decoder(data)
        state = decoder.value(tree)
    except ValueNotUnderstood:
        raise
    except Exception as err:  # a structure the writer never produces
        reason = f"{type(err).__name__}: {err}"
        raise ValueNotUnderstood(f"structure not understood ({_brief(reason)})") from None
    if decoder.used != len(data):
        raise ValueNotUnderstood(f"{len(data) - decoder.used} bytes of data belong to no value")
    return state


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
        # tag -> (how many elements the node has, None: any; what builds its value)
        self._by_tag: dict[str, tuple[int | None, Callable[[list], Any]]] = {
            "d": (2, self._dict),
            "l": (None, self._list),
            "t": (None, lambda node: tuple(self.value(item) for item in node[1:])),
            "m": (2, self._pairs),
            "a": (4, lambda node: self._array(node[1], node[2], node[3])),
            "o": (3, lambda node: self._objects(node[1], node[2])),
            "s": (3, lambda node: self._array(node[1], [], node[2])[()]),
            "b": (3, self._bytes),
            "n": (2, _not_finite),
        }

    def value(self, node: Any) -> Any:
        kind = type(node)
        if kind in _AS_IS or kind is float:
            return node
        if kind is not list or not node or type(node[0]) is not str:
            raise ValueNotUnderstood(f"unexpected {_brief(node)} in the structure")
        size, build = self._by_tag.get(node[0], (-1, None))
        if build is None or (size is not None and len(node) != size):
            raise ValueNotUnderstood(f"unknown node {_brief(node)} in the structure")
        return build(node)

    def _dict(self, node: list) -> dict:
        if type(node[1]) is not dict:
            raise ValueNotUnderstood(f"unknown node {_brief(node)} in the structure")
        return {key: self.value(item) for key, item in node[1].items()}

    def _list(self, node: list) -> list:
        items = node[1:]
        if all(type(item) in _AS_IS for item in items):
            return items
        return [self.value(item) for item in items]

    def _pairs(self, node: list) -> dict:
        pairs = node[1]
        if type(pairs) is not list or len(pairs) % 2:
            raise ValueNotUnderstood(f"unknown node {_brief(node)} in the structure")
        return {self.value(pairs[i]): self.value(pairs[i + 1]) for i in range(0, len(pairs), 2)}

    def _bytes(self, node: list) -> bytes:
        offset, length = _count(node[1]), _count(node[2])
        self._take(offset, length)
        return bytes(self.data[offset : offset + length])

    def _take(self, offset: int, length: int) -> None:
        if offset != self.used:
            raise ValueNotUnderstood(f"data at {offset} where {self.used} comes next")
        if offset + length > len(self.data):
            raise ValueNotUnderstood("an array reaches past the end of the data")
        self.used += length

    def _array(self, descr: Any, shape: Any, offset: Any) -> np.ndarray:
        dtype = _DTYPES.get(descr) if type(descr) is str else None
        if dtype is None:
            if type(descr) is not str or not _DTYPE.fullmatch(descr):
                raise ValueNotUnderstood(f"dtype {_brief(descr)} not allowed")
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
            raise ValueNotUnderstood("an object array's elements do not match its shape")
        values = [self.value(item) for item in items]
        if not all(isinstance(value, _OBJECT_ITEMS) for value in values):
            raise ValueNotUnderstood("an object array holds a container")
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(dims)


_DTYPES: dict[str, np.dtype] = {}  # type strings seen and allowed: their dtype


def _not_finite(node: list) -> float:
    bits = node[1]
    if type(bits) is not str or len(bits) != 16:
        raise ValueNotUnderstood(f"unknown node {_brief(node)} in the structure")
    number = struct.unpack(">d", bytes.fromhex(bits))[0]
    if math.isfinite(number):
        raise ValueNotUnderstood("a finite float tagged as not finite")
    return number


def _count(node: Any) -> int:
    if type(node) is not int or node < 0:
        raise ValueNotUnderstood(f"{_brief(node)} is not a count")
    return node


def _shape(node: Any) -> tuple[int, ...]:
    if type(node) is not list or len(node) > 32:
        raise ValueNotUnderstood(f"{_brief(node)} is not a shape")
    for size in node:
        if type(size) is not int or size < 0:
            raise ValueNotUnderstood(f"{_brief(node)} is not a shape")
    return tuple(node)


def _brief(value: Any) -> str:
    """``value`` for a one-line message: at most 60 characters of its repr."""
    text = value if isinstance(value, str) else repr(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 60 else text[:57] + "..."
