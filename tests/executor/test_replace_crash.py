"""kill -9 of the executor at every step of a safe replace: one container, then the desired one.

Each round commits a new spec for one web container (a busybox httpd on the
host network, so the old one must stop before the new one starts), starts
`homelab run executor` with `HOMELAB_TEST_KILL_AT_STEP=<step>` (the executor
SIGKILLs itself right after that step), approves the replace and waits for
the kill. Right after it the resource still has a container to return to
and at most one container the collector takes for the resource. Then a
plain executor recovers the action: a good replace ends `done` with only
the new container, running, serving the new page and created once; a replace
to a container that exits at once (the rollback steps) ends `failed` with
the old container back at its name, same id, serving the old page. Every
forward step and every rollback step is killed at twice.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from typing import Any

import pytest

from reconciler.drivers.safe_replace import KILL_ENV, STEPS
from reconciler.observer.collectors.docker import DockerCollector
from reconciler.observer.collectors.node import NodeTarget
from reconciler.resources.normalize import spec_hash
from tests.executor.lab import TOP, Lab
from tests.executor.test_crash import creates_for, stop

pytestmark = pytest.mark.docker  # every test here uses the real engine

PORT = 19305  # helper "replace" owns 19300-19399
FORWARD = STEPS[:7]
ROLLBACK = STEPS[7:]
ROUNDS = [(step, True) for step in FORWARD * 2] + [(step, False) for step in ROLLBACK * 2]


def web(text: str) -> list[str]:
    serve = f"mkdir -p /w && echo {text} > /w/index.html && exec httpd -f -p {PORT} -h /w"
    return ["sh", "-c", serve]


def fetch() -> str:
    deadline = time.monotonic() + 10
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=2) as response:
                return str(response.read().decode().strip())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def spawn(lab: Lab, kill_at: str | None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(TOP)}
    env.pop(KILL_ENV, None)
    if kill_at:
        env[KILL_ENV] = kill_at
    return subprocess.Popen(
        lab.executor_command(),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=TOP,
    )


def generations(lab: Lab, name: str) -> list[Any]:
    """Every container of the resource: at its name or parked beside it."""
    return [
        c
        for c in lab.client.containers.list(all=True)
        if c.name == f"homelab-{name}" or c.name.startswith(f"homelab-{name}.")
    ]


def managed(lab: Lab, name: str) -> list[Any]:
    """The containers the collector takes for the resource."""
    collector = DockerCollector(NodeTarget("local", lab.host), lab.root, lambda *_: None)
    found = []
    for container in generations(lab, name):
        owned = collector.owner(container.name, container.labels or {}, container.id)
        if owned is not None and owned.name == name:
            found.append(container)
    return found


@pytest.mark.slow
def test_kill_9_at_every_step_of_a_replace_ends_in_one_container(lab: Lab) -> None:
    name = lab.container("web", command=web("gen0"))
    lab.commit("gen0")
    executor = spawn(lab, None)
    try:
        [create] = lab.propose()
        assert lab.wait_final(create.id) == "done", lab.action(create.id).outcome
    finally:
        stop(lab, executor)
    assert fetch() == "gen0"
    page = "gen0"
    started = time.monotonic()
    for round_no, (step, good) in enumerate(ROUNDS, start=1):
        [old] = generations(lab, name)
        if good:
            lab.container("web", command=web(f"gen{round_no}"))
        else:
            lab.container("web", command=["sh", "-c", f"echo broken build {round_no}; exit 3"])
        lab.commit(f"round {round_no}: {step}")
        since = int(time.time()) - 1
        executor = spawn(lab, step)
        [action] = lab.propose()
        assert action.operation == "replace", action.operation
        executor.wait(60)
        err = executor.stderr.read().decode() if executor.stderr else ""
        assert executor.returncode == -9, f"round {round_no}: {step} never reached: {err}"
        assert lab.state(action.id) == "running"

        parked_old = [c for c in generations(lab, name) if ".old-" in c.name]
        at_name = [c for c in generations(lab, name) if c.name == f"homelab-{name}"]
        assert at_name or parked_old, f"round {round_no} ({step}): nothing to return to"
        assert len(managed(lab, name)) <= 1, f"round {round_no} ({step}): two managed"

        executor = spawn(lab, None)  # recovers the action
        try:
            final = lab.wait_final(action.id, timeout=90)
        finally:
            stop(lab, executor)
        [container] = generations(lab, name)
        container.reload()
        assert container.name == f"homelab-{name}" and container.status == "running"
        assert managed(lab, name) == [container]
        outcome = lab.action(action.id).outcome or {}
        if good:
            assert final == "done", f"round {round_no} ({step}): {outcome}"
            labels = container.labels
            assert labels["homelab.reconciler/spec-hash"] == spec_hash(action.desired)
            assert creates_for(lab, action.id, since) == 1, f"round {round_no}: twice"
            page = f"gen{round_no}"
            lab.fold()
            assert lab.plan().plan.empty, f"round {round_no}: the world did not converge"
        else:
            assert final == "failed", f"round {round_no} ({step}): {outcome}"
            assert container.id == old.id
            assert "exited (exit code 3)" in outcome["error"]
            assert f"broken build {round_no}" in outcome["error"]
        assert fetch() == page
        print(f"round {round_no} ({step}): {final} at {time.monotonic() - started:.1f}s")
    elapsed = time.monotonic() - started
    print(f"kill -9 at every step of a replace: {len(ROUNDS)} rounds in {elapsed:.1f}s")
    assert {step for step, _ in ROUNDS} == set(STEPS)
