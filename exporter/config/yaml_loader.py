"""Reads a config file into plain data, safely and within bounds: the file's size, its YAML's
nesting depth, its values once aliases are expanded, the digits of an integer, and no key
written twice in one mapping. Any of these, or a YAML syntax error, is one ConfigError line."""

from __future__ import annotations

from pathlib import Path

import yaml

from exporter.config.limits import (
    MAX_CONFIG_BYTES,
    MAX_INT_DIGITS,
    MAX_YAML_DEPTH,
    MAX_YAML_MESSAGE,
    MAX_YAML_NODES,
)
from exporter.config.problems import ConfigError
from exporter.config.quoting import cut


def read_yaml(path: Path) -> object:
    """The plain data in the YAML file at ``path`` (as ``yaml.safe_load``, within bounds)."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(
                [f"{path}: config file larger than {MAX_CONFIG_BYTES:,} bytes (1 MiB)"]
            )
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: config file not found"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([f"{path}: cannot read config file: {err}"]) from None
    try:
        return yaml.load(text, Loader=BoundedLoader)  # plain data only, as safe_load
    except (yaml.YAMLError, RecursionError) as err:
        message = " ".join(str(err).split()).replace(' in "<unicode string>",', " at")
        if len(message) > MAX_YAML_MESSAGE:
            message = message[:MAX_YAML_MESSAGE] + "..."
        raise ConfigError([f"{path}: invalid YAML: {message}"]) from None


class _BoundedComposer(yaml.composer.Composer):
    """Composes YAML events into nodes, refusing a document nested deeper than
    ``MAX_YAML_DEPTH`` (yaml's own recursion would end in a RecursionError) and one whose
    aliases expand to more than ``MAX_YAML_NODES`` nodes (a "billion laughs" bomb: nine
    aliases of nine aliases of ... nine strings).

    Aliases stay shared objects, so a legitimate ``&defaults`` costs nothing; they are
    counted as the whole tree they name because the validator and its messages may walk
    it. The count is kept while composing: a node's expanded size is the growth of the
    running total while it is composed, remembered per anchor for its aliases."""

    def __init__(self) -> None:
        super().__init__()
        self._depth = 0
        self._expanded = 0
        self._anchor_sizes: dict[str, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            # An alias of a collection still being composed (a recursive alias) counts 1.
            self._count(self._anchor_sizes.get(str(event.anchor), 1), event)
            return node
        if self._depth >= MAX_YAML_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_YAML_DEPTH} levels", event.start_mark
            )
        self._depth += 1
        start = self._expanded
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._count(1, event)
        if event.anchor is not None:
            self._anchor_sizes[event.anchor] = self._expanded - start
        return node

    def _count(self, nodes: int, event: yaml.Event) -> None:
        self._expanded += nodes
        if self._expanded > MAX_YAML_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"more than {MAX_YAML_NODES:,} values once aliases are expanded",
                event.start_mark,
            )


class _BoundedConstructor(yaml.constructor.SafeConstructor):
    """``SafeConstructor`` (plain data, never code) refusing an integer longer than
    ``MAX_INT_DIGITS`` digits, which Python would refuse to convert past 4,300 digits
    (a ValueError) or to compare with a float past 1e308 (an OverflowError)."""

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        if len(str(node.value)) > MAX_INT_DIGITS:
            raise yaml.constructor.ConstructorError(
                None, None, f"an integer longer than {MAX_INT_DIGITS} digits", node.start_mark
            )
        return super().construct_yaml_int(node)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        """A key written twice in one mapping is an error (yaml keeps the last one
        silently; the first was usually meant). Keys brought in by a ``<<`` merge may be
        overridden, as YAML intends."""
        seen: set[str] = set()
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            if key.value in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f'duplicate key "{cut(key.value)}"', key.start_mark
                )
            seen.add(key.value)
        return super().construct_mapping(node, deep=deep)


_BoundedConstructor.add_constructor("tag:yaml.org,2002:int", _BoundedConstructor.construct_yaml_int)


class BoundedPyLoader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    _BoundedComposer,
    _BoundedConstructor,
    yaml.resolver.Resolver,
):
    """``yaml.SafeLoader`` with the bounds above, all in Python."""

    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _BoundedConstructor.__init__(self)
        yaml.resolver.Resolver.__init__(self)


BoundedLoader: type = BoundedPyLoader
if yaml.__with_libyaml__:  # libyaml's events, composed in Python: 1 MiB in 5 s, not 19 s

    class _BoundedCLoader(
        _BoundedComposer,  # before CParser, whose own composer would skip the bounds
        yaml.cyaml.CParser,
        _BoundedConstructor,
        yaml.resolver.Resolver,
    ):
        """``yaml.CSafeLoader`` with the bounds above."""

        def __init__(self, stream: str) -> None:
            yaml.cyaml.CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            _BoundedConstructor.__init__(self)
            yaml.resolver.Resolver.__init__(self)

    BoundedLoader = _BoundedCLoader
