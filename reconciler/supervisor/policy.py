"""Approval and prune policy: pure decisions the supervisor takes per change.

Approval is manual by default. A resource opts into auto-approval with
`spec.policy.autoApprove: true` in its manifest; that covers every operation
on a desired resource: create, adopt, start, update, replace and stop (an
adopt with differences replaces, which autoApprove covers too). A delete
(prune) has no manifest left to carry a policy, so it is auto-approved only
when the repository's `homelab.yaml` says `autoApprovePrune: true`. A
re-proposal of a change that failed is never auto-approved, so a broken
change cannot loop unattended. Deletes are proposed at all only from a fully
observed world (`deletes_gate`): the observer caught up and every node's
collector finished a full listing since it started. Pure; called by `reconciler.supervisor.service`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reconciler.resources.repo import RepoConfig


def auto_approves(
    operation: str,
    manifest: dict[str, Any] | None,
    config: RepoConfig,
    *,
    after_failure: bool = False,
) -> bool:
    """Whether an action with this operation may skip the person."""
    if after_failure:
        return False
    if operation == "delete":
        return config.autoApprovePrune
    policy = ((manifest or {}).get("spec") or {}).get("policy") or {}
    return bool(policy.get("autoApprove", False))


@dataclass(frozen=True)
class Gate:
    """Whether deletes may be proposed now, and why not."""

    open: bool
    reason: str


def _node_problem(name: str, node: Any) -> str | None:
    if not isinstance(node, dict):
        return f"node {name}: malformed status"
    started, listed = node.get("collectorStartedAt"), node.get("lastFullListingAt")
    if not listed:
        return f"node {name}: no full listing yet"
    if not isinstance(started, str) or not isinstance(listed, str) or listed < started:
        return f"node {name}: no full listing since the collector started"
    return None


def deletes_gate(observer_status: dict[str, Any] | None) -> Gate:
    """Open only when the observer says the world is completely observed.

    `observer_status` is `state/observer_status.json` (None when absent or
    unreadable): a missing file, a lagging observer, no node at all, or a
    node whose collector has not completed a full listing since start-up
    keeps deletes withheld. Timestamps are ISO-8601 UTC strings of one
    format, so they compare as text.
    """
    if observer_status is None:
        return Gate(False, "observer status not available yet")
    if observer_status.get("caughtUp") is not True:
        return Gate(False, "observer has not caught up with the event log")
    nodes = observer_status.get("nodes")
    if observer_status.get("dockerCollectors") is False and not nodes:
        # The observer watches no engine (the Compose layout): its world is the
        # fold of the executor's reports, complete once caught up. A wiped world
        # only loses documents, so it cannot turn into a prune.
        return Gate(True, "world observed from the executor's reports")
    if not isinstance(nodes, dict) or not nodes:
        return Gate(False, "no node has reported a full listing")
    for name in sorted(nodes):
        problem = _node_problem(name, nodes[name])
        if problem:
            return Gate(False, problem)
    return Gate(True, "world fully observed")
