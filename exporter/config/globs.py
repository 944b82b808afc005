"""Whether a source path or glob could match a file inside a folder (``state_dir``), judged
as ``glob`` matches, whatever names the folder holds."""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

_WILDCARD = re.compile("[*?[]")  # what glob treats as magic in a name


def could_match_inside(pattern: str, directory: Path) -> bool:
    """Whether the source path or glob ``pattern`` could match a path inside
    ``directory`` (at any depth, whatever the names there): glob's rules applied name by
    name (``*``, ``?`` and ``[...]`` within one name, ``**`` across any number of names, a
    wildcard never matching a leading dot), after resolving ``..`` and symlinks in the
    part of each path before its first wildcard."""
    parts = _resolved_parts(pattern)
    inside = Path(os.path.realpath(directory)).parts  # names, not patterns
    states = _past_double_stars({0}, parts)
    for name in inside:
        following: set[int] = set()
        for index in states:
            if index == len(parts):
                continue
            if parts[index] == "**":
                if not name.startswith("."):
                    following.add(index)
            elif _name_matches(name, parts[index]):
                following.add(index + 1)
        states = _past_double_stars(following, parts)
        if not states:
            return False
    # Inside the directory: any pattern name left can match some name there.
    return any(index < len(parts) for index in states)


def _past_double_stars(states: set[int], parts: list[str]) -> set[int]:
    """The states reachable by letting each ``**`` match no name at all."""
    result = set(states)
    todo = list(states)
    while todo:
        index = todo.pop()
        if index < len(parts) and parts[index] == "**" and index + 1 not in result:
            result.add(index + 1)
            todo.append(index + 1)
    return result


def _name_matches(name: str, pattern: str) -> bool:
    if not _is_pattern(pattern):
        return name == pattern
    if name.startswith(".") and not pattern.startswith("."):
        return False
    return fnmatch.fnmatchcase(name, pattern)


def _resolved_parts(path: str) -> list[str]:
    """The names along an absolute path or glob, with ``.``/``..`` and the symlinks of
    its literal beginning resolved (a glob's wildcard names kept as written)."""
    parts = Path(os.path.normpath(path)).parts
    literal = 0
    while literal < len(parts) and not _is_pattern(parts[literal]):
        literal += 1
    head = Path(os.path.realpath(Path(*parts[:literal]))) if literal else Path.cwd()
    return [*head.parts, *parts[literal:]]


def _is_pattern(name: str) -> bool:
    return _WILDCARD.search(name) is not None
