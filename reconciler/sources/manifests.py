"""From YAML documents to validated manifests, with every error located.

`parse_file` turns one file's bytes into `FileResult`: the valid manifests
(kind, name, position and the normalized document as plain JSON data) and
the errors as `path:line:column: field: message`. Resources whose document
names a kind and a name but is otherwise invalid are listed in `invalid`, so
the planner can give them an error condition instead of pruning them.
`FileResult` is position-independent of the file's path (the path is applied
when reading), so it can be cached by git blob id. Called by the git source.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from reconciler.errors import Location, ManifestError
from reconciler.resources.key import ResourceKey
from reconciler.resources.kinds import KINDS
from reconciler.resources.meta import API_VERSION
from reconciler.resources.repo import RepoConfig
from reconciler.sources.yamlload import YamlDoc, load_documents, locate


@dataclass(frozen=True)
class Manifest:
    """One valid resource as read from git: the normalized document and where it is."""

    kind: str
    name: str
    location: Location
    doc: dict[str, Any]

    @property
    def ref(self) -> ResourceKey:
        return ResourceKey(self.kind, self.name)


@dataclass
class FileResult:
    """Everything one manifest file yields; cacheable by blob id."""

    manifests: list[Manifest] = field(default_factory=list)
    errors: list[ManifestError] = field(default_factory=list)
    invalid: list[ResourceKey] = field(default_factory=list)
    parsed_whole: bool = True

    def at_path(self, path: str) -> FileResult:
        """The same result for the same content found at another path."""

        def move(loc: Location) -> Location:
            return Location(path, loc.line, loc.column)

        return FileResult(
            [Manifest(m.kind, m.name, move(m.location), m.doc) for m in self.manifests],
            [ManifestError(move(e.location), e.field, e.message) for e in self.errors],
            list(self.invalid),
            self.parsed_whole,
        )


def _field_name(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _clean(message: str) -> str:
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _validate(path: str, doc: YamlDoc, result: FileResult) -> None:
    data = doc.data
    if doc.errors:
        _unconvertible(doc, result)
        return
    if data is None:
        return  # an empty document, e.g. after a trailing `---`
    if not isinstance(data, dict):
        where = locate(path, doc.node, ())
        result.errors.append(ManifestError(where, "", "a manifest must be a mapping"))
        return
    api, kind = data.get("apiVersion"), data.get("kind")
    if api != API_VERSION:
        where = locate(path, doc.node, ("apiVersion",))
        msg = f"unknown apiVersion {api!r}; expected {API_VERSION!r}"
        result.errors.append(ManifestError(where, "apiVersion", msg))
        return
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None or not isinstance(kind, str):
        where = locate(path, doc.node, ("kind",))
        msg = f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}"
        result.errors.append(ManifestError(where, "kind", msg))
        return
    try:
        resource = model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = locate(path, doc.node, loc, key=err["type"] == "extra_forbidden")
            result.errors.append(ManifestError(where, _field_name(loc), _clean(err["msg"])))
        name = (
            (data.get("metadata") or {}).get("name")
            if isinstance(data.get("metadata"), dict)
            else None
        )
        if isinstance(name, str):
            result.invalid.append(ResourceKey(kind, name))
        return
    where = locate(path, doc.node, ("metadata", "name"))
    result.manifests.append(Manifest(kind, resource.name, where, resource.model_dump(mode="json")))


def _unconvertible(doc: YamlDoc, result: FileResult) -> None:
    """A document with scalars that did not convert: invalid, by name when it has one."""
    result.errors.extend(doc.errors)
    data = doc.data if isinstance(doc.data, dict) else {}
    kind, meta = data.get("kind"), data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(kind, str) and kind in KINDS and isinstance(name, str):
        result.invalid.append(ResourceKey(kind, name))
    else:
        result.parsed_whole = False  # an unknown resource: nothing may be pruned


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while loading: parsing allocates many small, acyclic
    objects, and each collection would rescan everything loaded so far, making a
    large load quadratic. Reference counting still frees garbage meanwhile."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_file(path: str, text: bytes) -> FileResult:
    """Parse and validate every document of one manifest file."""
    with gc_paused():
        docs, errors = load_documents(path, text)
        result = FileResult(errors=list(errors), parsed_whole=not errors)
        for doc in docs:
            _validate(path, doc, result)
        return result


def parse_repo_config(path: str, text: bytes) -> tuple[RepoConfig | None, list[ManifestError]]:
    docs, errors = load_documents(path, text)
    if errors or not docs or docs[0].errors:
        return None, [*errors, *(docs[0].errors if docs else [])]
    try:
        return RepoConfig.model_validate(docs[0].data or {}), []
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            field = ".".join(str(p) for p in loc)
            msg = err["msg"].removeprefix("Value error, ")
            out.append(ManifestError(locate(path, docs[0].node, loc), field, msg))
        return None, out
