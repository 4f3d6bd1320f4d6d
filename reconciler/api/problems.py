"""What is wrong right now, for every page: manifest errors and nodes that do not answer.

`manifest_problems` reads the supervisor's status (`manifestErrors` of the
desired commit, and which resources are Invalid) for the banner every page
shows and for the errors page. `not_ready_nodes` is each Node whose Ready
condition is False (its engine does not answer, as the collector reported),
and `not_ready_actions` the live actions of Docker-backed resources on such
a node, which the pages mark and whose approval asks for a confirmation.
Pure reads over `RuntimeViews`, built once per views version. Called by the
page controllers and `reconciler.api.services`.
"""

from __future__ import annotations

from typing import Any

from reconciler.api import schemas as s
from reconciler.api.views import RuntimeViews
from reconciler.queue.action import Action
from reconciler.resources.key import ResourceKey

DOCKER_KINDS = ("Container", "ComposeStack", "Network", "Volume")


def _problem(raw: Any) -> s.ManifestProblem | None:
    if not isinstance(raw, dict):
        return None
    line, column = raw.get("line"), raw.get("column")
    return s.ManifestProblem(
        path=str(raw.get("path") or ""),
        line=line if isinstance(line, int) else 1,
        column=column if isinstance(column, int) else 1,
        field=str(raw.get("field") or ""),
        message=str(raw.get("message") or ""),
    )


def manifest_problems(views: RuntimeViews) -> s.ManifestProblems:
    """The desired commit's manifest errors and its Invalid resources."""

    def build() -> s.ManifestProblems:
        sup = views.supervisor
        raw = sup.get("manifestErrors")
        errors = [p for p in map(_problem, raw if isinstance(raw, list) else []) if p]
        resources = sup.get("resources")
        invalid = sorted(
            key
            for key, entry in (resources if isinstance(resources, dict) else {}).items()
            if isinstance(entry, dict) and entry.get("status") == "Invalid"
        )
        commit = sup.get("commit")
        return s.ManifestProblems(
            commit=commit if isinstance(commit, str) else None, errors=errors, invalid=invalid
        )

    problems: s.ManifestProblems = views.cached("manifest_problems", build)
    return problems


def node_readiness(views: RuntimeViews, node: str) -> s.NodeReadiness:
    doc = views.world.get(ResourceKey("Node", node))
    ready = doc.status.condition("Ready") if doc is not None else None
    if ready is None:
        return s.NodeReadiness(name=node, ready=None, message="not observed yet")
    detail = ": ".join(x for x in (ready.reason, ready.message) if x)
    return s.NodeReadiness(name=node, ready=ready.status != "False", message=detail)


def not_ready_nodes(views: RuntimeViews) -> dict[str, str]:
    """Node name -> why it is not ready, for every Node whose engine does not answer."""

    def build() -> dict[str, str]:
        out = {}
        for ref in views.world:
            if ref.kind == "Node":
                readiness = node_readiness(views, ref.name)
                if readiness.ready is False:
                    out[ref.name] = readiness.message or "engine unreachable"
        return out

    nodes: dict[str, str] = views.cached("not_ready_nodes", build)
    return nodes


def node_of(spec: dict[str, Any] | None) -> str:
    return str((spec or {}).get("node") or "local")


def action_node(action: Action) -> str | None:
    """The node an action acts on, for the Docker-backed kinds (else None)."""
    if action.kind not in DOCKER_KINDS:
        return None
    return node_of(action.desired or action.observed)


def not_ready_actions(views: RuntimeViews) -> dict[str, str]:
    """Live action id -> "node X is not ready (why)" for actions on a node that does not answer."""

    def build() -> dict[str, str]:
        nodes = not_ready_nodes(views)
        if not nodes:
            return {}
        out = {}
        for state in ("pending", "approved"):
            for action in views.queue[state].values():
                node = action_node(action)
                if node in nodes:
                    out[action.id] = f"node {node} is not ready ({nodes[node]})"
        return out

    marked: dict[str, str] = views.cached("not_ready_actions", build)
    return marked
