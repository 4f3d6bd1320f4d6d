"""Action documents: what the supervisor proposes and the executor applies.

An action is an `Action` (a frozen msgspec struct, parsed once where its
file is read) stored as plain JSON: a content-derived `id`, the resource (`kind`,
`name`), the `operation`, the RFC 6902 `patch`, the full comparable
`desired` spec and the validated `manifest`, the `observed` spec and its
`basis` (hash of the world's observed spec the plan was computed from), the
desired `commit`, a human `summary`, timestamps, and later `outcome`. The id
hashes resource, operation, patch and basis (not the commit), so re-planning
the same drift, even at a later commit that did not touch this resource,
yields the same id. Pure; used by the supervisor, queue, executor and UI.

Ids are one-shot: once an action is done, failed or superseded, the same
drift seen again (reverted by hand, or desired state moved back) is the next
*generation* of that plan: `generation_id(plan_id, n)`, still derived only
from content, so restarts and re-plans find the same live action instead of
adding one. `planId` (generation 0's id) ties the generations together.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson

from reconciler.diff import Change, render_change
from reconciler.diff.plan import Operation
from reconciler.resources.key import ResourceKey
from reconciler.typed_json import Codec

UNSET = msgspec.UNSET


class InvalidAction(ValueError):
    """A queue file that is not an action document (the message says which field)."""


class HistoryEntry(msgspec.Struct, frozen=True):
    """One move of an action through the queue: to `state`, when, by whom, why."""

    state: str
    at: str
    actor: str
    reason: str | None = None


class Action(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """An action document, typed; the JSON on disk is `to_json(action)`.

    Frozen: a change (a queue move, an outcome) is a copy made with `evolve`.
    `history` and `address` are absent from the file until the first move
    (and the first decision by a person), exactly as before the type existed.
    """

    id: str
    plan_id: str = ""
    generation: int = 0
    kind: str
    name: str
    operation: Operation
    patch: list[dict[str, Any]] = []
    desired: dict[str, Any] | None = None
    observed: dict[str, Any] | None = None
    forces_replacement: list[str] = []
    manifest: dict[str, Any] | None = None
    commit: str = ""
    basis: str = ""
    summary: str = ""
    auto_approve: bool = False
    created_at: str = ""
    outcome: dict[str, Any] | None = None
    history: tuple[HistoryEntry, ...] | msgspec.UnsetType = UNSET
    address: str | msgspec.UnsetType | None = UNSET
    # Line diffs of changed file contents (`Change.text_diffs`): shown, never part
    # of the id, and absent from the file when there are none.
    content_diff: dict[str, str] | msgspec.UnsetType = UNSET
    # What the action runs after (`Change.after`): shown; the executor's waiting
    # reads the manifest's dependsOn. Absent from the file when there is nothing.
    after: list[str] | msgspec.UnsetType = UNSET

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.name)

    @property
    def moves(self) -> tuple[HistoryEntry, ...]:
        """The history, empty before the first move."""
        return self.history if self.history is not UNSET else ()

    @property
    def spec(self) -> dict[str, Any]:
        """The spec the action is about: desired, or for a delete what was observed."""
        return self.desired or self.observed or {}

    def evolve(self, **changes: Any) -> Action:
        return msgspec.structs.replace(self, **changes)

    def change(self) -> Change:
        """The planned change this action carries (for rendering its diff again)."""
        return Change(
            self.kind,
            self.name,
            self.operation,
            self.patch,
            self.desired,
            self.observed,
            tuple(self.forces_replacement),
            text_diffs=self.content_diff if self.content_diff is not UNSET else {},
            after=tuple(self.after) if self.after is not UNSET else (),
        )


_CODEC = Codec(Action, InvalidAction)
action_from_json = _CODEC.from_json  # an action file's bytes; InvalidAction names what is wrong
action_from_dict = _CODEC.from_dict
action_to_dict = _CODEC.to_dict  # the plain JSON object (what the file and the API hold)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def action_id(kind: str, name: str, operation: str, patch: Any, basis: str) -> str:
    payload = orjson.dumps([kind, name, operation, patch, basis], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(payload).hexdigest()[:20]


def generation_id(plan_id: str, generation: int) -> str:
    """The id of the `generation`-th proposal of one plan (0 = the plan id itself)."""
    if generation == 0:
        return plan_id
    return hashlib.sha256(f"{plan_id}#{generation}".encode()).hexdigest()[:20]


def new_action(
    change: Change,
    *,
    commit: str,
    basis: str,
    manifest: dict[str, Any] | None,
    auto_approve: bool = False,
    generation: int = 0,
) -> Action:
    """Build the action for one planned change."""
    plan_id = action_id(change.kind, change.name, change.operation, change.patch, basis)
    return Action(
        id=generation_id(plan_id, generation),
        plan_id=plan_id,
        generation=generation,
        kind=change.kind,
        name=change.name,
        operation=change.operation,
        patch=change.patch,
        desired=change.desired,
        observed=change.observed,
        forces_replacement=list(change.forces),
        manifest=manifest,
        commit=commit,
        basis=basis,
        summary=render_change(change),
        auto_approve=auto_approve,
        created_at=now_iso(),
        outcome=None,
        content_diff=dict(change.text_diffs) if change.text_diffs else UNSET,
        after=list(change.after) if change.after else UNSET,
    )
