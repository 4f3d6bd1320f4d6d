"""A running UI for API, security and browser tests: real git, real root, real uvicorn.

`UILab` commits Container/File manifests to a real git repository, proposes
the actions `compute_plan` finds (the supervisor's own planner) into the
real queue, writes the observer/supervisor status files in the documented
shapes, and serves the app with `UIService` on a free loopback port.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler.api.config import UISettings
from reconciler.api.server import UIService
from reconciler.atomic_files import atomic_write_json
from reconciler.events.log import EventLog
from reconciler.planning import compute_plan
from reconciler.queue import Action, ActionQueue, new_action
from reconciler.queue.action import now_iso
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitSource
from tests.conftest import GitRepo

TOKEN = "test-token-0123456789abcdefghijklmnopqrstuvwxyz"
CONTAINER = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: {name}
  labels:
    team: "{label}"
spec:
  image: local/busybox:1
  imagePullPolicy: Never
  command: ["sleep", "{sleep}"]
  networkMode: host
"""


def free_port() -> int:
    """A free loopback port: from HOMELAB_TEST_PORTS ("18700-18799") when set, else any."""
    span = os.environ.get("HOMELAB_TEST_PORTS", "")
    if span:
        low, _, high = span.partition("-")
        for port in random.sample(
            range(int(low), int(high or low) + 1), int(high or low) - int(low) + 1
        ):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise AssertionError(f"no free port in HOMELAB_TEST_PORTS={span}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class UILab:
    def __init__(self, repo: GitRepo, root: RuntimeRoot) -> None:
        self.repo = repo
        self.root = root
        self.events = EventLog(root, "supervisor")
        self.queue = ActionQueue(root, self.events)

    def container(self, name: str, *, label: str = "core", sleep: int = 3600) -> None:
        self.repo.write(
            f"manifests/{name}.yaml", CONTAINER.format(name=name, label=label, sleep=sleep)
        )

    def propose(self) -> list[Action]:
        """Plan the repository tip against the world and queue every change."""
        result = compute_plan(GitSource(self.repo.path), self.root)
        actions = [
            new_action(c, commit=result.state.commit, basis="", manifest=None)
            for c in result.plan.changes
        ]
        for action in actions:
            self.queue.propose(action)
        return actions

    def status_files(self, *, caught_up: bool = True) -> None:
        atomic_write_json(
            self.root.state / "observer_status.json",
            {
                "caughtUp": caught_up,
                "updatedAt": now_iso(),
                "lagBytes": 0,
                "eventsFolded": 7,
                "nodes": {},
            },
        )
        atomic_write_json(
            self.root.state / "supervisor_status.json",
            {
                "commit": self.repo.head,
                "updatedAt": now_iso(),
                "lastResyncAt": now_iso(),
                "resources": {},
                "errors": [],
            },
        )


class Server:
    def __init__(self, settings: UISettings) -> None:
        self.settings = settings
        self.url = f"http://127.0.0.1:{settings.port}"
        self.stop = threading.Event()
        self.service = UIService(settings, out=open("/dev/null", "w"))  # noqa: SIM115
        self.thread = threading.Thread(target=self.service.run, args=(self.stop,), daemon=True)

    def start(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.thread.is_alive():
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        raise AssertionError("the UI server did not start")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=15)
        self.service.out.close()

    def client(self, *, token: bool = True) -> httpx.Client:
        headers = {"Authorization": f"Bearer {TOKEN}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10)


def serve(root: RuntimeRoot, **overrides: Any) -> Server:
    settings = UISettings(root=root, port=free_port(), token=TOKEN, **overrides)
    return Server(settings).start()


@pytest.fixture
def lab(git_repo: GitRepo, runtime_root: RuntimeRoot) -> UILab:
    lab = UILab(git_repo, runtime_root)
    lab.container("web")
    lab.container("db")
    lab.repo.commit("two containers")
    lab.status_files()
    return lab


@pytest.fixture
def server(lab: UILab) -> Iterator[Server]:
    srv = serve(lab.root)
    yield srv
    srv.close()


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    """Poll `check` until it returns something truthy (events arrive asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(0.05)


def session_login(srv: Server, name: str = "alice") -> httpx.Client:
    """A browser-like client: logs in with the form, keeps the session cookie."""
    client = httpx.Client(base_url=srv.url, timeout=10)
    response = client.post("/login", data={"token": TOKEN, "name": name, "next": "/queue"})
    assert response.status_code == 303, response.text
    return client


def csrf_of(client: httpx.Client) -> str:
    import re

    page = client.get("/queue").text
    match = re.search(r'name="_csrf" value="([0-9a-f]+)"', page)
    assert match, "no CSRF field on the queue page"
    return match.group(1)


__all__ = ["TOKEN", "Path", "Server", "UILab", "csrf_of", "serve", "session_login", "wait_for"]
