"""A YAML loader for files we do not trust, with every blow-up refused before it is built.

PyYAML's SafeLoader refuses arbitrary objects but not resource attacks: a 2 KB alias bomb
(anchors referencing anchors) expands to billions of nodes when validated, deep nesting
overflows the recursion limit, and a 5,000-digit integer trips Python's int conversion limit.
`BoundedLoader` checks each node while the document is composed, so none of that is ever
constructed, and says where the problem is as a dotted field path (`features.0.cardinality`).
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 12  # seed cards nest 3 deep (features -> item -> field)
MAX_INT_DIGITS = 18  # anything an int64 holds; larger is never a real count
INT_TAG = "tag:yaml.org,2002:int"
DOCUMENT = "(document)"  # the field name of a problem at the top level itself


class YamlLimitError(ValueError):
    """The document breaks a bound; `field` is the dotted path of the offending node."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"field {field!r}: {problem}")
        self.field, self.problem = field, problem


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader without anchors or aliases, duplicate keys, deep nesting or huge ints."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._path: list[str] = []
        self._depth = 0

    def _field(self) -> str:
        return ".".join(self._path) or DOCUMENT

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        named = parent is not None and index is not None  # a mapping value or sequence item
        if named:
            self._path.append(index.value if isinstance(index, yaml.ScalarNode) else str(index))
        self._depth += 1
        try:
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                raise YamlLimitError(self._field(), "YAML anchors and aliases are not allowed")
            if self._depth > MAX_DEPTH:
                raise YamlLimitError(self._field(), f"nested deeper than {MAX_DEPTH} levels")
            node = super().compose_node(parent, index)
            _check(node, self._field())
            return node
        finally:
            self._depth -= 1
            if named:
                self._path.pop()


def _check(node: yaml.Node, field: str) -> None:
    if isinstance(node, yaml.ScalarNode) and node.tag == INT_TAG:
        digits = sum(c.isalnum() for c in node.value)  # hex and octal digits count too
        if digits > MAX_INT_DIGITS:
            raise YamlLimitError(field, f"integer too large ({digits} digits)")
    elif isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    prefix = "" if field == DOCUMENT else f"{field}."
                    raise YamlLimitError(f"{prefix}{key.value}", "duplicate key")
                seen.add(key.value)


def load(text: str) -> Any:
    """Parse one YAML document; YamlLimitError for a bound, yaml.YAMLError for bad YAML."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
