"""The executor service end to end: real git, real queue, real Docker engine."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reconciler.atomic_files import read_json
from reconciler.drivers.base import DriverSettings
from reconciler.executor import Executor, RetryPolicy
from reconciler.resources.normalize import spec_hash
from tests.api.conftest import free_port
from tests.executor.lab import Lab, ThreadedExecutor

pytestmark = pytest.mark.docker  # every test here uses the real engine


def closed_port() -> int:
    """A port of HOMELAB_TEST_PORTS (or any) with nothing listening on 127.0.0.1."""
    return free_port()


FAST = RetryPolicy(attempts=3, initial=0.1, maximum=0.5)


def executor(lab: Lab, retry: RetryPolicy = FAST) -> ThreadedExecutor:
    return ThreadedExecutor(
        Executor(lab.root, lab.repo.path, settings=DriverSettings(stop_grace=1), retry=retry)
    )


def test_create_replace_delete_converge_and_close_the_loop(lab: Lab) -> None:
    name = lab.container("web", env={"GREETING": "hello"})
    lab.commit("add web")
    with executor(lab):
        [create] = lab.propose()
        assert create.operation == "create"
        assert lab.wait_final(create.id) == "done"
        [container] = lab.containers(name)
        container.reload()
        assert container.status == "running"
        labels = container.labels
        assert labels["homelab.reconciler/managed-by"] == "homelab-reconciler"
        assert labels["homelab.reconciler/kind"] == "Container"
        assert labels["homelab.reconciler/name"] == name
        assert labels["homelab.reconciler/node"] == "local"
        assert labels["homelab.reconciler/action-id"] == create.id
        assert labels["homelab.reconciler/spec-hash"] == spec_hash(create.desired)
        assert container.name == f"homelab-{name}"
        assert "GREETING=hello" in container.attrs["Config"]["Env"]
        assert lab.plan().plan.empty  # observed back: the loop closes

        lab.container("web", env={"GREETING": "changed"})
        lab.commit("change env")
        [replace] = lab.propose()
        assert replace.operation == "replace"
        assert lab.wait_final(replace.id) == "done"
        [new] = lab.containers(name)
        assert new.id != container.id
        assert "GREETING=changed" in new.attrs["Config"]["Env"]
        assert lab.plan().plan.empty

        lab.repo.remove(f"manifests/{name}.yaml")
        lab.commit("remove web")
        [delete] = lab.propose()
        assert delete.operation == "delete"
        assert lab.wait_final(delete.id) == "done"
        assert lab.containers(name) == []
        assert lab.plan().plan.empty
    types = [e["type"] for e in lab.executor_events() if e["data"].get("action") == create.id]
    assert types[:3] == ["action.running", "action.started", "action.succeeded"]
    assert types[-1] == "action.done"
    outcome = lab.action(create.id).outcome
    assert outcome["result"] == "succeeded" and outcome["durationSeconds"] > 0
    assert "created" in outcome["output"]


def test_a_commit_after_approval_supersedes_the_action_unrun(lab: Lab) -> None:
    name = lab.container("web", env={"V": "1"})
    lab.commit()
    [action] = lab.propose()
    lab.container("web", env={"V": "2"})
    lab.commit("changed before the executor ran")
    with executor(lab):
        assert lab.wait_final(action.id) == "superseded"
    doc = lab.action(action.id)
    assert doc.outcome["error"].startswith("stale plan: the desired spec")
    assert lab.containers(name) == []
    assert not lab.executor_events("action.started")


def test_a_container_removed_by_hand_supersedes_its_replacement(lab: Lab) -> None:
    name = lab.container("web", env={"V": "1"})
    lab.commit()
    with executor(lab):
        [create] = lab.propose()
        assert lab.wait_final(create.id) == "done"
    lab.container("web", env={"V": "2"})
    lab.commit()
    [replace] = lab.propose()
    for container in lab.containers(name):
        container.remove(force=True)
    with executor(lab):
        assert lab.wait_final(replace.id) == "superseded"
    assert "no longer exists" in lab.action(replace.id).outcome["error"]
    assert lab.containers(name) == []


def test_a_missing_image_with_pull_policy_never_fails_at_once(lab: Lab) -> None:
    name = lab.container("bad", image="local/not-there:1")
    lab.commit()
    with executor(lab):
        [action] = lab.propose()
        assert lab.wait_final(action.id) == "failed"
    outcome = lab.action(action.id).outcome
    assert "local/not-there:1 is not present" in outcome["error"]
    assert "imagePullPolicy is Never" in outcome["error"]
    assert outcome["attempts"] == 1
    assert not lab.executor_events("action.retrying")
    failed = lab.executor_events("action.failed")
    assert failed and "imagePullPolicy is Never" in failed[0]["data"]["reason"]
    assert lab.containers(name) == []


def test_an_unreachable_engine_is_retried_until_it_answers(lab: Lab, tmp_path: Path) -> None:
    link = tmp_path / "engine.sock"
    real = lab.host.removeprefix("unix://")
    lab.node(f"unix://{link}")
    name = lab.container("web")
    lab.commit()
    with executor(lab, RetryPolicy(attempts=12, initial=0.2, maximum=0.6)):
        [action] = lab.propose()
        deadline = time.monotonic() + 20
        while not lab.executor_events("action.retrying") and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)  # unreachable for a while longer
        link.symlink_to(real)  # the engine is back
        assert lab.wait_final(action.id) == "done"
    retrying = lab.executor_events("action.retrying")
    assert retrying, "no retry while the engine was away"
    error = retrying[0]["data"]["error"]
    assert f"node local: Docker engine at unix://{link} does not answer: no socket" in error
    assert len(lab.containers(name)) == 1


def test_an_engine_that_does_not_answer_fails_in_one_clear_sentence(lab: Lab) -> None:
    port = closed_port()
    lab.node(f"tcp://127.0.0.1:{port}", name="far")
    name = lab.container("web", node="far")
    lab.commit()
    with executor(lab, RetryPolicy(attempts=2, initial=0.1, maximum=0.2)):
        [action] = lab.propose()
        assert lab.wait_final(action.id) == "failed"
    error = lab.action(action.id).outcome["error"]
    assert (
        f"node far: Docker engine at tcp://127.0.0.1:{port} does not answer: connection refused"
        in error
    )
    assert "Connection aborted" not in error and "Error while fetching" not in error, error
    assert "(" not in error, error  # no nested tuple of exceptions
    failed = lab.executor_events("action.failed")
    assert failed and "does not answer: connection refused" in failed[0]["data"]["reason"]
    assert lab.containers(name) == []


def test_an_unhealthy_container_fails_the_action(lab: Lab) -> None:
    check = {"test": ["CMD", "false"], "interval": 1, "timeout": 1, "retries": 1}
    lab.container("sick", healthcheck=check)
    lab.commit()
    with executor(lab):
        [action] = lab.propose()
        assert lab.wait_final(action.id) == "failed"
    assert "unhealthy" in lab.action(action.id).outcome["error"]


def test_a_second_executor_exits_naming_the_holder(lab: Lab) -> None:
    with executor(lab):
        deadline = time.monotonic() + 10
        while not (lab.root.state / "executor.holder.json").exists():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        holder = read_json(lab.root.state / "executor.holder.json")
        proc = lab.spawn_executor()
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    text = err.decode()
    assert "another executor is already running" in text
    assert f"pid {holder['pid']}" in text


def test_actions_wait_outside_maintenance_windows_and_run_when_one_opens(lab: Lab) -> None:
    now = datetime.now(UTC)
    later = now + timedelta(hours=3)
    closed = f"""\
        maintenanceWindows:
          - start: "{later:%H}:00"
            end: "{(later + timedelta(hours=1)):%H}:00"
        """
    lab.write("homelab.yaml", closed)
    name = lab.container("web")
    lab.commit()
    with executor(lab):
        [action] = lab.propose()
        status_file = lab.root.state / "executor_status.json"
        deadline = time.monotonic() + 10
        while not status_file.exists() or read_json(status_file)["state"] != "waiting-for-window":
            assert time.monotonic() < deadline, "the executor does not show it is waiting"
            time.sleep(0.05)
        assert lab.state(action.id) == "approved"
        assert read_json(status_file)["waiting"] == [action.id]
        assert "next opens at" in lab.executor_events("action.waiting")[0]["data"]["reason"]
        lab.write("homelab.yaml", "maintenanceWindows: []\n")
        lab.commit("open the window")
        assert lab.wait_final(action.id, timeout=30) == "done"
    assert len(lab.containers(name)) == 1


def test_the_cli_runs_the_executor_until_sigterm(lab: Lab) -> None:
    lab.container("web")
    lab.commit()
    proc = lab.spawn_executor()
    try:
        [action] = lab.propose()
        assert lab.wait_final(action.id) == "done"
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err.decode()
    assert b"stopping (SIGTERM)" in err
