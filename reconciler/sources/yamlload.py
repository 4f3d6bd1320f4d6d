"""Safe, bounded YAML parsing that keeps exact positions.

libyaml (PyYAML's C parser and composer) builds the node tree fast and with
line/column marks; we then build plain Python data ourselves so that every
limit is enforced where it happens: nesting depth, alias expansion (billion
laughs), duplicate keys, unsupported tags. Keys are always strings and
integers written with a leading zero (0644) stay text, so file modes survive
YAML 1.1's octal rule. Nodes are kept beside the data so a later validation
error can be mapped back to `line:column` (`locate`). Pure apart from
parsing the bytes it is given; called by `reconciler.sources.manifests`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.errors import Location, ManifestError

MAX_FILE_BYTES = 1024 * 1024
MAX_DEPTH = 64
MAX_NODES = 100_000

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_constructor = yaml.constructor.SafeConstructor()


class YamlLimitError(Exception):
    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node


@dataclass
class YamlDoc:
    """One parsed document: its data, its node tree and its index in the file."""

    data: Any
    node: Node
    index: int


def _mark(path: str, node: Node) -> Location:
    return Location(path, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns one document's node tree into data, enforcing the limits."""

    def __init__(self) -> None:
        self.expanded = 0
        self.memo: dict[int, tuple[Any, int]] = {}

    def build(self, node: Node, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise YamlLimitError(node, f"nesting deeper than {MAX_DEPTH} levels")
        cached = self.memo.get(id(node))
        if cached is not None:
            # An alias: the same node again. Count its full size, as a consumer would.
            value, size = cached
            self._count(node, size, aliased=True)
            return value
        before = self.expanded
        self._count(node, 1)
        value = self._construct(node, depth)
        self.memo[id(node)] = (value, self.expanded - before)
        return value

    def _count(self, node: Node, size: int, aliased: bool = False) -> None:
        self.expanded += size
        if self.expanded > MAX_NODES:
            what = "aliases of the anchor here expand" if aliased else "this node expands"
            raise YamlLimitError(
                node, f"{what} the document to more than {MAX_NODES} nodes (alias bomb?)"
            )

    def _construct(self, node: Node, depth: int) -> Any:
        if isinstance(node, ScalarNode):
            return _scalar(node)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                raise YamlLimitError(node, f"unsupported tag {node.tag}")
            return [self.build(child, depth + 1) for child in node.value]
        if isinstance(node, MappingNode):
            return self._mapping(node, depth)
        raise YamlLimitError(node, "unsupported YAML node")

    def _mapping(self, node: MappingNode, depth: int) -> dict[str, Any]:
        if node.tag != _MAP:
            raise YamlLimitError(node, f"unsupported tag {node.tag}")
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                raise YamlLimitError(key_node, "mapping keys must be plain strings")
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise YamlLimitError(key_node, "merge keys (<<) are not supported")
            key = key_node.value
            if key in out:
                raise YamlLimitError(key_node, f"duplicate key {key!r}")
            out[key] = self.build(value_node, depth + 1)
        return out


def _scalar(node: ScalarNode) -> Any:
    tag = node.tag
    if tag in (_STR, _TIMESTAMP):
        return node.value
    if tag == _INT:
        text = node.value
        if len(text) > 1 and text.startswith("0") and text.isdigit():
            return text  # 0644 stays text: file modes, zip codes, ...
        return _constructor.construct_yaml_int(node)
    if tag == _BOOL:
        return _constructor.construct_yaml_bool(node)
    if tag == _NULL:
        return None
    if tag == _FLOAT:
        return _constructor.construct_yaml_float(node)
    raise YamlLimitError(node, f"unsupported tag {tag}")


_IMPLICIT: dict[str, list[tuple[str, Any]]] = yaml.resolver.Resolver.yaml_implicit_resolvers


class _Loader(yaml.CSafeLoader):
    """libyaml's parser and composer with a leaner tag resolver.

    libyaml calls `resolve` once per node; the stock resolver's generic path
    (path resolvers, list concatenation) costs a third of the composing time.
    This one gives the same answers for the implicit YAML 1.1 tags.
    """

    def resolve(self, kind: type, value: str, implicit: tuple[bool, bool]) -> str:
        if kind is ScalarNode:
            if implicit[0]:
                for tag, regexp in _IMPLICIT.get(value[:1], ()):
                    if regexp.match(value):
                        return tag
            return _STR
        return _SEQ if kind is SequenceNode else _MAP


def _compose(text: bytes) -> Iterator[Node]:
    loader = _Loader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is not None:
                yield node
    finally:
        loader.dispose()


def load_documents(path: str, text: bytes) -> tuple[list[YamlDoc], list[ManifestError]]:
    """Parse every document of one file; never raises for bad input."""
    if len(text) > MAX_FILE_BYTES:
        msg = f"file is {len(text)} bytes, larger than the {MAX_FILE_BYTES} byte limit"
        return [], [ManifestError(Location(path), "", msg)]
    docs: list[YamlDoc] = []
    errors: list[ManifestError] = []
    index = 0
    try:
        for node in _compose(text):
            try:
                docs.append(YamlDoc(_Builder().build(node), node, index))
            except YamlLimitError as exc:
                errors.append(ManifestError(_mark(path, exc.node), "", str(exc)))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
        problem = exc.problem or exc.context or "invalid YAML"
        errors.append(ManifestError(loc, "", f"YAML syntax error: {problem}"))
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as exc:
        errors.append(ManifestError(Location(path), "", f"YAML error: {exc}"))
    return docs, errors


def locate(path: str, node: Node, loc: tuple[str | int, ...], *, key: bool = False) -> Location:
    """Map a validation error's `loc` onto the deepest node that exists."""
    current = node
    for i, part in enumerate(loc):
        if isinstance(current, MappingNode):
            for key_node, value_node in current.value:
                if key_node.value == str(part):
                    last = i == len(loc) - 1
                    current = key_node if (key and last) else value_node
                    break
            else:
                break
        elif isinstance(current, SequenceNode) and isinstance(part, int):
            if part >= len(current.value):
                break
            current = current.value[part]
        else:
            break
    return _mark(path, current)
