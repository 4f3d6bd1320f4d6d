"""The stale-plan decision: does an approved action still hold at the desired tip?

`Tip` is the desired state at the current tip as the executor sees it
(comparable specs, invalid resources, repository config), built with the
same `desired_specs` the supervisor planned with; `stale_reason` compares
an action with it and with the world's current basis. Pure; called by the
executor before it runs an action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.queue.action import Action
from reconciler.resources.key import ResourceKey
from reconciler.resources.repo import RepoConfig


@dataclass(frozen=True)
class Tip:
    """Desired state at the current tip: comparable specs and invalid resources."""

    commit: str
    desired: dict[ResourceKey, dict[str, Any]]
    invalid: set[ResourceKey]
    config: RepoConfig


def stale_reason(
    action: Action, tip: Tip, world_basis: str | None, *, check_world: bool = True
) -> str | None:
    """Why the action no longer holds, or None. Pure."""
    ref = action.key
    at = tip.commit[:12]
    if ref in tip.invalid:
        return f"stale plan: {ref[0]}/{ref[1]} is invalid at {at}"
    want = tip.desired.get(ref)
    if action.operation == "delete":
        if want is not None:
            return f"stale plan: {ref[0]}/{ref[1]} is desired again at {at}"
    elif want is None:
        return f"stale plan: {ref[0]}/{ref[1]} is no longer desired at {at}"
    elif want != action.desired:
        return f"stale plan: the desired spec of {ref[0]}/{ref[1]} changed at {at}"
    if check_world and world_basis is not None and world_basis != action.basis:
        return (
            f"stale plan: the observed state of {ref[0]}/{ref[1]} changed "
            f"(basis {action.basis or 'missing'} -> {world_basis or 'missing'})"
        )
    return None
