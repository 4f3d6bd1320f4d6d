"""The planner's guard-rail check: refused Container and compose options as located errors.

`refusals(source, state, manifest, stacks)` runs the guard rails (the pure
rules in `reconciler.resources.guardrails` and, for the services of a
ComposeStack's compose files, `reconciler.resources.compose_guardrails`, on
the node through `reconciler.drivers.hostpaths`) for one manifest, unless
`allowDangerous` in homelab.yaml names it, and returns one `ManifestError`
per finding at the line and column of the offending field. The normalized
document the planner holds has sorted volumes and capabilities, so a refused
manifest (the rare path) is read again from its file at the commit to give
positions and indices as written. Resolving binds costs about 0.1 ms a
Container, too much for a 10,000-resource re-plan, so the answer is memoized
while the manifest object and its node's engine URL stay the same: a symlink
made later is seen by the planner only when the manifest changes, but always
by the executor, which checks afresh before it applies (`reconciler.executor.guard`).
Called by the planner's cross checks.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reconciler.drivers.base import LOCAL_DOCKER_HOST
from reconciler.drivers.hostpaths import compose_findings_on, container_findings_on
from reconciler.errors import Location, ManifestError
from reconciler.resources.guardrails import Finding
from reconciler.resources.key import ResourceKey
from reconciler.sources.git import DesiredState, GitSource
from reconciler.sources.manifests import Manifest
from reconciler.sources.yamlload import load_documents, locate


def node_docker_host(state: DesiredState, node: str) -> str:
    """The engine URL of a node: its manifest's, else the implicit local one."""
    found = state.manifests.get(ResourceKey("Node", node))
    if found is not None:
        return str((found.doc.get("spec") or {}).get("dockerHost") or LOCAL_DOCKER_HOST)
    return os.environ.get("DOCKER_HOST") or LOCAL_DOCKER_HOST


def refusals(
    source: GitSource, state: DesiredState, manifest: Manifest, stacks: Path
) -> list[ManifestError]:
    """Located errors for what the guard rails refuse in one Container or ComposeStack.

    `stacks` is the node's `ROOT/stacks` folder, where a stack's compose files
    are written (relative bind sources are judged from there).
    """
    if manifest.kind not in ("Container", "ComposeStack"):
        return []
    if manifest.name in state.config.allowDangerous:
        return []
    spec = manifest.doc.get("spec") or {}
    host = node_docker_host(state, str(spec.get("node") or "local"))
    files = (
        tuple(str(f) for f in spec.get("files") or ()) if manifest.kind == "ComposeStack" else ()
    )
    key = (host, tuple(state.files.get(f) for f in files))
    memos: dict[ResourceKey, tuple[Manifest, tuple[Any, ...], list[ManifestError]]]
    memos = source.derived.setdefault("guardrails", {})
    memo = memos.get(manifest.ref)
    if memo is not None and memo[0] is manifest and memo[1] == key:
        return memo[2]
    if manifest.kind == "Container":
        errors = _located(source, state, manifest, host, spec)
    else:
        errors = _compose_located(source, state, manifest, host, files, stacks / manifest.name)
    memos[manifest.ref] = (manifest, key, errors)
    return errors


def _compose_located(
    source: GitSource,
    state: DesiredState,
    manifest: Manifest,
    host: str,
    files: tuple[str, ...],
    folder: Path,
) -> list[ManifestError]:
    """One error per refused compose option, at its line in the compose file."""
    errors = []
    for path in files:
        text = source.file_bytes(state, path)
        if text is None:
            continue  # a missing file is reported by the desired-spec check
        docs, _problems = load_documents(path, text)
        if not docs:
            continue  # not YAML compose can read either: compose fails it at apply
        doc = docs[0]
        base = str((folder / path).parent)
        for finding in compose_findings_on(host, doc.data, base):
            where = locate(path, doc.node, tuple(_pointer(finding.field)))
            message = _message(manifest.name, finding).replace("this container", "this stack")
            errors.append(ManifestError(where, finding.field, message))
    return errors


def _located(
    source: GitSource, state: DesiredState, manifest: Manifest, host: str, spec: dict[str, Any]
) -> list[ManifestError]:
    if not container_findings_on(host, spec):
        return []
    located = _as_written(source, state, manifest, host)
    if located is None:  # the file cannot be read again: the resource's own position
        found = container_findings_on(host, spec)
        located = [(manifest.location, f) for f in found]
    return [ManifestError(where, f.field, _message(manifest.name, f)) for where, f in located]


def _message(name: str, finding: Finding) -> str:
    return (
        f"refused [{finding.rule}]: {finding.message}; if this container really needs it, "
        f"allow it with allowDangerous: [{name}] in homelab.yaml (docs/guardrails.md)"
    )


def _as_written(
    source: GitSource, state: DesiredState, manifest: Manifest, host: str
) -> list[tuple[Location, Finding]] | None:
    path = manifest.location.path
    text = source.file_bytes(state, path)
    if text is None:
        return None
    docs, _errors = load_documents(path, text)
    for doc in docs:
        data = doc.data
        if not isinstance(data, dict) or data.get("kind") != manifest.kind:
            continue
        meta = data.get("metadata")
        if not isinstance(meta, dict) or meta.get("name") != manifest.name:
            continue
        raw = data.get("spec")
        if not isinstance(raw, dict):
            return None
        out = []
        for finding in container_findings_on(host, raw):
            loc = tuple(_pointer(finding.field))
            out.append((locate(path, doc.node, loc), finding))
        return out or None
    return None


def _pointer(field: str) -> list[str | int]:
    """`spec.volumes[0].source` -> ["spec", "volumes", 0, "source"]."""
    parts: list[str | int] = []
    for piece in field.split("."):
        name, _, rest = piece.partition("[")
        parts.append(name)
        if rest:
            parts.append(int(rest.rstrip("]")))
    return parts
