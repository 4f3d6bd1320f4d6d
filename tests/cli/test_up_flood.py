"""`homelab up` under a connection flood: the UI's share of descriptors is capped.

One process runs every service, so a flood of half-sent requests to the UI
once took every descriptor: `/healthz` stopped answering and an approved
action never ran. Here `homelab up` runs with RLIMIT_NOFILE 1,024 (soft and
hard, so raising the soft limit cannot help) and 1,100 connections each send
half a request and wait; the UI must still answer, the executor must still
apply a CLI-approved File, and nothing may log "Too many open files".
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from tests.cli.test_up import DIRECT, HOMELAB, Up, eventually, free_port
from tests.cli.test_up import start_up as start_up  # the fixture
from tests.conftest import GitRepo

FLOOD = 1100
LIMIT = 1024


def _low_descriptor_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT))


def _half_sent(port: int, count: int) -> list[socket.socket]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 256:  # the test's own sockets; the hard limit allows it here
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 1024), hard))
    socks = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        socks.append(sock)
    return socks


def _healthy(port: int) -> bool:
    try:
        with DIRECT.open(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_a_flood_of_half_sent_requests_leaves_the_ui_and_the_executor_working(
    tmp_path: Path, git_repo: GitRepo, start_up: Callable[..., Up]
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
        """,
    )
    git_repo.commit("a file")
    root = tmp_path / "root"
    port = free_port()
    args = ["--repo", str(git_repo.path), "--root", str(root), "--port", str(port)]
    up = start_up(args, {"DOCKER_HOST": missing}, _low_descriptor_limit)
    up.wait_line("UI: ")
    eventually(lambda: any((root / "queue" / "pending").glob("*.json")), "the File action")

    flood = _half_sent(port, FLOOD)
    try:
        started = time.monotonic()
        assert _healthy(port), "/healthz did not answer during the flood"
        assert time.monotonic() - started < 5
        approve = subprocess.run(
            [HOMELAB, "actions", "approve", "--all", "--root", str(root), "--as", "tester"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert approve.returncode == 0, approve.stderr
        eventually(lambda: (files / "hello.txt").is_file(), "the approved File to be written", 30)
        # The executor writes the file, then moves the action to done: wait for the move.
        done_dir = root / "queue" / "done"
        eventually(lambda: any(done_dir.glob("*.json")), "the action to be done", 30)
        done = list(done_dir.glob("*.json"))
        assert [json.loads(p.read_text())["kind"] for p in done] == ["File"]
        assert _healthy(port), "/healthz did not answer after the action ran"
        assert up.proc.poll() is None, "homelab up exited during the flood"
    finally:
        for sock in flood:
            sock.close()
    assert _healthy(port)
    exhausted = [i for i, line in enumerate(up.lines) if "Too many open files" in line]
    assert not exhausted, "\n".join(up.lines[max(0, exhausted[0] - 30) : exhausted[0] + 3])
    assert up.interrupt() == 0
