"""Desired specs of a commit: every valid manifest as a comparable spec, checked.

`desired_specs` turns a loaded `DesiredState` into the comparable spec of
each valid resource (`reconciler.resources.normalize`), resolving repository
files and secrets into fingerprints, and applies the cross-resource checks
(node references, `dependsOn` targets and cycles, the guard rails of
`homelab.yaml`); a resource that fails
them is invalid and gets no action. What a manifest derives is memoized
while the manifest object is the same. Called by `compute_plan`, the
executor's stale-plan check and `homelab validate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.errors import ManifestError
from reconciler.planning.dependencies import dependency_problems
from reconciler.planning.guardrails import refusals
from reconciler.resources.key import ResourceKey
from reconciler.resources.normalize import (
    MissingInput,
    comparable_spec,
    has_external_inputs,
    spec_hash,
)
from reconciler.runtime_root import DEFAULT_ROOT, RuntimeRoot
from reconciler.sources.git import DesiredState, GitSource
from reconciler.sources.manifests import Manifest
from reconciler.sources.resolver import CommitResolver


@dataclass
class _Memo:
    """What a pass derives from a manifest, reused while the manifest object is the same."""

    manifest: Manifest
    spec: dict[str, Any] | None  # None: depends on secrets or repository files
    spec_hash: str | None


def _memo(source: GitSource, ref: ResourceKey, manifest: Manifest) -> _Memo:
    memos: dict[ResourceKey, _Memo] = source.derived.setdefault("planner", {})
    memo = memos.get(ref)
    if memo is None or memo.manifest is not manifest:
        spec = None
        if not has_external_inputs(manifest.kind, manifest.doc):
            spec = comparable_spec(manifest.kind, manifest.doc, _NO_INPUTS)
        memo = memos[ref] = _Memo(manifest, spec, spec_hash(spec) if spec else None)
    return memo


class _NoInputs:
    def repo_file_sha256(self, path: str) -> str | None:
        return None

    def secret_sha256(self, name: str) -> str | None:
        return None


_NO_INPUTS = _NoInputs()


def _cross_check(
    source: GitSource, state: DesiredState, manifest: Manifest, root: RuntimeRoot | None
) -> list[ManifestError]:
    errors = []
    spec = manifest.doc.get("spec") or {}
    node = spec.get("node")
    if node and node != "local" and ("Node", node) not in state.manifests:
        errors.append(
            ManifestError(manifest.location, "spec.node", f"Node {node!r} is not defined")
        )
    stacks = root.stacks if root is not None else DEFAULT_ROOT / "stacks"
    errors.extend(refusals(source, state, manifest, stacks))  # guard rails (allowDangerous)
    return errors


def desired_specs(
    source: GitSource,
    state: DesiredState,
    root: RuntimeRoot | None,
    reasons: dict[ResourceKey, list[ManifestError]] | None = None,
) -> tuple[dict[ResourceKey, dict[str, Any]], list[ManifestError], set[ResourceKey]]:
    """Comparable specs of every valid manifest; errors make a resource invalid.

    `reasons`, when given, receives the located errors of each invalid resource.
    """
    resolver = CommitResolver(source, state, root.secrets if root else None)
    desired: dict[ResourceKey, dict[str, Any]] = {}
    errors: list[ManifestError] = []
    invalid: set[ResourceKey] = set(state.invalid)
    dependencies = dependency_problems(source, state)  # unknown targets, cycles (dependsOn)
    for ref, manifest in state.manifests.items():
        memo = _memo(source, ref, manifest)
        problems = [*dependencies.get(ref, ()), *_cross_check(source, state, manifest, root)]
        if not problems and memo.spec is not None:
            desired[ref] = memo.spec
        elif not problems:
            try:
                desired[ref] = comparable_spec(manifest.kind, manifest.doc, resolver)
            except MissingInput as exc:
                problems.append(ManifestError(manifest.location, "spec", str(exc)))
        if problems:
            errors.extend(problems)
            invalid.add(ref)
            if reasons is not None:
                reasons.setdefault(ref, []).extend(problems)
    return desired, errors, invalid


def memoized_hash(source: GitSource, ref: ResourceKey, spec: dict[str, Any]) -> str | None:
    """The memoized hash of `spec` when it is the one `desired_specs` derived, else None."""
    memo = source.derived.get("planner", {}).get(ref)
    if memo is not None and memo.spec is spec:
        return str(memo.spec_hash)
    return None
