"""Who may write what through `POST /api/events`, against a real uvicorn server.

Found by an adversarial run: a forged `observed.resource` made the supervisor
propose a delete, a forged `node.status ready: false` held every container
of a node in NodeNotReady. Ingest now refuses the project's own event types
(403, audited), and agents get their own scoped, revocable tokens, made with
the real `homelab tokens` command.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import TOKEN, Server, UILab

HOMELAB = str(Path(sys.executable).with_name("homelab"))
FORGED = [
    ("observed.resource", {"kind": "Container", "name": "never-in-git"}, {"spec": {}}),
    ("observed.missing", {"kind": "Container", "name": "web"}, {}),
    ("node.status", {"kind": "Node", "name": "local"}, {"ready": False, "reason": "Forged"}),
    ("resource.condition", {"kind": "Container", "name": "web"}, {"type": "Flapping"}),
    ("action.approved", {"kind": "Container", "name": "web"}, {"action": "x"}),
]


def all_events(root: RuntimeRoot) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for path in sorted(root.events.glob("*/*.jsonl"))
        for line in path.read_bytes().splitlines()
        if line.strip()
    ]


def homelab(root: RuntimeRoot, *args: str) -> str:
    env = {**os.environ, "HOMELAB_OPERATOR": "alice"}
    done = subprocess.run(
        [HOMELAB, *args, "--root", str(root.path)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_agent_token(root: RuntimeRoot, name: str) -> str:
    token = homelab(root, "tokens", "create", name).strip().splitlines()[-1]
    assert token.startswith("hlag_")
    return token


def bearer(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize(("etype", "ref", "data"), FORGED)
def test_forged_observations_are_refused_with_403_and_audited(
    server: Server, lab: UILab, etype: str, ref: dict[str, str], data: dict[str, Any]
) -> None:
    batch = {"agent": "nas", "events": [{"type": etype, "ref": ref, "data": data}]}
    response = server.client().post("/api/events", json=batch)
    assert response.status_code == 403, response.text
    assert "reserved" in response.json()["detail"]
    events = all_events(lab.root)
    assert not any(e["source"] == "ingest-nas" for e in events)
    [audit] = [e for e in events if e["type"] == "ingest.refused"]
    assert audit["source"] == "ui"
    assert audit["data"]["agent"] == "nas" and audit["data"]["types"] == [etype]
    assert audit["data"]["via"] == "bearer" and audit["data"]["address"] == "127.0.0.1"
    assert TOKEN not in orjson.dumps(audit).decode()


def test_an_agent_token_ingests_its_own_events_and_nothing_else(server: Server, lab: UILab) -> None:
    token = new_agent_token(lab.root, "backup-bot")
    [action] = lab.propose()[:1]
    agent = bearer(server, token)
    own = {"agent": "backup-bot", "events": [{"type": "backup.finished", "data": {"ok": True}}]}
    assert agent.post("/api/events", json=own).status_code == 201
    assert agent.post(f"/api/actions/{action.id}/approve").status_code == 403
    assert agent.post(f"/api/actions/{action.id}/reject", json={"reason": "x"}).status_code == 403
    for path in ("/api/actions", "/api/resources", "/api/events", "/metrics", "/queue"):
        assert agent.get(path).status_code == 403, path
    other = {"agent": "nas", "events": [{"type": "backup.finished"}]}
    refused = agent.post("/api/events", json=other)
    assert refused.status_code == 403 and "only as agent 'backup-bot'" in refused.text
    forged = {"agent": "backup-bot", "events": [{"type": "node.status", "data": {}}]}
    assert agent.post("/api/events", json=forged).status_code == 403
    assert lab.queue.path("pending", action.id).exists()  # still waiting for a person
    events = all_events(lab.root)
    [ingested] = [e for e in events if e["source"] == "ingest-backup-bot"]
    assert ingested["type"] == "backup.finished"
    refusals = [e for e in events if e["type"] == "auth.refused"]
    assert {e["data"]["path"] for e in refusals} >= {f"/api/actions/{action.id}/approve"}
    assert all(e["data"]["agent"] == "backup-bot" for e in refusals)
    assert len([e for e in events if e["type"] == "ingest.refused"]) == 2
    assert not any(token in orjson.dumps(e).decode() for e in events)
    assert token not in server.client().get("/api/events", params={"limit": 1000}).text


def test_a_revoked_agent_token_gets_401_at_once(server: Server, lab: UILab) -> None:
    token = new_agent_token(lab.root, "probe")
    agent = bearer(server, token)
    batch = {"agent": "probe", "events": [{"type": "probe.ping"}]}
    assert agent.post("/api/events", json=batch).status_code == 201
    assert "revoked" in homelab(lab.root, "tokens", "revoke", "probe")
    assert agent.post("/api/events", json=batch).status_code == 401
    assert agent.get("/api/actions").status_code == 401
    listing = orjson.loads(homelab(lab.root, "tokens", "list", "--json"))
    assert [(t["name"], t["active"], t["revokedBy"]) for t in listing] == [
        ("probe", False, "alice")
    ]
    fresh = new_agent_token(lab.root, "probe")  # a new token after the revocation works
    assert bearer(server, fresh).post("/api/events", json=batch).status_code == 201
    assert agent.post("/api/events", json=batch).status_code == 401


def test_agent_tokens_are_stored_hashed_and_private(runtime_root: RuntimeRoot) -> None:
    token = new_agent_token(runtime_root, "nas")
    path = runtime_root.secrets / "agent_tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(runtime_root.secrets.stat().st_mode) == 0o700
    assert token not in path.read_text()
    assert token[5:] not in path.read_text()
    assert "nas" in homelab(runtime_root, "tokens", "list")
    assert token not in homelab(runtime_root, "tokens", "list", "--json")
    created = [e for e in all_events(runtime_root) if e["type"] == "token.created"]
    assert [(e["data"]["agent"], e["data"]["actor"]) for e in created] == [("nas", "alice")]
    assert token not in orjson.dumps(created).decode()
    again = subprocess.run(
        [HOMELAB, "tokens", "create", "nas", "--root", str(runtime_root.path)],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 1 and "revoke nas" in again.stderr
    assert "Traceback" not in again.stderr


def test_the_operator_token_may_still_ingest_under_any_agent_name(
    server: Server, lab: UILab
) -> None:
    batch = {"agent": "legacy-script", "events": [{"type": "backup.finished"}]}
    assert server.client().post("/api/events", json=batch).status_code == 201
    assert any(e["source"] == "ingest-legacy-script" for e in all_events(lab.root))
