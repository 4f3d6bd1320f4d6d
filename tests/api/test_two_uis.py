"""Two UI processes on one runtime root: decisions are atomic, the loser says "already approved".

Two real `homelab run ui` processes (uvicorn each) serve the same root. For
many rounds a fresh action is proposed and both approve it at the same
moment (a barrier releases the two requests), through the JSON API in some
rounds and the page form in others. Exactly one answers success; the other
answers 409 (API) or a "Not changed: ... already approved" notice (page),
never 500; the action is approved once, with exactly one `action.approved`
event, written by the process that won.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import orjson
import pytest

from reconciler.diff import diff_resource
from reconciler.events.log import EventLog
from reconciler.queue import ActionQueue, new_action
from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import free_port, wait_for

ROUNDS = 24


class UIProcess:
    def __init__(self, root: RuntimeRoot) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        homelab = str(Path(sys.executable).parent / "homelab")
        self.proc = subprocess.Popen(
            [homelab, "run", "ui", "--root", str(root.path), "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "LITESTAR_WARN_IMPLICIT_SYNC_TO_THREAD": "0"},
        )

        def up() -> bool:
            assert self.proc.poll() is None, self.proc.stderr.read() if self.proc.stderr else ""
            try:
                return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 30)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def two_uis(runtime_root: RuntimeRoot) -> Iterator[tuple[UIProcess, UIProcess]]:
    first = UIProcess(runtime_root)  # creates the token file the second one reads
    second = UIProcess(runtime_root)
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()


def _login(ui: UIProcess, token: str, name: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=ui.url, timeout=20)
    response = client.post("/login", data={"token": token, "name": name, "next": "/queue"})
    assert response.status_code == 303, response.text
    match = re.search(r'name="_csrf" value="([0-9a-f]+)"', client.get("/queue").text)
    assert match, "no CSRF field on the queue page"
    return client, match.group(1)


def _approved_events(root: RuntimeRoot, action_id: str) -> list[dict[str, object]]:
    return [
        event
        for path in root.events.glob("*/*.jsonl")
        for line in path.read_bytes().splitlines()
        if line
        and (event := orjson.loads(line))["type"] == "action.approved"
        and event["data"]["action"] == action_id
    ]


def _race(
    api: list[httpx.Client], forms: list[tuple[httpx.Client, str]], action_id: str, form: bool
) -> list[tuple[int, str]]:
    """Both processes approve `action_id` at the same moment; (status, notice or body) each."""
    barrier = threading.Barrier(2)
    answers: list[tuple[int, str]] = [(0, "")] * 2

    def decide(i: int) -> None:
        barrier.wait()
        if form:
            client, csrf = forms[i]
            r = client.post(f"/queue/{action_id}/approve", data={"_csrf": csrf, "back": "/queue"})
            answers[i] = (r.status_code, unquote(r.headers.get("location", "")))
        else:
            r = api[i].post(f"/api/actions/{action_id}/approve", json={})
            answers[i] = (r.status_code, r.text)

    threads = [threading.Thread(target=decide, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return answers


def test_two_ui_processes_approving_at_once_one_wins(
    runtime_root: RuntimeRoot, two_uis: tuple[UIProcess, UIProcess]
) -> None:
    token = (runtime_root.state / "ui_token").read_text().strip()
    bearer = {"Authorization": f"Bearer {token}"}
    api = [
        httpx.Client(base_url=ui.url, headers={**bearer, "X-Operator": who}, timeout=20)
        for ui, who in zip(two_uis, ("carol", "dave"), strict=True)
    ]
    forms = [_login(ui, token, name) for ui, name in zip(two_uis, ("alice", "bob"), strict=True)]
    queue = ActionQueue(runtime_root, EventLog(runtime_root, "test-seed"))
    sources = set()
    for n in range(ROUNDS):
        change = diff_resource("Container", f"race-{n}", {"image": "local/busybox:1"}, None)
        assert change is not None
        action = new_action(change, commit="0" * 40, basis="", manifest=None)
        assert queue.propose(action)
        via_form = n % 2 == 1
        # Both servers must list it before they race for it (each watches the root).
        for client in api:
            path = f"/api/actions/{action.id}"
            wait_for(lambda c=client, p=path: c.get(p).status_code == 200)
        answers = _race(api, forms, action.id, via_form)
        if via_form:
            assert [code for code, _ in answers] == [303, 303], answers
            notices = sorted(where for _, where in answers)
            won = [w for w in notices if f"Approved {action.id[:12]}" in w]
            lost = [w for w in notices if f"action {action.id} is already approved" in w]
            assert len(won) == 1 and len(lost) == 1, answers
            winner = [w for _, w in answers].index(won[0])
        else:
            codes = sorted(code for code, _ in answers)
            assert codes == [200, 409], answers
            loser = next(body for code, body in answers if code == 409)
            assert orjson.loads(loser)["state"] == "approved"
            assert "already approved" in orjson.loads(loser)["detail"]
            winner = [code for code, _ in answers].index(200)
        assert queue.find(action.id) == "approved"
        events = _approved_events(runtime_root, action.id)
        assert len(events) == 1, events
        expected_actor = (("carol", "dave"), ("alice", "bob"))[via_form][winner]
        assert events[0]["data"]["actor"] == expected_actor  # type: ignore[index]
        # The first process writes as `ui`, the second as `ui-2`: the winner wrote the event.
        assert events[0]["source"] == ("ui", "ui-2")[winner]
        sources.add(events[0]["source"])
    assert sources <= {"ui", "ui-2"}
    claims = runtime_root.state / "ui-writers"
    assert stat.S_IMODE(claims.stat().st_mode) == 0o700  # the runtime tree stays private
    assert sorted(p.name for p in claims.iterdir()) == ["ui-2.lock", "ui.lock"]
    for client in api:
        client.close()
    for client, _ in forms:
        client.close()
