r"""Where a chunk's lines begin and end, found with numpy over its raw bytes.

A line is the bytes up to and including ``\n`` (bytes after the last one count as a line
of their own); a ``\r`` right before the ``\n`` is part of the line ending, a ``\r``
anywhere else is an ordinary character and ends nothing. A *blank* line (nothing, or only
``\r``, before the ``\n``) is no line at all: it is never counted.
"""

from __future__ import annotations

import numpy as np

NEWLINE, QUOTE, COMMA, CR = 10, 34, 44, 13
BOM = b"\xef\xbb\xbf"


def line_bounds(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each line's first byte, the end of its content (before ``\\r\\n`` or ``\\n``) and
    the position of its ``\\n``; ``arr`` ends in ``\\n``."""
    ends = np.flatnonzero(arr == NEWLINE)
    starts = np.empty_like(ends)
    starts[:1] = 0
    starts[1:] = ends[:-1] + 1
    crlf = (ends > starts) & (arr[ends - 1] == CR)
    return starts, ends - crlf, ends


def count_byte(data: bytes, byte: int) -> int:
    """``data.count(bytes([byte]))``, a few times faster on a chunk (SIMD compare)."""
    return int(np.count_nonzero(np.frombuffer(data, dtype=np.uint8) == byte))


def line_count(data: bytes) -> int:
    """Lines in ``data``, blank ones not counted (numpy: a few times faster on a chunk
    than searching the bytes for blank lines)."""
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(arr == NEWLINE)
    lengths = np.diff(ends, prepend=-1)  # with the \n
    blank = (lengths == 1) | ((lengths == 2) & (arr[ends - 1] == CR))
    tail = data[ends[-1] + 1 :] if len(ends) else data  # a last line without \n
    return len(ends) - int(np.count_nonzero(blank)) + int(tail not in (b"", b"\r"))


def physical_lines(data: bytes) -> list[bytes]:
    """``data`` split after each ``\\n`` (a lone ``\\r`` ends nothing)."""
    lines = data.split(b"\n")
    last = lines.pop()
    out = [line + b"\n" for line in lines]
    if last:
        out.append(last)
    return out


def is_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
