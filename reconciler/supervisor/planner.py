"""One planning pass: load desired state, check it, read the world, diff.

`compute_plan` is the shell around the pure planner (`reconciler.diff`): it
loads the commit through the git source, resolves repository files and
secrets into fingerprints, applies the cross-resource checks (node
references, guard rails from `homelab.yaml`) and reads managed world
documents. `homelab plan` and the supervisor both call it, so what the CLI
prints is what the supervisor proposes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.diff import Plan, make_plan
from reconciler.errors import ManifestError
from reconciler.resources.kinds import KINDS
from reconciler.resources.normalize import (
    MissingInput,
    comparable_spec,
    has_external_inputs,
    spec_hash,
)
from reconciler.settings import RuntimeRoot
from reconciler.sources.git import DesiredState, GitSource
from reconciler.sources.manifests import Manifest, gc_paused
from reconciler.sources.resolver import CommitResolver
from reconciler.supervisor.guardrails import refusals
from reconciler.world import WorldReader, observed_spec

Ref = tuple[str, str]
IN_PLACE = {kind: model.IN_PLACE for kind, model in KINDS.items()}


@dataclass
class PlanResult:
    state: DesiredState
    plan: Plan
    desired: dict[Ref, dict[str, Any]] = field(default_factory=dict)
    errors: list[ManifestError] = field(default_factory=list)
    invalid: set[Ref] = field(default_factory=set)
    world: dict[Ref, dict[str, Any]] = field(default_factory=dict)


@dataclass
class _Memo:
    """What a pass derives from a manifest, reused while the manifest object is the same."""

    manifest: Manifest
    spec: dict[str, Any] | None  # None: depends on secrets or repository files
    spec_hash: str | None


def _memo(source: GitSource, ref: Ref, manifest: Manifest) -> _Memo:
    memos: dict[Ref, _Memo] = source.derived.setdefault("planner", {})
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


def _cross_check(source: GitSource, state: DesiredState, manifest: Manifest) -> list[ManifestError]:
    errors = []
    spec = manifest.doc.get("spec") or {}
    node = spec.get("node")
    if node and node != "local" and ("Node", node) not in state.manifests:
        errors.append(
            ManifestError(manifest.location, "spec.node", f"Node {node!r} is not defined")
        )
    errors.extend(refusals(source, state, manifest))  # guard rails (homelab.yaml allowDangerous)
    return errors


def desired_specs(
    source: GitSource, state: DesiredState, root: RuntimeRoot | None
) -> tuple[dict[Ref, dict[str, Any]], list[ManifestError], set[Ref]]:
    """Comparable specs of every valid manifest; errors make a resource invalid."""
    resolver = CommitResolver(source, state, root.secrets if root else None)
    desired: dict[Ref, dict[str, Any]] = {}
    errors: list[ManifestError] = []
    invalid: set[Ref] = set(state.invalid)
    for ref, manifest in state.manifests.items():
        memo = _memo(source, ref, manifest)
        problems = _cross_check(source, state, manifest)
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
    return desired, errors, invalid


def managed_observed(world: dict[Ref, dict[str, Any]]) -> dict[Ref, dict[str, Any] | None]:
    """Observed specs of the resources this project manages (None = missing)."""
    return {
        ref: observed_spec(doc)
        for ref, doc in world.items()
        if (doc.get("status") or {}).get("managed") and ref[0] in KINDS
    }


def compute_plan(
    source: GitSource,
    root: RuntimeRoot | None,
    ref: str | None = None,
    *,
    world_reader: WorldReader | None = None,
    allow_deletes: bool = True,
    state: DesiredState | None = None,
) -> PlanResult:
    """Plan `ref` (or the already loaded `state`, which the supervisor passes)."""
    with gc_paused():
        if state is None:
            state = source.load(ref)
        return _plan_state(source, root, state, world_reader, allow_deletes)


def _unchanged(
    source: GitSource,
    desired: dict[Ref, dict[str, Any]],
    world: dict[Ref, dict[str, Any]],
    ignore: dict[Ref, list[str]],
) -> set[Ref]:
    """Resources whose desired spec hash equals the world's basis: in sync, no diff needed.

    Comparing two short hashes is far cheaper than comparing two specs, and the
    desired hash is memoized while the manifest is unchanged.
    """
    memos: dict[Ref, _Memo] = source.derived.get("planner", {})
    same = set()
    for ref, spec in desired.items():
        doc = world.get(ref)
        if doc is None or ref in ignore:
            continue
        status = doc.get("status") or {}
        if not (status.get("managed") and status.get("exists")):
            continue
        memo = memos.get(ref)
        digest = memo.spec_hash if memo is not None and memo.spec is spec else spec_hash(spec)
        if digest == status.get("basis"):
            same.add(ref)
    return same


def _plan_state(
    source: GitSource,
    root: RuntimeRoot | None,
    state: DesiredState,
    world_reader: WorldReader | None,
    allow_deletes: bool,
) -> PlanResult:
    desired, errors, invalid = desired_specs(source, state, root)
    world: dict[Ref, dict[str, Any]] = {}
    if root is not None:
        world = (world_reader or WorldReader(root)).read()
    ignore: dict[Ref, list[str]] = {}
    for r, m in state.manifests.items():
        pointers = m.doc.get("spec", {}).get("policy", {}).get("ignoreDifferences")
        if pointers:
            ignore[r] = list(pointers)
    plan = make_plan(
        state.commit,
        desired,
        managed_observed(world),
        in_place=IN_PLACE,
        ignore=ignore,
        protected=invalid,
        allow_deletes=allow_deletes and state.complete,
        unchanged=_unchanged(source, desired, world, ignore),
    )
    return PlanResult(state, plan, desired, [*state.errors, *errors], invalid, world)
