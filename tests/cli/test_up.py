"""`homelab up`: the four real services in one process, the example repository, Ctrl-C."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GitRepo

HOMELAB = str(Path(sys.executable).with_name("homelab"))
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Up:
    """A running `homelab up` whose output lines are collected by a thread."""

    def __init__(
        self, args: list[str], env: dict[str, str], preexec: Callable[[], None] | None = None
    ) -> None:
        self.proc = subprocess.Popen(
            [HOMELAB, "up", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            preexec_fn=preexec,
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            self._new.put(line)

    def wait_line(self, prefix: str, timeout: float = 60) -> str:
        """The first line starting with `prefix`; a line of the login box counts unframed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                text = line.removeprefix("│ ").removesuffix("│").rstrip()
                if text.startswith(prefix):
                    return text
            if self.proc.poll() is not None and self._new.empty():
                break
            with contextlib.suppress(queue.Empty):
                self._new.get(timeout=0.2)
        pytest.fail(f"no line starting with {prefix!r} in:\n" + "\n".join(self.lines))

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=30)


@pytest.fixture
def start_up() -> Iterator[Callable[..., Up]]:
    started: list[Up] = []

    def start(
        args: list[str], env: dict[str, str], preexec: Callable[[], None] | None = None
    ) -> Up:
        up = Up(args, {**os.environ, **env}, preexec)
        started.append(up)
        return up

    yield start
    for up in started:
        if up.proc.poll() is None:
            up.proc.kill()
            up.proc.wait()


def get_json(url: str) -> Any:
    with DIRECT.open(url, timeout=5) as response:
        return json.loads(response.read())


def eventually(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.docker
def test_up_runs_the_example_serves_the_ui_and_stops_on_ctrl_c(
    tmp_path: Path, docker_host: str, start_up: Callable[[list[str], dict[str, str]], Up]
) -> None:
    port = free_port()
    root = tmp_path / "state"
    up = start_up(["--root", str(root), "--port", str(port)], {"DOCKER_HOST": docker_host})
    assert up.wait_line("Created the example repository") == (
        f"Created the example repository {root / 'example-repo'}"
    )
    assert "observer, supervisor, executor, ui, notifier" in up.wait_line("Running:")
    assert up.wait_line("UI: ") == f"UI: http://127.0.0.1:{port}/"
    token = up.wait_line("Login token: ").split()[2]
    assert token == (root / "state" / "ui_token").read_text().strip()
    assert not any(line.startswith("No Docker engine") for line in up.lines)

    base = f"http://127.0.0.1:{port}"
    with DIRECT.open(f"{base}/healthz", timeout=5) as response:
        assert response.status == 200
    eventually(
        lambda: get_json(f"{base}/summary")["actions"]["pending"] >= 4,
        "the example's four actions to be proposed",
    )
    assert up.interrupt() == 0
    assert up.lines[-1] == "Stopped."
    assert not any("Did not stop in time" in line for line in up.lines)

    again = start_up(["--root", str(root), "--port", str(port)], {"DOCKER_HOST": docker_host})
    where = again.wait_line("Login token: ")
    assert where == f"Login token: in {root / 'state' / 'ui_token'} (printed only when created)"
    again.wait_line("UI: ")
    assert not any(token in line for line in again.lines), "the token was printed again"
    assert again.interrupt() == 0


def test_up_without_a_docker_engine_still_applies_files(
    tmp_path: Path, git_repo: GitRepo, start_up: Callable[[list[str], dict[str, str]], Up]
) -> None:
    files = tmp_path / "files"
    files.mkdir()
    missing = f"unix://{tmp_path}/no-engine.sock"
    git_repo.write(
        "manifests/all.yaml",
        f"""\
        apiVersion: homelab.reconciler/v1alpha1
        kind: Node
        metadata: {{name: local}}
        spec: {{dockerHost: "{missing}", allowedRoots: ["{files}"]}}
        ---
        apiVersion: homelab.reconciler/v1alpha1
        kind: File
        metadata: {{name: hello}}
        spec: {{node: local, path: "{files}/hello.txt", content: "hello\\n"}}
        ---
        apiVersion: homelab.reconciler/v1alpha1
        kind: Container
        metadata: {{name: web}}
        spec: {{node: local, image: "local/busybox:1", imagePullPolicy: Never}}
        """,
    )
    git_repo.commit("a file and a container")
    root = tmp_path / "root"
    args = ["--repo", str(git_repo.path), "--root", str(root), "--port", str(free_port())]
    up = start_up(args, {"DOCKER_HOST": missing})
    assert up.wait_line("No Docker engine at").startswith(f"No Docker engine at {missing} (")
    up.wait_line("Login token: ")

    def file_action_pending() -> bool:
        return any(
            json.loads(p.read_text())["kind"] == "File"
            for p in (root / "queue" / "pending").glob("*.json")
        )

    eventually(file_action_pending, "the File action to be proposed")
    approve = subprocess.run(
        [HOMELAB, "actions", "approve", "--all", "--root", str(root), "--as", "tester"],
        capture_output=True,
        text=True,
    )
    assert approve.returncode == 0, approve.stderr
    eventually(lambda: (files / "hello.txt").is_file(), "the file to be written")
    assert (files / "hello.txt").read_text() == "hello\n"

    node = json.loads((root / "world" / "Node" / "local.json").read_text())
    ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
    assert ready and ready[0]["status"] == "False"
    assert ready[0]["reason"] == "EngineUnreachable"
    assert up.interrupt() == 0
