"""Safe, bounded YAML parsing that keeps exact positions.

libyaml (PyYAML's C parser and composer) builds the node tree fast and with
line/column marks; we then build plain Python data ourselves so that every
limit is enforced where it happens: nesting depth, alias expansion (billion
laughs), duplicate keys, unsupported tags. A scalar its tag cannot convert
(`0b_`, a 5,000-digit integer, `!!bool maybe`; see `reconciler.sources.scalars`)
is an error at its own position, attached to its document, and the rest of
the document is still built so its kind and name are known. Keys are always strings and
integers written with a leading zero (0644) stay text, so file modes survive
YAML 1.1's octal rule. Nodes are kept beside the data so a later validation
error can be mapped back to `line:column` (`locate`). Pure apart from
parsing the bytes it is given; called by `reconciler.sources.manifests`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from reconciler.errors import Location, ManifestError
from reconciler.sources.scalars import ScalarError, to_value

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
_CONVERTED = {_INT: "int", _FLOAT: "float", _BOOL: "bool"}


class YamlLimitError(Exception):
    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node


@dataclass
class YamlDoc:
    """One parsed document: its data, its node tree, its index in the file, and
    the scalars that could not be converted (each a located error; their
    values are None in `data`)."""

    data: Any
    node: Node
    index: int
    errors: list[ManifestError] = field(default_factory=list)


def _mark(path: str, node: Node) -> Location:
    return Location(path, node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns one document's node tree into data, enforcing the limits."""

    def __init__(self) -> None:
        self.expanded = 0
        self.memo: dict[int, tuple[Any, int]] = {}
        self.bad: list[tuple[ScalarNode, str]] = []

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
            try:
                return _scalar(node)
            except ScalarError as exc:
                self.bad.append((node, str(exc)))
                return None
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
    if tag == _NULL:
        return None
    kind = _CONVERTED.get(tag)
    if kind is None:
        raise YamlLimitError(node, f"unsupported tag {tag}")
    text = node.value
    if kind == "int" and len(text) > 1 and text.startswith("0") and text.isdigit():
        return text  # 0644 stays text: file modes, zip codes, ...
    return to_value(kind, text)


def _field_of(root: Node, target: Node) -> str:
    """The dotted field path of `target` in the tree under `root` (errors only)."""
    stack: list[tuple[Node, str]] = [(root, "")]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, MappingNode):
            for key, value in node.value:
                name = str(key.value)
                stack.append((value, f"{path}.{name}" if path else name))
        elif isinstance(node, SequenceNode):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(node.value))
    return ""


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
                builder = _Builder()
                doc = YamlDoc(builder.build(node), node, index)
                for bad, message in builder.bad:
                    where = _mark(path, bad)
                    doc.errors.append(ManifestError(where, _field_of(node, bad), message))
                docs.append(doc)
            except YamlLimitError as exc:
                errors.append(ManifestError(_mark(path, exc.node), "", str(exc)))
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(path, mark.line + 1, mark.column + 1) if mark else Location(path)
        problem = exc.problem or exc.context or "invalid YAML"
        errors.append(ManifestError(loc, "", f"YAML syntax error: {problem}"))
    except yaml.reader.ReaderError as exc:
        errors.append(_reader_error(path, text, exc))
    except (yaml.YAMLError, RecursionError, UnicodeDecodeError) as exc:
        errors.append(ManifestError(Location(path), "", f"YAML error: {exc}"))
    return docs, errors


def _reader_error(path: str, text: bytes, exc: yaml.reader.ReaderError) -> ManifestError:
    """A character YAML does not allow, at its line and column, on one line."""
    offset = max(0, min(int(exc.position), len(text)))
    line = text.count(b"\n", 0, offset) + 1
    column = offset - (text.rfind(b"\n", 0, offset) + 1) + 1
    if isinstance(exc.character, int):
        what = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
    else:
        what = f"cannot decode the file as {exc.encoding}: {exc.reason}"
    message = f"YAML error: {what} (remove it, or write it as an escape in double quotes)"
    return ManifestError(Location(path, line, column), "", message)


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
