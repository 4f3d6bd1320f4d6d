"""One planning pass: load desired state, check it, read the world, diff.

`compute_plan` is the shell around the pure planner (`reconciler.diff`): it
loads the commit through the git source, takes the checked comparable specs
from `reconciler.planning.desired` and reads the world: managed documents
(`managed_observed`) and, apart from them, existing unmanaged ones
(`unmanaged_observed`), which the planner may only adopt, never delete. A
changed file's content gets its line diff (`reconciler.planning.text_diffs`).
`homelab plan` and the supervisor both call it, so what the CLI prints is
what the supervisor proposes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reconciler.diff import Plan, make_plan
from reconciler.errors import ManifestError
from reconciler.planning.dependencies import order_changes
from reconciler.planning.desired import desired_specs, memoized_hash
from reconciler.planning.netvol import adoption_candidates, attach_notes
from reconciler.planning.text_diffs import attach_text_diffs
from reconciler.resources.key import ResourceKey
from reconciler.resources.kinds import KINDS
from reconciler.resources.normalize import spec_hash
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import DesiredState, GitSource
from reconciler.sources.manifests import gc_paused
from reconciler.world import WorldReader
from reconciler.world.doc import WorldDoc

IN_PLACE = {kind: model.IN_PLACE for kind, model in KINDS.items()}


@dataclass
class PlanResult:
    state: DesiredState
    plan: Plan
    desired: dict[ResourceKey, dict[str, Any]] = field(default_factory=dict)
    errors: list[ManifestError] = field(default_factory=list)
    invalid: set[ResourceKey] = field(default_factory=set)
    world: dict[ResourceKey, WorldDoc] = field(default_factory=dict)
    # The located errors of each invalid resource (its file's syntax error included).
    invalid_errors: dict[ResourceKey, list[ManifestError]] = field(default_factory=dict)

    def invalid_at(self, ref: ResourceKey) -> str:
        """`manifest invalid at file:line` for an invalid resource (its first error)."""
        errors = self.invalid_errors.get(ref)
        if not errors:
            return "manifest invalid"
        where = errors[0].location
        return f"manifest invalid at {where.path}:{where.line}"


def managed_observed(
    world: dict[ResourceKey, WorldDoc],
) -> dict[ResourceKey, dict[str, Any] | None]:
    """Observed specs of the resources this project manages (None = missing)."""
    return {
        ref: doc.observed_spec
        for ref, doc in world.items()
        if doc.status.managed and ref.kind in KINDS
    }


# Fields a running resource cannot show: an unmanaged one has no last-applied spec
# to take them from, so they are never a reason to replace it on adoption.
UNOBSERVABLE = {"Container": ("imagePullPolicy",)}


def unmanaged_observed(
    world: dict[ResourceKey, WorldDoc], desired: dict[ResourceKey, dict[str, Any]] | None = None
) -> dict[ResourceKey, dict[str, Any]]:
    """Observed specs of existing resources this project does not manage (adoption candidates).

    Fields the engine cannot show (`UNOBSERVABLE`) are taken from the desired spec.
    """
    out = {}
    for ref, doc in world.items():
        observed = doc.status.observed
        if doc.status.managed or not doc.status.exists or observed is None or ref.kind not in KINDS:
            continue
        want = (desired or {}).get(ref)
        hidden = UNOBSERVABLE.get(ref.kind, ())
        if want is not None and hidden:
            observed = {**observed, **{f: want[f] for f in hidden if f in want and f in observed}}
        out[ref] = observed
    return out


def compute_plan(
    source: GitSource,
    root: RuntimeRoot | None,
    ref: str | None = None,
    *,
    world_reader: WorldReader | None = None,
    allow_deletes: bool = True,
    state: DesiredState | None = None,
    world: dict[ResourceKey, WorldDoc] | None = None,
) -> PlanResult:
    """Plan `ref` (or the already loaded `state`, which the supervisor passes).

    `world` is an observed state built by the caller (`homelab plan --refresh`
    passes one refreshed in memory); without it the world is read under `root`.
    """
    with gc_paused():
        if state is None:
            state = source.load(ref)
        return _plan_state(source, root, state, world_reader, allow_deletes, world)


def _unchanged(
    source: GitSource,
    desired: dict[ResourceKey, dict[str, Any]],
    world: dict[ResourceKey, WorldDoc],
    ignore: dict[ResourceKey, list[str]],
) -> set[ResourceKey]:
    """Resources whose desired spec hash equals the world's basis: in sync, no diff needed.

    Comparing two short hashes is far cheaper than comparing two specs, and the
    desired hash is memoized while the manifest is unchanged.
    """
    same = set()
    for ref, spec in desired.items():
        doc = world.get(ref)
        if doc is None or ref in ignore:
            continue
        status = doc.status
        if not (status.managed and status.exists):
            continue
        digest = memoized_hash(source, ref, spec) or spec_hash(spec)
        if digest == status.basis:
            same.add(ref)
    return same


def _plan_state(
    source: GitSource,
    root: RuntimeRoot | None,
    state: DesiredState,
    world_reader: WorldReader | None,
    allow_deletes: bool,
    given: dict[ResourceKey, WorldDoc] | None,
) -> PlanResult:
    reasons = {ref: list(errs) for ref, errs in state.invalid_errors.items()}
    desired, errors, invalid = desired_specs(source, state, root, reasons)
    world: dict[ResourceKey, WorldDoc] = {} if given is None else given
    if given is None and root is not None:
        world = (world_reader or WorldReader(root)).read()
    ignore: dict[ResourceKey, list[str]] = {}
    for r, m in state.manifests.items():
        pointers = m.doc.get("spec", {}).get("policy", {}).get("ignoreDifferences")
        if pointers:
            ignore[r] = list(pointers)
    plan = make_plan(
        state.commit,
        desired,
        managed_observed(world),
        in_place=IN_PLACE,
        unmanaged=adoption_candidates(unmanaged_observed(world, desired), desired, world),
        ignore=ignore,
        protected=invalid,
        allow_deletes=allow_deletes and state.complete,
        unchanged=_unchanged(source, desired, world, ignore),
    )
    plan.changes = order_changes(plan.changes, state.manifests)  # dependsOn order
    attach_text_diffs(plan, state, source, world)
    attach_notes(plan, world)
    return PlanResult(state, plan, desired, [*state.errors, *errors], invalid, world, reasons)
