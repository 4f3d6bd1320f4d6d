"""Line diffs for a plan: a changed file's observed text against its desired text.

`attach_text_diffs` gives every update or replace whose patch replaces a
content fingerprint a unified diff (`reconciler.diff.text`) when both texts
are known: the observed one from the world document's runtime facts (a
File's `runtime.content`, a ComposeStack's `runtime.files[path]`), the
desired one from the manifest (`content`) or the repository file at the
desired commit (`source`, compose files). A secret-backed File never gets
one, and each text must match the fingerprint in the spec it stands for, so
a diff never shows anything but the two versions the change is about.
Called by `compute_plan` after diffing; the diffs go to the plan text, the
JSON plan and the action (`contentDiff`), never into its id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from reconciler.diff import Change, Plan
from reconciler.diff.text import unified_diff
from reconciler.resources.file_runtime import text_of
from reconciler.resources.key import ResourceKey
from reconciler.resources.normalize import fingerprint
from reconciler.sources.git import DesiredState, GitSource
from reconciler.world.doc import WorldDoc

_KINDS = ("File", "ComposeStack")
# (pointer of the fingerprint, observed text, desired bytes) for one change.
Texts = Iterator[tuple[str, str | None, bytes | None]]


def _runtime(doc: WorldDoc | None) -> dict[str, Any]:
    runtime = doc.status.runtime if doc is not None else None
    return runtime if isinstance(runtime, dict) else {}


def _file_texts(runtime: dict[str, Any], desired: Callable[[], bytes | None]) -> Texts:
    content = runtime.get("content")
    yield "/sha256", content if isinstance(content, str) else None, desired()


def _compose_texts(
    change: Change, runtime: dict[str, Any], repo: Callable[[str], bytes | None]
) -> Texts:
    files = runtime.get("files")
    texts = files if isinstance(files, dict) else {}
    observed = (change.observed or {}).get("files") or []
    for i, entry in enumerate((change.desired or {}).get("files") or []):
        path = entry.get("path")
        seen = observed[i] if i < len(observed) and isinstance(observed[i], dict) else {}
        if not isinstance(path, str) or seen.get("path") != path:
            continue  # a file added, removed or moved: no single pair of texts
        text = texts.get(path)
        yield f"/files/{i}/sha256", text if isinstance(text, str) else None, repo(path)


def _diffs(
    change: Change, state: DesiredState, source: GitSource, doc: WorldDoc | None
) -> dict[str, str]:
    replaced = {op["path"] for op in change.patch if op.get("op") == "replace"}
    if not any(p.endswith("/sha256") for p in replaced):
        return {}
    manifest = state.manifests.get(change.ref)
    spec = (manifest.doc.get("spec") if manifest else None) or {}

    def repo(path: str) -> bytes | None:
        return source.file_bytes(state, path)

    def file_bytes() -> bytes | None:
        if spec.get("content") is not None:
            return str(spec["content"]).encode()
        return repo(str(spec["source"])) if spec.get("source") is not None else None

    if change.kind == "File" and spec.get("secret") is None:
        texts = _file_texts(_runtime(doc), file_bytes)
    elif change.kind == "ComposeStack":
        texts = _compose_texts(change, _runtime(doc), repo)
    else:
        return {}
    out = {}
    for pointer, observed, wanted in texts:
        if pointer not in replaced or observed is None or wanted is None:
            continue
        desired = text_of(wanted)
        if (
            desired is None
            or fingerprint(wanted) != _at(change.desired, pointer)
            or fingerprint(observed.encode()) != _at(change.observed, pointer)
        ):
            continue
        out[pointer] = unified_diff(observed, desired)
    return out


def _at(spec: dict[str, Any] | None, pointer: str) -> Any:
    value: Any = spec
    for part in pointer.strip("/").split("/"):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def attach_text_diffs(
    plan: Plan, state: DesiredState, source: GitSource, world: dict[ResourceKey, WorldDoc]
) -> None:
    """Give the plan's content changes their line diffs (in place)."""
    for i, change in enumerate(plan.changes):
        if change.operation not in ("update", "replace") or change.kind not in _KINDS:
            continue
        diffs = _diffs(change, state, source, world.get(change.ref))
        if diffs:
            plan.changes[i] = dataclasses.replace(change, text_diffs=diffs)
