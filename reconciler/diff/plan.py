"""The planner: one change per drifted resource, as an RFC 6902 JSON Patch.

Equality is checked before diffing (a plain `==` costs microseconds, a patch
hundreds) and `ignoreDifferences` pointers are removed from both sides
first. The top-level fields a patch touches choose the operation: only the
run `state` -> `start` (desired running) or `stop` (desired stopped), or
`up` for a ComposeStack (a service down, missing or outdated; a stack
observed without `state`, applied before stacks were observed per service,
counts as running); only fields the kind changes in place (`IN_PLACE`, plus
possibly `state`) -> `update`; anything else -> `replace`, with the forcing
fields listed. A desired resource whose world document exists but is not
managed (a container someone started by hand under the resource's name) is
an `adopt`: its patch is what approving it changes (empty: taken over as it
runs). Deletes are proposed only for managed resources gone from git, never
for unmanaged ones, never for resources whose manifests are invalid, and
never when the desired state is incomplete. Pure; used by `homelab plan`
and the supervisor.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import jsonpatch
import jsonpointer

from reconciler.resources.key import ResourceKey

Operation = Literal["create", "adopt", "start", "update", "up", "replace", "stop", "delete"]
# Plan order: bring things in (create, adopt), change running ones (the cheap
# in-place moves before replacements), then take things away (stop, delete).
OPERATION_ORDER = {
    "create": 0,
    "adopt": 1,
    "start": 2,
    "update": 3,
    "up": 4,
    "replace": 5,
    "stop": 6,
    "delete": 7,
}
STATE = "state"  # the run state (Container: running | stopped; observed also paused)


@dataclass(frozen=True)
class Change:
    kind: str
    name: str
    operation: Operation
    patch: list[dict[str, Any]]
    desired: dict[str, Any] | None
    observed: dict[str, Any] | None
    forces: tuple[str, ...] = ()
    # Line diffs of changed file contents, keyed by the JSON pointer of the
    # fingerprint they explain (reconciler.diff.text); shown, not part of the change.
    text_diffs: Mapping[str, str] = field(default_factory=dict, compare=False)
    # What it comes after (`dependsOn`, or for a delete the resources that use it):
    # "Network/proxy", "Container/db (healthy)"; shown, not part of the change.
    after: tuple[str, ...] = field(default=(), compare=False)
    # What a person must know before approving (a volume's data: planning/netvol.py); shown.
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def ref(self) -> ResourceKey:
        return ResourceKey(self.kind, self.name)


@dataclass
class Plan:
    commit: str
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Changes per operation: every operation, in plan order, zeros included."""
        out = dict.fromkeys(OPERATION_ORDER, 0)
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
    adopt: bool = False,
) -> Change | None:
    """The change that turns `observed` into `desired`, or None when in sync.

    `adopt`: `observed` is an existing resource the project does not manage
    yet; the change is an `adopt` even when nothing differs, and `forces`
    lists the fields that differ (approving it then replaces the resource).
    """
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
        return Change(kind, name, "adopt", [], desired, observed) if adopt else None
    patch = jsonpatch.make_patch(have, want).patch
    fields = changed_fields(want, have, in_place)
    if adopt:
        return Change(kind, name, "adopt", patch, desired, observed, tuple(sorted(fields)))
    forces = sorted(fields - in_place - {STATE})
    operation = _operation(fields, forces, want)
    if kind == "ComposeStack" and fields == {STATE}:
        operation = "up"  # only services down, missing or outdated: `up -d` again
    return Change(kind, name, operation, patch, desired, observed, tuple(forces))


def changed_fields(
    want: dict[str, Any], have: dict[str, Any], in_place: frozenset[str] = frozenset()
) -> set[str]:
    """The top-level fields that differ; `key.sub` for a map the kind changes per key in place."""
    fields = set()
    for key in want.keys() | have.keys():
        a, b = want.get(key), have.get(key)
        if a == b:
            continue
        nested = any(f.startswith(f"{key}.") for f in in_place)
        if nested and isinstance(a or {}, dict) and isinstance(b or {}, dict):
            a, b = a or {}, b or {}
            fields |= {f"{key}.{sub}" for sub in a.keys() | b.keys() if a.get(sub) != b.get(sub)}
        else:
            fields.add(key)
    return fields


def _operation(fields: set[str], forces: list[str], want: dict[str, Any]) -> Operation:
    """What a managed resource's drift asks for, from the top-level fields it touches."""
    if forces:
        return "replace"
    if fields == {STATE}:
        return "stop" if want.get(STATE) == "stopped" else "start"
    return "update"


def make_plan(
    commit: str,
    desired: Mapping[ResourceKey, dict[str, Any]],
    observed: Mapping[ResourceKey, dict[str, Any] | None],
    *,
    in_place: Mapping[str, frozenset[str]],
    unmanaged: Mapping[ResourceKey, dict[str, Any]] | None = None,
    ignore: Mapping[ResourceKey, list[str]] | None = None,
    protected: set[ResourceKey] | None = None,
    allow_deletes: bool = True,
    observe_only: frozenset[str] = frozenset({"Node"}),
    unchanged: set[ResourceKey] | None = None,
) -> Plan:
    """Diff every resource. `observed` holds managed world resources (None = missing).

    `unmanaged` holds the observed specs of existing resources the project
    does not manage: a desired one among them is adopted; one not desired is
    none of the plan's business (never deleted). `unchanged` names resources
    the caller already knows to be in sync (equal spec hashes); they are not
    compared again.
    """
    plan = Plan(commit)
    ignore = ignore or {}
    unmanaged = unmanaged or {}
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
        have = observed.get(ref)
        adopt = have is None and want is not None and ref in unmanaged
        change = diff_resource(
            kind,
            name,
            want,
            unmanaged[ref] if adopt else have,
            in_place=in_place.get(kind, frozenset()),
            ignore=ignore.get(ref),
            adopt=adopt,
        )
        if change is not None:
            plan.changes.append(change)
    plan.changes.sort(key=lambda c: (OPERATION_ORDER[c.operation], c.kind, c.name))
    return plan
