"""From YAML documents to validated manifests, with every error located.

`parse_file` turns one file's bytes into `FileResult`: the valid manifests
(kind, name, position and the normalized document as plain JSON data) and
the errors as `path:line:column: field: message`. Resources whose document
names a kind and a name but is otherwise invalid are listed in `invalid`, so
the planner can give them an error condition instead of pruning them, with
the indices of their own errors (`invalid_errors`). A file YAML cannot read
at all (a syntax error) still names its resources: `recover_refs` finds the
`kind`/`metadata.name` pairs in the raw text, so those resources become
invalid at the syntax error's position instead of vanishing from the plan.
`FileResult` is position-independent of the file's path (the path is applied
when reading), so it can be cached by git blob id. Called by the git source.
"""

from __future__ import annotations

import gc
import re
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
    # Per entry of `invalid`: the indices in `errors` that make it invalid.
    invalid_errors: list[list[int]] = field(default_factory=list)

    def errors_of(self, i: int) -> list[ManifestError]:
        """The errors that make `invalid[i]` invalid (all of the file's when not recorded)."""
        if i < len(self.invalid_errors) and self.invalid_errors[i]:
            return [self.errors[j] for j in self.invalid_errors[i] if j < len(self.errors)]
        return list(self.errors)

    def add_invalid(self, ref: ResourceKey, since: int) -> None:
        """`ref` is invalid because of the errors appended from index `since` on."""
        self.invalid.append(ref)
        self.invalid_errors.append(list(range(since, len(self.errors))))

    def at_path(self, path: str) -> FileResult:
        """The same result for the same content found at another path."""

        def move(loc: Location) -> Location:
            return Location(path, loc.line, loc.column)

        return FileResult(
            [Manifest(m.kind, m.name, move(m.location), m.doc) for m in self.manifests],
            [ManifestError(move(e.location), e.field, e.message) for e in self.errors],
            list(self.invalid),
            self.parsed_whole,
            [list(ix) for ix in self.invalid_errors],
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
    since = len(result.errors)
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
            result.add_invalid(ResourceKey(kind, name), since)
        return
    where = locate(path, doc.node, ("metadata", "name"))
    result.manifests.append(Manifest(kind, resource.name, where, resource.model_dump(mode="json")))


def _unconvertible(doc: YamlDoc, result: FileResult) -> None:
    """A document with scalars that did not convert: invalid, by name when it has one."""
    since = len(result.errors)
    result.errors.extend(doc.errors)
    data = doc.data if isinstance(doc.data, dict) else {}
    kind, meta = data.get("kind"), data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if isinstance(kind, str) and kind in KINDS and isinstance(name, str):
        result.add_invalid(ResourceKey(kind, name), since)
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
        if errors:
            _recover(text, result, len(errors))
        return result


_KIND = re.compile(rb"""(?:^|[{,\s])["']?kind["']?\s*:\s*["']?([A-Za-z]+)""", re.M)
_META = re.compile(rb"""(?:^|[{,\s])["']?metadata["']?\s*:""", re.M)
_NAME = re.compile(rb"""["']?name["']?\s*:\s*["']?([a-z0-9]([-a-z0-9]*[a-z0-9])?)["',}\s]""")
_SEPARATOR = re.compile(rb"^---", re.M)


def recover_refs(text: bytes) -> list[ResourceKey]:
    """The resources a file names, read leniently from its raw text (best effort).

    For a file YAML cannot parse: each `---` document's first `kind:` (a known
    kind) and the first `name:` after its `metadata:`, in block or flow style.
    """
    found: list[ResourceKey] = []
    for chunk in _SEPARATOR.split(text[:MAX_SCAN_BYTES]):
        kind = _KIND.search(chunk)
        meta = _META.search(chunk)
        if kind is None or meta is None:
            continue
        name = _NAME.search(chunk, meta.end())
        kind_name = kind.group(1).decode()
        if name is not None and kind_name in KINDS:
            ref = ResourceKey(kind_name, name.group(1).decode())
            if ref not in found:
                found.append(ref)
    return found


MAX_SCAN_BYTES = 1024 * 1024


def _recover(text: bytes, result: FileResult, file_errors: int) -> None:
    """Resources of documents YAML could not read: invalid at the file's YAML errors."""
    known = {m.ref for m in result.manifests} | set(result.invalid)
    for ref in recover_refs(text):
        if ref not in known:
            result.invalid.append(ref)
            result.invalid_errors.append(list(range(file_errors)))


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
