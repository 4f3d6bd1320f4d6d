"""The operator's resource actions over real HTTP: propose again, clear flap, not-ready approval.

Real git, real root, the real supervisor's planner, flap guard and queue,
the UI on uvicorn, a browser-like session client. Each action needs the
session and its CSRF token, writes its audit event under `ui` with who and
from where, and changes the state the supervisor reads; refused requests
change nothing.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import orjson

from reconciler.atomic_files import atomic_write_json
from reconciler.queue.flap_marks import read_flap_state
from reconciler.queue.reproposals import reopened
from reconciler.resources.key import ResourceKey
from reconciler.supervisor.flap import FlapGuard
from reconciler.supervisor.service import Supervisor
from reconciler.world import new_world_doc, world_path
from tests.api.conftest import Server, UILab, session_login

WEB = ResourceKey("Container", "web")


def _csrf(client: httpx.Client, path: str) -> str:
    match = re.search(r'name="_csrf" value="([0-9a-f]+)"', client.get(path).text)
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def _ui_events(lab: UILab, type_: str) -> list[dict[str, Any]]:
    out = []
    for path in lab.root.events.glob("*/ui.jsonl"):
        for line in path.read_bytes().splitlines():
            event = orjson.loads(line)
            if event["type"] == type_:
                out.append(event)
    return out


def _notice(response: httpx.Response) -> str:
    return httpx.URL(response.headers["location"]).params.get("notice", "")


def test_propose_again_needs_the_session_and_csrf_then_the_supervisor_proposes_again(
    server: Server, lab: UILab
) -> None:
    supervisor = Supervisor(lab.repo.path, lab.root)
    try:
        supervisor.reconcile(force=True)
        web = next(a for a in lab.queue.actions("pending") if a.name == "web")
        alice = session_login(server)
        reject = alice.post(
            f"/queue/{web.id}/reject",
            data={"_csrf": _csrf(alice, "/queue"), "reason": "not today", "back": "/queue"},
        )
        assert reject.status_code == 303
        supervisor.reconcile(force=True)
        path = "/resources/Container/web/propose-again"
        assert httpx.post(server.url + path).status_code == 401
        assert alice.post(path, data={"_csrf": "0" * 64}).status_code == 403
        assert reopened(lab.root) == frozenset()
        assert _ui_events(lab, "operator.propose_again") == []

        page = alice.get("/resources/Container/web").text
        assert 'data-testid="propose-again"' in page
        done = alice.post(path, data={"_csrf": _csrf(alice, "/resources/Container/web")})
        assert done.status_code == 303
        assert "propose Container/web again" in _notice(done)
        assert reopened(lab.root) == frozenset({web.id})
        [event] = _ui_events(lab, "operator.propose_again")
        assert event["data"]["action"] == web.id
        assert event["data"]["actor"] == "alice"
        assert event["data"]["address"] == "127.0.0.1"
        supervisor.reconcile(force=True)
        again = next(a for a in lab.queue.actions("pending") if a.name == "web")
        assert again.id != web.id and again.patch == web.patch
        twice = alice.post(path, data={"_csrf": _csrf(alice, "/resources/Container/web")})
        assert "Not changed" in _notice(twice)  # something is live for it now
    finally:
        supervisor.events.close()


def test_clear_flap_lifts_the_mark_with_the_operators_condition_event(
    server: Server, lab: UILab
) -> None:
    FlapGuard(lab.root).mark(WEB, "sha256:x", [{"op": "replace", "path": "/image"}], ["a1"])
    alice = session_login(server)
    path = "/resources/Container/web/clear-flap"
    assert httpx.post(server.url + path).status_code == 401
    assert alice.post(path, data={}).status_code == 403
    assert "Container/web" in read_flap_state(lab.root)["flapping"]
    done = alice.post(path, data={"_csrf": _csrf(alice, "/queue")})
    assert done.status_code == 303
    assert "Cleared the flap mark of Container/web" in _notice(done)
    assert read_flap_state(lab.root)["flapping"] == {}
    [event] = [e for e in _ui_events(lab, "resource.condition") if e["data"]["type"] == "Flapping"]
    assert event["ref"] == {"kind": "Container", "name": "web"}
    assert (event["data"]["status"], event["data"]["actor"]) == ("False", "alice")
    again = alice.post(path, data={"_csrf": _csrf(alice, "/queue")})
    assert _notice(again) == "Not changed: Container/web is not flapping"


def test_approving_on_a_node_that_does_not_answer_needs_the_confirmation(
    server: Server, lab: UILab
) -> None:
    [web, _db] = sorted(lab.propose(), key=lambda a: a.name != "web")
    node = new_world_doc("Node", "local")
    node["status"].update(
        exists=True,
        health="Unhealthy",
        conditions=[
            {
                "type": "Ready",
                "status": "False",
                "reason": "EngineUnreachable",
                "message": "connection refused",
            }
        ],
    )
    atomic_write_json(world_path(lab.root, "Node", "local"), node)
    alice = session_login(server)

    def marked() -> bool:
        return "node local is not ready" in alice.get(f"/actions/{web.id}").text

    from tests.api.conftest import wait_for

    wait_for(marked)
    csrf = _csrf(alice, f"/actions/{web.id}")
    refused = alice.post(f"/queue/{web.id}/approve", data={"_csrf": csrf, "back": "/queue"})
    assert refused.status_code == 303
    assert _notice(refused).startswith("Not approved: node local is not ready")
    assert web.id in {a.id for a in lab.queue.actions("pending")}
    approved = alice.post(
        f"/queue/{web.id}/approve",
        data={"_csrf": csrf, "back": "/queue", "confirm_not_ready": "yes"},
    )
    assert _notice(approved) == f"Approved {web.id[:12]}"
    assert [a.id for a in lab.queue.actions("approved")] == [web.id]
