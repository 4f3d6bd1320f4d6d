"""Action documents: what the supervisor proposes and the executor applies.

An action is plain JSON: a content-derived `id`, the resource (`kind`,
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

import orjson

from reconciler.diff import Change, change_to_json, render_change


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
) -> dict[str, Any]:
    """Build the action document for one planned change."""
    plan_id = action_id(change.kind, change.name, change.operation, change.patch, basis)
    return {
        "id": generation_id(plan_id, generation),
        "planId": plan_id,
        "generation": generation,
        **change_to_json(change),
        "manifest": manifest,
        "commit": commit,
        "basis": basis,
        "summary": render_change(change),
        "autoApprove": auto_approve,
        "createdAt": now_iso(),
        "outcome": None,
    }
