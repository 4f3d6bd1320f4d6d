"""`POST /api/hooks/git` against the real uvicorn-served app, with the providers' own shapes.

Payloads are the push bodies GitHub, Gitea/Forgejo and GitLab send
(tests/data/hooks/), signed the way each signs them. A valid one makes the
fetch request file appear at once and leaves `source.hook.accepted`; an
unsigned, wrongly signed, replayed or oversized one is refused (401/413),
leaves no request and leaves `source.hook.refused`.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from reconciler.api.config import UISettings
from reconciler.api.hooks import MAX_BODY_BYTES, PER_ADDRESS
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.fetch_signal import fetch_request_path, take_fetch_request
from tests.api.conftest import TOKEN, Server

DATA = Path(__file__).resolve().parents[1] / "data" / "hooks"
SECRET = b"hook-secret-8d1f0c5e2b7a4c19a3d6e0f2"
HOOK = "/api/hooks/git"
PORTS = range(18600, 18650)  # this suite's share of the helper's port range


def _port() -> int:
    """A free port of the range, tried in random order (a closing server may hold one)."""
    for port in random.sample(PORTS, len(PORTS)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 18600-18649")


@pytest.fixture
def root(runtime_root: RuntimeRoot) -> RuntimeRoot:
    (runtime_root.secrets / "git-webhook").write_bytes(SECRET + b"\n")
    return runtime_root


@pytest.fixture
def server(root: RuntimeRoot) -> Iterator[Server]:
    srv = Server(UISettings(root=root, port=_port(), token=TOKEN)).start()
    yield srv
    srv.close()


def body_of(name: str) -> bytes:
    return (DATA / f"{name}-push.json").read_bytes()


def sign(body: bytes, secret: bytes = SECRET) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def github(body: bytes, *, secret: bytes = SECRET, delivery: str | None = None) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/7d3d2b1",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-GitHub-Hook-ID": "292430182",
        "X-Hub-Signature": "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest(),
        "X-Hub-Signature-256": "sha256=" + sign(body, secret),
    }


def gitea(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Gitea-Event": "push",
        "X-Gitea-Event-Type": "push",
        "X-Gitea-Delivery": str(uuid.uuid4()),
        "X-Gitea-Signature": sign(body),
        "X-Gogs-Event": "push",
        "X-Gogs-Delivery": str(uuid.uuid4()),
        "X-Gogs-Signature": sign(body),
    }


def forgejo(body: bytes) -> dict[str, str]:
    delivery = str(uuid.uuid4())
    signature = sign(body)
    return {
        "Content-Type": "application/json",
        "X-Forgejo-Event": "push",
        "X-Forgejo-Event-Type": "push",
        "X-Forgejo-Delivery": delivery,
        "X-Forgejo-Signature": signature,
        "X-Gitea-Event": "push",
        "X-Gitea-Delivery": delivery,
        "X-Gitea-Signature": signature,
        "X-Gogs-Event": "push",
        "X-Gogs-Delivery": delivery,
        "X-Gogs-Signature": signature,
    }


def gitlab(token: str = SECRET.decode()) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitLab/17.6.0",
        "X-Gitlab-Event": "Push Hook",
        "X-Gitlab-Token": token,
        "X-Gitlab-Instance": "https://gitlab.example.invalid",
        "X-Gitlab-Webhook-UUID": "b8b3a1a2-36a1-4cde-bf9a-f3d1d5b6b4c2",
        "X-Gitlab-Event-UUID": str(uuid.uuid4()),
        "Idempotency-Key": str(uuid.uuid4()),
    }


def post(server: Server, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(server.url + HOOK, content=body, headers=headers, timeout=10)


def hook_events(root: RuntimeRoot, type: str) -> list[dict[str, Any]]:
    return [
        event
        for path in sorted(root.events.glob("*/ui.jsonl"))
        for line in path.read_bytes().splitlines()
        if line.strip() and (event := orjson.loads(line))["type"] == type
    ]


@pytest.mark.parametrize(
    ("provider", "payload", "headers"),
    [
        ("github", "github", lambda b: github(b)),
        ("gitea", "gitea", gitea),
        ("forgejo", "gitea", forgejo),
        ("gitlab", "gitlab", lambda b: gitlab()),
    ],
)
def test_a_valid_push_hook_asks_for_a_fetch_at_once_and_is_audited(
    server: Server, root: RuntimeRoot, provider: str, payload: str, headers: Any
) -> None:
    body = body_of(payload)
    response = post(server, body, headers(body))
    assert response.status_code == 202, response.text
    assert response.json() == {
        "accepted": True,
        "provider": provider,
        "event": "Push Hook" if provider == "gitlab" else "push",
        "fetch": True,
    }
    assert fetch_request_path(root).exists()  # written before the answer
    assert take_fetch_request(root) == f"webhook: {provider} {response.json()['event']}"
    [accepted] = hook_events(root, "source.hook.accepted")
    doc = orjson.loads(body)
    assert accepted["data"]["provider"] == provider
    assert accepted["data"]["ref"] == "refs/heads/main"
    assert accepted["data"]["after"] == doc["after"]
    assert accepted["data"]["fetch"] is True
    assert accepted["data"]["address"] == "127.0.0.1"
    assert SECRET.decode() not in orjson.dumps(accepted).decode()


def _refused(root: RuntimeRoot) -> list[dict[str, Any]]:
    return [e["data"] for e in hook_events(root, "source.hook.refused")]


def test_bad_and_missing_signatures_are_refused_and_audited(
    server: Server, root: RuntimeRoot
) -> None:
    body = body_of("github")
    wrong = github(body, secret=b"not-the-secret")
    tampered = github(body)
    unsigned = {k: v for k, v in github(body).items() if not k.startswith("X-Hub-Signature")}
    sha1_only = {k: v for k, v in github(body).items() if k != "X-Hub-Signature-256"}
    gitea_wrong = {**gitea(body_of("gitea")), "X-Gitea-Signature": "0" * 64}
    gitlab_wrong = gitlab("guess")
    cases = [
        (body, wrong, "does not match"),
        (body.replace(b"web: bump", b"web: drop"), tampered, "does not match"),
        (body, unsigned, "unsigned: no X-Hub-Signature-256"),
        (body, sha1_only, "only the SHA-1"),
        (body_of("gitea"), gitea_wrong, "X-Gitea-Signature does not match"),
        (body_of("gitlab"), gitlab_wrong, "X-Gitlab-Token is not the shared secret"),
        (body, {"Content-Type": "application/json"}, "unsigned: no GitHub"),
    ]
    for sent, headers, why in cases:
        response = post(server, sent, headers)
        assert response.status_code == 401, (why, response.text)
        assert why in response.json()["detail"]
    assert not fetch_request_path(root).exists()
    refused = _refused(root)
    assert [r["status"] for r in refused] == [401] * len(cases)
    assert [why in r["reason"] for r, (_, _, why) in zip(refused, cases, strict=True)] == [
        True
    ] * len(cases)
    assert [r["provider"] for r in refused] == [
        "github",
        "github",
        "github",
        "github",
        "gitea",
        "gitlab",
        None,
    ]
    assert not hook_events(root, "source.hook.accepted")
    text = b"".join(p.read_bytes() for p in root.events.glob("*/*.jsonl")).decode()
    assert SECRET.decode() not in text and "guess" not in text


def test_a_replayed_delivery_or_body_is_refused(server: Server, root: RuntimeRoot) -> None:
    body = body_of("github")
    first = github(body, delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert post(server, body, first).status_code == 202
    assert take_fetch_request(root) is not None
    again = post(server, body, first)
    assert again.status_code == 401 and "delivery id was accepted already" in again.text
    # The signature covers the body only: a new delivery header does not make it new.
    renamed = post(server, body, github(body))
    assert renamed.status_code == 401 and "exact body was accepted already" in renamed.text
    assert not fetch_request_path(root).exists()
    assert [r["reason"] for r in _refused(root)] == [
        "replayed: this delivery id was accepted already",
        "replayed: this exact body was accepted already",
    ]
    # A new push (a new body) from the same host is welcome.
    newer = body.replace(b"web: bump the image", b"web: bump it again")
    assert post(server, newer, github(newer)).status_code == 202


def test_the_replay_ledger_survives_a_restart(root: RuntimeRoot) -> None:
    body = body_of("gitea")
    headers = gitea(body)
    first = Server(UISettings(root=root, port=_port(), token=TOKEN)).start()
    try:
        assert post(first, body, headers).status_code == 202
    finally:
        first.close()
    second = Server(UISettings(root=root, port=_port(), token=TOKEN)).start()
    try:
        assert post(second, body, headers).status_code == 401
    finally:
        second.close()


def test_an_oversized_body_is_refused_with_413_and_audited(
    server: Server, root: RuntimeRoot
) -> None:
    doc = orjson.loads(body_of("github"))
    doc["padding"] = "x" * MAX_BODY_BYTES
    body = orjson.dumps(doc)
    response = post(server, body, github(body))
    assert response.status_code == 413
    assert f"over {MAX_BODY_BYTES} bytes" in response.json()["detail"]
    assert not fetch_request_path(root).exists()
    [refused] = _refused(root)
    assert refused["status"] == 413 and refused["provider"] == "github"


def test_hooks_are_rate_limited_and_the_flood_is_audited_once(
    server: Server, root: RuntimeRoot
) -> None:
    statuses = []
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(PER_ADDRESS + 10):
            body = orjson.dumps({"ref": "refs/heads/main", "n": i})
            statuses.append(client.post(HOOK, content=body, headers=github(body)).status_code)
    assert statuses == [202] * PER_ADDRESS + [429] * 10
    refused = _refused(root)
    assert [r["status"] for r in refused] == [429]  # the other nine are counted, not logged
    assert len(hook_events(root, "source.hook.accepted")) == PER_ADDRESS


def test_no_login_is_needed_for_the_hook_and_it_opens_nothing_else(
    server: Server, root: RuntimeRoot
) -> None:
    body = body_of("gitlab")
    assert post(server, body, gitlab()).status_code == 202
    # Every other route still needs the operator, with or without the hook's secret.
    assert httpx.get(server.url + HOOK).status_code == 405  # routed before any middleware
    approve = server.url + "/api/actions/x/approve"
    assert httpx.post(approve, content=body, headers=gitlab()).status_code == 401
    assert httpx.get(server.url + "/api/actions", headers=gitlab()).status_code == 401
    events = {"agent": "x", "events": [{"type": "backup.finished"}]}
    assert httpx.post(server.url + "/api/events", json=events, headers=gitlab()).status_code == 401
    # What the hook wrote: the fetch request, its ledger and its audit event; no action.
    assert sorted(p.name for p in (root.state / "source").iterdir()) == [
        "fetch-request.json",
        "hook-deliveries.json",
    ]
    assert not any(root.queue.rglob("*.json"))


def test_a_ping_is_accepted_without_a_fetch(server: Server, root: RuntimeRoot) -> None:
    body = b'{"zen": "Keep it logically awesome.", "hook_id": 292430182}'
    headers = {**github(body), "X-GitHub-Event": "ping"}
    response = post(server, body, headers)
    assert response.status_code == 202 and response.json()["fetch"] is False
    assert not fetch_request_path(root).exists()
    [accepted] = hook_events(root, "source.hook.accepted")
    assert accepted["data"]["event"] == "ping" and accepted["data"]["fetch"] is False


def test_without_a_secret_every_hook_is_refused_and_a_new_secret_needs_no_restart(
    server: Server, root: RuntimeRoot
) -> None:
    (root.secrets / "git-webhook").unlink()
    body = body_of("github")
    response = post(server, body, github(body))
    assert response.status_code == 401 and "ROOT/secrets/git-webhook" in response.text
    (root.secrets / "git-webhook").write_bytes(b"rotated-secret-0a9c")
    assert post(server, body, github(body, secret=SECRET)).status_code == 401
    assert post(server, body, github(body, secret=b"rotated-secret-0a9c")).status_code == 202


def test_github_form_encoded_payloads_are_read(server: Server, root: RuntimeRoot) -> None:
    from urllib.parse import urlencode

    body = urlencode({"payload": body_of("github").decode()}).encode()
    headers = {**github(body), "Content-Type": "application/x-www-form-urlencoded"}
    assert post(server, body, headers).status_code == 202
    [accepted] = hook_events(root, "source.hook.accepted")
    assert accepted["data"]["after"] == "59b20b8d5c6ff8d09518454d4dd8b7b30f095ab5"


def test_a_root_that_cannot_be_written_is_a_507_and_the_server_keeps_serving(
    server: Server, root: RuntimeRoot
) -> None:
    (root.state / "source").write_text("not a folder")  # every write under it now fails
    body = body_of("github")
    response = post(server, body, github(body))
    assert response.status_code == 507
    assert "the runtime root cannot be written" in response.json()["detail"]
    (root.state / "source").unlink()
    again = post(server, body, github(body))
    assert again.status_code == 202, again.text  # nothing was recorded the first time
    assert fetch_request_path(root).exists()
