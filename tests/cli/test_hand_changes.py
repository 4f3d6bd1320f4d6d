"""Hand changes on a real engine and disk: the right operation, live and with `plan --refresh`.

The issue's table, end to end: with `homelab up` running, each change made by
hand (`docker update --restart=no`, `docker stop`, `docker pause`,
`docker rm -f`, a container recreated with another env but the same labels,
an unmanaged container with a resource's name, a compose service stopped by
hand, a File chmod'ed and edited) must give its operation (`update`, `start`,
`start`, `create`, `replace`, `adopt`, `up`, `update`) in the queue within
5 s; with the control plane stopped, `homelab plan --refresh` must print the
same operations while a plain `homelab plan` (the world on disk) cannot know.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_up import HOMELAB, Up, eventually, free_port, start_up

__all__ = ["start_up"]  # the fixture
from tests.conftest import GitRepo

pytestmark = pytest.mark.docker

SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
LIVE_WITHIN = 5.0  # seconds from a hand change to its pending action


def _container(name: str, extra: str = "") -> str:
    return f"""\
---
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata: {{name: {name}}}
spec:
  node: local
  image: local/busybox:1
  imagePullPolicy: Never
  command: {json.dumps(SLEEPER)}
  env: {{GREETING: hello}}
  restartPolicy: always
{extra}"""


RUN = "hc" + secrets.token_hex(2)  # names of this run: other tests share the engine
NAMES = tuple(f"{RUN}-{n}" for n in ("web", "worker", "sleeper", "gone", "recreated", "adoptee"))
WEB, WORKER, SLEEPER_NAME, GONE, RECREATED, ADOPTEE = NAMES
NEWCOMER = f"{RUN}-newcomer"
PROJECT = f"{RUN}stack"


def _manifests(files: Path, docker_host: str, names: tuple[str, ...] = NAMES) -> str:
    head = f"""\
apiVersion: homelab.reconciler/v1alpha1
kind: Node
metadata: {{name: local}}
spec: {{dockerHost: "{docker_host}", allowedRoots: ["{files}"]}}
---
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata: {{name: conf}}
spec: {{node: local, path: "{files}/app.conf", content: "port = 80\\nname = lab\\n"}}
---
apiVersion: homelab.reconciler/v1alpha1
kind: ComposeStack
metadata: {{name: stack}}
spec: {{node: local, project: {PROJECT}, files: [compose/stack.yaml]}}
"""
    return head + "".join(_container(n) for n in names)


COMPOSE = f"""\
version: "2.4"
services:
  svc:
    image: local/busybox:1
    command: {json.dumps(SLEEPER)}
    network_mode: none
"""


def _pending(root: Path) -> dict[str, str]:
    """Pending operations by resource (`Kind/name` -> operation)."""
    out = {}
    for path in (root / "queue" / "pending").glob("*.json"):
        try:
            action = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out[f"{action['kind']}/{action['name']}"] = action["operation"]
    return out


def _busy(root: Path) -> int:
    return sum(
        len(list((root / "queue" / state).glob("*.json")))
        for state in ("pending", "approved", "running")
    )


def _approve_all(root: Path) -> None:
    done = subprocess.run(
        [HOMELAB, "actions", "approve", "--all", "--root", str(root), "--as", "tester"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def _converge(root: Path, expect: set[str], timeout: float = 240) -> None:
    """Approve what is proposed until nothing is pending, approved or running."""
    eventually(lambda: expect <= set(_pending(root)), f"first proposals {sorted(expect)}", 90)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _pending(root):
            _approve_all(root)
        failed = list((root / "queue" / "failed").glob("*.json"))
        assert not failed, [json.loads(p.read_text()).get("error") for p in failed]
        if not _busy(root):
            time.sleep(3)  # let the observer report the last applies
            if not _busy(root):
                return
        time.sleep(0.5)
    pytest.fail(f"did not converge: {_pending(root)}")


def _plan(repo: Path, root: Path, *extra: str) -> dict[str, str]:
    done = subprocess.run(
        [HOMELAB, "plan", "--repo", str(repo), "--root", str(root), "--json", *extra],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, 2), done.stderr
    plan = json.loads(done.stdout)
    return {f"{c['kind']}/{c['name']}": c["operation"] for c in plan["changes"]}


def _hand_changes(client: Any, files: Path, adoptee: str, made: dict[str, float]) -> dict[str, str]:
    """Change the world by hand; what each change must plan as (`made`: when, by resource)."""

    def at(ref: str) -> None:
        made[ref] = time.monotonic()

    client.containers.get(f"homelab-{WEB}").update(restart_policy={"Name": "no"})
    at(f"Container/{WEB}")
    client.containers.get(f"homelab-{WORKER}").stop(timeout=5)
    at(f"Container/{WORKER}")
    client.containers.get(f"homelab-{SLEEPER_NAME}").pause()
    at(f"Container/{SLEEPER_NAME}")
    client.containers.get(f"homelab-{GONE}").remove(force=True)
    at(f"Container/{GONE}")
    old = client.containers.get(f"homelab-{RECREATED}")
    config = old.attrs["Config"]
    old.remove(force=True)
    client.containers.run(
        "local/busybox:1",
        SLEEPER,
        name=f"homelab-{RECREATED}",
        environment=["GREETING=changed by hand"],
        labels=config["Labels"],
        restart_policy={"Name": "always"},
        detach=True,
    )
    at(f"Container/{RECREATED}")
    client.containers.run(
        "local/busybox:1",
        SLEEPER,
        name=f"homelab-{adoptee}",
        environment=["GREETING=hello"],
        restart_policy={"Name": "always"},
        detach=True,
    )
    at(f"Container/{adoptee}")
    [svc] = client.containers.list(filters={"label": f"com.docker.compose.project={PROJECT}"})
    svc.stop(timeout=5)
    at("ComposeStack/stack")
    conf = files / "app.conf"
    conf.write_text("port = 8080\nname = lab\n")
    os.chmod(conf, 0o600)
    at("File/conf")
    return {
        f"Container/{WEB}": "update",
        f"Container/{WORKER}": "start",
        f"Container/{SLEEPER_NAME}": "start",
        f"Container/{GONE}": "create",
        f"Container/{RECREATED}": "replace",
        f"Container/{adoptee}": "adopt",
        "ComposeStack/stack": "up",
        "File/conf": "update",
    }


def _clean(client: Any) -> None:
    for c in client.containers.list(all=True):
        ours = c.name.startswith(f"homelab-{RUN}-") or c.name.startswith(PROJECT)
        if ours or c.labels.get("com.docker.compose.project") == PROJECT:
            c.remove(force=True)


def test_hand_changes_become_the_right_operations_live_and_with_plan_refresh(
    tmp_path: Path,
    git_repo: GitRepo,
    docker_host: str,
    docker_client: Any,
    start_up: Callable[[list[str], dict[str, str]], Up],
) -> None:
    _clean(docker_client)
    files = tmp_path / "files"
    files.mkdir()
    names = tuple(n for n in NAMES if n != ADOPTEE)
    git_repo.write("compose/stack.yaml", COMPOSE)
    git_repo.write("manifests/all.yaml", _manifests(files, docker_host, names))
    git_repo.commit("a homelab")
    root = tmp_path / "root"
    args = ["--repo", str(git_repo.path), "--root", str(root), "--port", str(free_port())]
    env = {"DOCKER_HOST": docker_host}
    try:
        up = start_up(args, env)
        up.wait_line("Login token: ")
        _converge(root, {f"Container/{n}" for n in names} | {"File/conf", "ComposeStack/stack"})
        # The manifest of `adoptee` arrives with a container of that name already running.
        git_repo.write("manifests/all.yaml", _manifests(files, docker_host))
        git_repo.commit("adopt a container started by hand")

        started = time.monotonic()
        made: dict[str, float] = {}
        expected = _hand_changes(docker_client, files, ADOPTEE, made)
        seen: dict[str, float] = {}
        while time.monotonic() - started < 30 and len(seen) < len(expected):
            pending = _pending(root)
            for ref, op in expected.items():
                if ref not in seen and pending.get(ref) == op:
                    seen[ref] = time.monotonic() - made[ref]
            time.sleep(0.1)
        pending = _pending(root)
        assert {r: pending.get(r) for r in expected} == expected
        print("hand change -> pending (s):", {r: round(t, 2) for r, t in sorted(seen.items())})
        slow = {r: round(t, 2) for r, t in seen.items() if t > LIVE_WITHIN}
        assert not slow, f"pending later than {LIVE_WITHIN} s after the hand change: {slow}"

        _converge(root, set(expected))
        assert up.interrupt() == 0

        # The control plane is stopped: the world on disk cannot know what changes now.
        git_repo.write("manifests/all.yaml", _manifests(files, docker_host, (*NAMES, NEWCOMER)))
        git_repo.commit("adopt another one")
        expected = _hand_changes(docker_client, files, NEWCOMER, {})
        stale = _plan(git_repo.path, root)
        assert stale == {f"Container/{NEWCOMER}": "create"}, stale
        assert _plan(git_repo.path, root, "--refresh") == expected
    finally:
        _clean(docker_client)
