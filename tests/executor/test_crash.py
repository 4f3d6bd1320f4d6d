"""kill -9 of the executor at random points: every action settles, none is applied twice.

Each round commits a change (create, replace or delete of one container),
approves the planned action to a running `homelab run executor` subprocess,
kills it with SIGKILL at a random moment after it claimed the action
(before the driver call, during it, or after it and before the events and
the queue move), restarts it (the new one recovers the action, then serves
the next round) and waits. Afterwards the action is `done`,
exactly the desired containers exist, and the engine's own event stream
shows at most one `create` per action: nothing was applied twice.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from typing import Any

import pytest

from reconciler.resources.normalize import spec_hash
from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # every test here uses the real engine

ROUNDS = 21


def wait_claimed(lab: Lab, action_id: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while lab.state(action_id) == "approved":
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        assert time.monotonic() < deadline, "the executor never claimed the action"
        time.sleep(0.005)


def creates_for(lab: Lab, action_id: str, since: int) -> int:
    events = lab.client.api.events(
        since=since,
        until=f"{time.time():.6f}",
        filters={
            "type": "container",
            "event": "create",
            "label": f"homelab.reconciler/action-id={action_id}",
        },
        decode=True,
    )
    return sum(1 for _ in events)


def phase_after_kill(lab: Lab, action: dict[str, Any], name: str) -> str:
    state = lab.state(action.id)
    if state != "running":
        return str(state)
    labels = [c.labels.get("homelab.reconciler/action-id") for c in lab.containers(name)]
    applied = (action.id in labels) if action.operation != "delete" else not labels
    return "running, applied" if applied else "running, not applied"


def stop(lab: Lab, proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM once the executor holds its lock (so its signal handler is installed)."""
    holder = lab.root.state / "executor.holder.json"
    deadline = time.monotonic() + 30
    while proc.poll() is None and f'"pid": {proc.pid}' not in (
        holder.read_text() if holder.exists() else ""
    ):
        assert time.monotonic() < deadline, "the executor never took its lock"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()


@pytest.mark.slow
def test_kill_9_at_random_points_leaves_every_action_final_and_applied_once(lab: Lab) -> None:
    rng = random.Random(20240605)
    name = lab.name("crash")
    phases: Counter[str] = Counter()
    executor = lab.spawn_executor()
    try:
        for round_no in range(ROUNDS):
            present = round_no % 3 != 2
            if present:
                lab.container("crash", env={"ROUND": str(round_no)})
            else:
                lab.repo.remove(f"manifests/{name}.yaml")
            lab.commit(f"round {round_no}")
            since = int(time.time()) - 1
            [action] = lab.propose()  # approved: the running executor claims it at once

            wait_claimed(lab, action.id, executor)
            time.sleep(rng.uniform(0.0, 1.0))
            executor.kill()
            executor.wait(30)
            phases[phase_after_kill(lab, action, name)] += 1

            executor = lab.spawn_executor()  # recovers, then serves the next round
            final = lab.wait_final(action.id, timeout=60)
            assert final == "done", lab.action(action.id).outcome

            containers = lab.containers(name)
            if present:
                assert len(containers) == 1, f"round {round_no}: {containers}"
                labels = containers[0].labels
                assert labels["homelab.reconciler/spec-hash"] == spec_hash(action.desired)
                assert containers[0].status == "running"
                assert creates_for(lab, action.id, since) == 1, f"round {round_no}: twice"
            else:
                assert containers == []
            lab.fold()
            assert lab.plan().plan.empty, f"round {round_no}: the world did not converge"
    finally:
        stop(lab, executor)
    print(f"kill -9 phases over {ROUNDS} rounds: {dict(phases)}")
    assert phases["running, not applied"] + phases["running, applied"] >= 1, phases
    assert not set(phases) - {"running, not applied", "running, applied", "done"}, phases
