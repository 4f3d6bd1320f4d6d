"""The planner: one change per drifted resource, as an RFC 6902 JSON Patch.

Equality is checked before diffing (a plain `==` costs microseconds, a patch
hundreds), `ignoreDifferences` pointers are removed from both sides first,
and a patch touching a field the kind cannot change in place makes the
change a replacement. A ComposeStack whose only drift is its `state` (a
service down, missing or outdated) gets `up`; one observed without `state`
(applied before stacks were observed per service) counts as running. Deletes
are proposed only for managed resources gone from git, never for resources
whose manifests are invalid, and never when the desired state is incomplete.
Pure; used by `homelab plan` and the supervisor.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonpatch
import jsonpointer

from reconciler.resources.key import ResourceKey

Operation = Literal["create", "update", "up", "replace", "delete"]
OPERATION_ORDER = {"create": 0, "update": 1, "up": 1, "replace": 2, "delete": 3}


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    operation: Operation
    patch: list[dict[str, Any]]
    desired: dict[str, Any] | None
    observed: dict[str, Any] | None
    forces: tuple[str, ...] = ()

    @property
    def ref(self) -> ResourceKey:
        return ResourceKey(self.kind, self.name)


@dataclass
class Plan:
    commit: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        out = {"create": 0, "update": 0, "replace": 0, "delete": 0}
        for change in self.changes:
            out[change.operation] = out.get(change.operation, 0) + 1
        return out

    @property
    def empty(self) -> bool:
        return not self.changes


def _without(doc: dict[str, Any], pointers: list[str]) -> dict[str, Any]:
    if not pointers:
        return doc
    out = copy.deepcopy(doc)
    for pointer in pointers:
        try:
            parts = jsonpointer.JsonPointer(pointer)
            parent, last = parts.to_last(out)
        except (jsonpointer.JsonPointerException, TypeError):
            continue
        if isinstance(parent, dict):
            parent.pop(last, None)
        elif isinstance(parent, list) and isinstance(last, int) and last < len(parent):
            parent[last] = None
    return out


def _stack_state_known(want: dict[str, Any], have: dict[str, Any]) -> dict[str, Any]:
    """`have` with the desired state when it has none (observed before stacks were
    observed per service): an unknown state is no drift to act on."""
    if "state" in have or "state" not in want:
        return have
    return {**have, "state": want["state"]}


def diff_resource(
    kind: str,
    name: str,
    desired: dict[str, Any] | None,
    observed: dict[str, Any] | None,
    *,
    in_place: frozenset[str] = frozenset(),
    ignore: list[str] | None = None,
) -> Change | None:
    """The change that turns `observed` into `desired`, or None when in sync."""
    if desired is None and observed is None:
        return None
    if observed is None:
        assert desired is not None
        patch: list[dict[str, Any]] = [{"op": "add", "path": "", "value": desired}]
        return Change(kind, name, "create", patch, desired, None)
    if desired is None:
        patch = [{"op": "replace", "path": "", "value": None}]
        return Change(kind, name, "delete", patch, None, observed)
    want, have = _without(desired, ignore or []), _without(observed, ignore or [])
    if kind == "ComposeStack":
        have = _stack_state_known(want, have)
    if want == have:
        return None
    patch = jsonpatch.make_patch(have, want).patch
    forces = sorted({op["path"].split("/")[1] for op in patch} - in_place)
    operation: Operation = "replace" if forces else "update"
    if kind == "ComposeStack" and all(op["path"] == "/state" for op in patch):
        operation = "up"  # only services down, missing or outdated: `up -d` again
    return Change(kind, name, operation, patch, desired, observed, tuple(forces))


def make_plan(
    commit: str,
    desired: Mapping[ResourceKey, dict[str, Any]],
    observed: Mapping[ResourceKey, dict[str, Any] | None],
    *,
    in_place: Mapping[str, frozenset[str]],
    ignore: Mapping[ResourceKey, list[str]] | None = None,
    protected: set[ResourceKey] | None = None,
    allow_deletes: bool = True,
    observe_only: frozenset[str] = frozenset({"Node"}),
    unchanged: set[ResourceKey] | None = None,
) -> Plan:
    """Diff every resource. `observed` holds managed world resources (None = missing).

    `unchanged` names resources the caller already knows to be in sync (equal
    spec hashes); they are not compared again.
    """
    plan = Plan(commit)
    ignore = ignore or {}
    protected = protected or set()
    skip = unchanged or set()
    for ref in sorted(desired.keys() | observed.keys()):
        kind, name = ref
        if kind in observe_only or ref in protected or ref in skip:
            continue
        want = desired.get(ref)
        if want is None and not allow_deletes:
            if observed.get(ref) is not None:
                plan.notes.append(f"{kind}/{name}: delete withheld (desired state incomplete)")
            continue
        change = diff_resource(
            kind,
            name,
            want,
            observed.get(ref),
            in_place=in_place.get(kind, frozenset()),
            ignore=ignore.get(ref),
        )
        if change is not None:
            plan.changes.append(change)
    plan.changes.sort(key=lambda c: (OPERATION_ORDER[c.operation], c.kind, c.name))
    return plan
