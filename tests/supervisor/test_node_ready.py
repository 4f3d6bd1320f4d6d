"""Docker-backed resources on a node whose engine does not answer wait, visibly."""

from __future__ import annotations

from typing import Any

from reconciler.events.log import EventLog
from reconciler.observer.world_builder import WorldBuilder


def report_node(lab: Any, ready: bool) -> None:
    """What the observer's node collector reports, folded by the real observer fold."""
    log = EventLog(lab.root, "observer")
    data = {
        "ready": ready,
        "reason": "EngineReachable" if ready else "EngineUnreachable",
        "message": "" if ready else "connection refused",
    }
    log.append("node.status", ("Node", "local"), data)
    log.close()
    folder = WorldBuilder(lab.root, durable=False)
    folder.open()
    folder.tick()
    folder.unlock()


def test_no_action_while_the_node_is_not_ready_then_proposed_when_it_is(lab: Any) -> None:
    report_node(lab, ready=False)
    lab.container("web")
    lab.commit("add web")
    status = lab.reconcile()
    assert lab.actions("pending") == []
    web = status["resources"]["Container/web"]
    assert web["status"] == "NodeNotReady"
    assert web["errors"] == ["node local is not ready (EngineUnreachable: connection refused)"]
    [cond] = [e for e in lab.events("resource.condition") if e["data"]["type"] == "NodeNotReady"]
    assert cond["ref"] == {"kind": "Container", "name": "web"}
    assert cond["data"]["status"] == "True"

    report_node(lab, ready=True)
    status = lab.reconcile()
    action = lab.only("pending")
    assert (action.name, action.operation) == ("web", "create")
    assert status["resources"]["Container/web"]["status"] == "Pending"
    flips = [
        e["data"]["status"]
        for e in lab.events("resource.condition")
        if e["data"]["type"] == "NodeNotReady"
    ]
    assert flips == ["True", "False"]


def test_files_still_apply_when_the_engine_is_down(lab: Any) -> None:
    report_node(lab, ready=False)
    lab.repo.write(
        "manifests/motd.yaml",
        """\
        apiVersion: homelab.reconciler/v1alpha1
        kind: File
        metadata: {name: motd}
        spec: {path: /srv/homelab/motd, content: hi}
        """,
    )
    lab.commit("add a file")
    lab.reconcile()
    action = lab.only("pending")
    assert (action.kind, action.operation) == ("File", "create")
