"""The executor's own guard-rail check, before an action is re-checked or run.

An approved action may predate today's rules (approved under an older rule
set) or carry a spec that got past the planner (a symlink made after the
plan, a planner that could not read the node's filesystem). Before anything
else the executor judges the action's own desired spec with the same rules
the planner uses (`reconciler.drivers.hostpaths`), on the node named at the
action's commit, and refuses it with a `PermanentError` that names the rules,
unless `allowDangerous` at the desired tip names the resource. The Docker
driver checks once more right before it creates the container. Called by
`reconciler.executor.action_runner`.
"""

from __future__ import annotations

from typing import Any

from reconciler.drivers.hostpaths import container_findings_on
from reconciler.errors import GitError, PermanentError
from reconciler.executor.context import DesiredView
from reconciler.planning import Tip
from reconciler.queue.action import Action
from reconciler.resources.guardrails import refusal


def refuse_unsafe(view: DesiredView, action: Action, tip: Tip) -> None:
    """Raise `PermanentError` if the action's Container breaks a guard rail."""
    desired = action.desired
    if action.kind != "Container" or action.operation == "delete":
        return
    if desired is None or action.name in tip.config.allowDangerous:
        return
    found = container_findings_on(_docker_host(view, action, desired), desired)
    if found:
        raise PermanentError(refusal(action.name, found))


def _docker_host(view: DesiredView, action: Action, desired: dict[str, Any]) -> str | None:
    """The node's engine at the action's commit; None (paths judged as written) if unknown."""
    try:
        state = view.source.load(action.commit or None)
        return view.node(state, str(desired.get("node") or "local")).docker_host
    except (GitError, PermanentError):
        return None
