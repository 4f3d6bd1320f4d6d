"""dependsOn obeyed by the real executor and observer on the real engine.

Everything is approved at once, in the wrong order (the dependant first);
the order things happened in is read from the engine's own event stream
(`docker events` with since/until) and, for a File, from the file's
modification time against the container's `create` event. A real
`homelab run observer` folds the world (health included), so the executor
decides from the same world documents it would in production.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from reconciler.queue import Action
from tests.executor.lab import TOP, Lab

pytestmark = pytest.mark.docker

OK = 'read x < /tmp/ok && test "$x" = ok'  # busybox's sh: test is a builtin
CHECK = {"test": ["CMD", "sh", "-c", OK], "interval": 1, "timeout": 1, "retries": 2}
READY_SOON = ["sh", "-c", "sleep 2; echo ok > /tmp/ok; exec sleep 3600"]


def file_yaml(name: str, path: str, content: str, **spec: Any) -> str:
    doc = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "File",
        "metadata": {"name": name},
        "spec": {"path": path, "content": content, **spec},
    }
    return orjson.dumps(doc).decode() + "\n"


class Services:
    """`homelab run observer` and `homelab run executor` as subprocesses of one lab."""

    def __init__(self, lab: Lab, *executor_args: str) -> None:
        self.lab = lab
        self.executor_args = executor_args
        self.observer: subprocess.Popen[bytes] | None = None
        self.executor: subprocess.Popen[bytes] | None = None

    def start_observer(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(TOP)}
        command = [sys.executable, "-m", "reconciler", "run", "observer"]
        command += ["--root", str(self.lab.root.path), "--repo", str(self.lab.repo.path)]
        command += ["--resync", "5", "--no-compaction"]
        self.observer = subprocess.Popen(
            command, env=env, cwd=TOP, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def start_executor(self) -> None:
        self.executor = self.lab.spawn_executor(*self.executor_args)

    def kill_executor(self) -> None:
        assert self.executor is not None
        self.executor.send_signal(signal.SIGKILL)
        self.executor.wait(30)
        self.executor = None

    def stop(self) -> None:
        for proc in (self.executor, self.observer):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


@pytest.fixture
def services(lab: Lab) -> Iterator[Services]:
    found = Services(lab, "--dependency-timeout", "8")
    found.start_observer()
    yield found
    found.stop()


def propose_in_order(lab: Lab, order: list[str]) -> dict[str, Action]:
    """Propose the plan; approve its actions in `order` (short names), one by one."""
    actions = {a.name: a for a in lab.propose(approve=False, fold=False)}
    for short in order:
        lab.queue.move(actions[lab.name(short)].id, "pending", "approved", actor="cli-test")
        time.sleep(0.01)  # distinct approval times: the executor takes the oldest first
    return actions


def engine_events(lab: Lab, since: float) -> list[dict[str, Any]]:
    stream = lab.client.api.events(
        since=since, until=f"{time.time():.6f}", filters={"type": "container"}, decode=True
    )
    mine = [
        e
        for e in stream
        if str(e.get("Actor", {}).get("Attributes", {}).get("name", "")).startswith(
            f"homelab-{lab.prefix}"
        )
    ]
    return sorted(mine, key=lambda e: e["timeNano"])


def first(events: list[dict[str, Any]], container: str, action: str) -> int:
    for e in events:
        if e["Actor"]["Attributes"]["name"] == f"homelab-{container}" and e["Action"] == action:
            return int(e["timeNano"])
    raise AssertionError(f"no {action} of {container} in {[(e['Action']) for e in events]}")


def waiting_reasons(lab: Lab, action_id: str) -> list[str]:
    return [
        e["data"]["reason"]
        for e in lab.executor_events("action.waiting")
        if e["data"]["action"] == action_id
    ]


def wait_for(what: str, condition: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_everything_approved_at_once_runs_in_dependency_order(lab: Lab, services: Services) -> None:
    conf = lab.files / "web.conf"
    db = lab.container("db", command=READY_SOON, healthcheck=CHECK)
    web_deps = [f"File/{lab.name('conf')}", {"resource": f"Container/{db}", "condition": "healthy"}]
    web = lab.container("web", dependsOn=web_deps)
    lab.write(f"manifests/{lab.name('conf')}.yaml", file_yaml(lab.name("conf"), str(conf), "x=1\n"))
    lab.commit("web after its file and a healthy db")
    plan = lab.plan(fold=False)
    names = [c.name for c in plan.plan.changes]
    assert names.index(web) > names.index(db) and names.index(web) > names.index(lab.name("conf"))
    [web_change] = [c for c in plan.plan.changes if c.name == web]
    assert web_change.after == (f"File/{lab.name('conf')}", f"Container/{db} (healthy)")
    since = time.time()
    actions = propose_in_order(lab, ["web", "db", "conf"])  # the dependant approved first
    services.start_executor()
    for action in actions.values():
        assert lab.wait_final(action.id, 90) == "done", lab.action(action.id).outcome
    events = engine_events(lab, since)
    assert first(events, db, "health_status: healthy") < first(events, web, "create")
    assert conf.stat().st_mtime_ns < first(events, web, "create")
    reasons = waiting_reasons(lab, actions[web].id)
    assert reasons and reasons[0].startswith(f"waiting for File/{lab.name('conf')}: action ")
    started = [
        e for e in lab.executor_events("action.started") if e["data"]["action"] == actions[web].id
    ]
    assert len(started) == 1
    assert actions[web].after == [f"File/{lab.name('conf')}", f"Container/{db} (healthy)"]
    assert f"after File/{lab.name('conf')}, Container/{db} (healthy)" in actions[web].summary


def test_a_failed_dependency_fails_its_dependant_with_the_reason(
    lab: Lab, services: Services
) -> None:
    db = lab.container("db", image="local/missing:1")
    web = lab.container("web", dependsOn=[f"Container/{db}"])
    lab.commit("db cannot start")
    since = time.time()
    actions = propose_in_order(lab, ["web", "db"])
    services.start_executor()
    assert lab.wait_final(actions[db].id) == "failed"
    assert lab.wait_final(actions[web].id) == "failed"
    failed = lab.action(actions[web].id)
    db_error = lab.action(actions[db].id).outcome["error"]
    assert failed.outcome["error"] == f"dependency Container/{db} failed: {db_error}"
    assert failed.moves[-1].reason == failed.outcome["error"]
    assert [m.state for m in failed.moves] == ["approved", "failed"]  # never running
    assert not [e for e in engine_events(lab, since) if e["Action"] == "create"]
    assert lab.containers(web) == []


def test_a_rejected_dependency_fails_its_dependant_after_it_waited(
    lab: Lab, services: Services
) -> None:
    db = lab.container("db")
    web = lab.container("web", dependsOn=[f"Container/{db}"])
    lab.commit()
    actions = propose_in_order(lab, ["web"])  # db stays pending
    services.start_executor()
    wait_for("web to wait", lambda: waiting_reasons(lab, actions[web].id))
    assert waiting_reasons(lab, actions[web].id) == [
        f"waiting for Container/{db}: action {actions[db].id} is pending"
    ]
    assert lab.state(actions[web].id) == "approved"  # waiting unclaimed
    lab.queue.move(actions[db].id, "pending", "rejected", actor="cli-test", reason="not today")
    assert lab.wait_final(actions[web].id) == "failed"
    error = lab.action(actions[web].id).outcome["error"]
    assert error == f"dependency Container/{db} was rejected: not today"
    assert lab.containers(web) == []


def test_a_dependency_that_never_gets_healthy_fails_the_dependant_after_the_timeout(
    lab: Lab, services: Services
) -> None:
    db = lab.container("db", command=READY_SOON, healthcheck=CHECK)
    lab.commit("db alone")
    services.start_executor()
    [create] = lab.propose(fold=False)
    assert lab.wait_final(create.id, 60) == "done"
    [container] = lab.containers(db)
    container.exec_run(["sh", "-c", "echo no > /tmp/ok"])  # from now on its healthcheck fails
    health = lab.root.world / "Container" / f"{db}.json"
    wait_for(
        "db unhealthy", lambda: b'"health":"Unhealthy"' in health.read_bytes().replace(b" ", b"")
    )
    web = lab.container("web", dependsOn=[{"resource": f"Container/{db}", "condition": "healthy"}])
    lab.commit("web on an unhealthy db")
    [web_create] = lab.propose(fold=False)
    assert web_create.name == web
    started = time.monotonic()
    assert lab.wait_final(web_create.id, 60) == "failed"
    assert time.monotonic() - started >= 7  # --dependency-timeout 8, from the approval
    error = lab.action(web_create.id).outcome["error"]
    assert error == f"dependency Container/{db} not healthy after 8 s (health: Unhealthy)"
    assert waiting_reasons(lab, web_create.id) == [
        f"waiting for Container/{db} (healthy): health is Unhealthy"
    ]
    assert lab.containers(web) == []


def test_kill_9_while_an_action_waits_neither_loses_nor_repeats_it(lab: Lab) -> None:
    services = Services(lab, "--dependency-timeout", "300")
    services.start_observer()
    try:
        kill_while_waiting(lab, services)
    finally:
        services.stop()


def kill_while_waiting(lab: Lab, services: Services) -> None:
    db = lab.container("db", command=READY_SOON, healthcheck=CHECK)
    lab.commit("db alone")
    services.start_executor()
    [create] = lab.propose(fold=False)
    assert lab.wait_final(create.id, 60) == "done"
    [container] = lab.containers(db)
    container.exec_run(["sh", "-c", "echo no > /tmp/ok"])
    health = lab.root.world / "Container" / f"{db}.json"
    wait_for(
        "db unhealthy", lambda: b'"health":"Unhealthy"' in health.read_bytes().replace(b" ", b"")
    )
    conf = lab.name("conf")
    lab.write(f"manifests/{conf}.yaml", file_yaml(conf, str(lab.files / "c"), "c\n"))
    web_deps = [f"File/{conf}", {"resource": f"Container/{db}", "condition": "healthy"}]
    web = lab.container("web", dependsOn=web_deps)
    lab.commit("web")
    since = time.time()
    actions = propose_in_order(lab, ["web"])  # the File stays pending: web waits for it
    pending = f"waiting for File/{conf}: action {actions[conf].id} is pending"
    unhealthy = f"waiting for Container/{db} (healthy): health is Unhealthy"
    for told in (1, 2):  # killed while it waits for a pending action, twice
        wait_for("web to wait", lambda n=told: len(waiting_reasons(lab, actions[web].id)) == n)
        services.kill_executor()
        assert lab.state(actions[web].id) == "approved"
        services.start_executor()
    lab.queue.move(actions[conf].id, "pending", "approved", actor="cli-test")
    assert lab.wait_final(actions[conf].id) == "done"
    wait_for("web to wait for health", lambda: unhealthy in waiting_reasons(lab, actions[web].id))
    services.kill_executor()  # killed while it waits for health
    assert lab.state(actions[web].id) == "approved"
    services.start_executor()
    wait_for("told again", lambda: waiting_reasons(lab, actions[web].id).count(unhealthy) == 2)
    reasons = waiting_reasons(lab, actions[web].id)
    assert reasons[:2] == [pending, pending] and reasons[-2:] == [unhealthy, unhealthy]
    approved = f"waiting for File/{conf}: action {actions[conf].id} is approved"
    assert set(reasons[2:-2]) <= {approved}  # seen between its approval and its run, maybe
    container.exec_run(["sh", "-c", "echo ok > /tmp/ok"])
    assert lab.wait_final(actions[web].id, 60) == "done"
    events = engine_events(lab, since)
    named = [e for e in events if e["Actor"]["Attributes"]["name"] == f"homelab-{web}"]
    assert [e["Action"] for e in named][:2] == ["create", "start"]
    assert [e["Action"] for e in named].count("create") == 1  # run once
    assert first(events, db, "health_status: healthy") < first(events, web, "create")
    started = [
        e for e in lab.executor_events("action.started") if e["data"]["action"] == actions[web].id
    ]
    assert len(started) == 1


def _doc(kind: str, name: str, spec: dict[str, Any]) -> str:
    doc = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    return orjson.dumps(doc).decode() + "\n"


def named(event: dict[str, Any]) -> str:
    actor = event.get("Actor") or {}
    return str((actor.get("Attributes") or {}).get("name") or actor.get("ID") or "")


def all_events(lab: Lab, since: float) -> list[tuple[int, str, str, str]]:
    """(timeNano, type, action, name) of this lab's containers, networks and volumes."""
    stream = lab.client.api.events(
        since=since,
        until=f"{time.time():.6f}",
        filters={"type": ["container", "network", "volume"]},
        decode=True,
    )
    out = [(int(e["timeNano"]), e["Type"], e["Action"], named(e)) for e in stream]
    return sorted(e for e in out if lab.prefix in e[3])


def at(events: list[tuple[int, str, str, str]], type_: str, action: str, name: str) -> int:
    for nano, t, a, n in events:
        if (t, a, n) == (type_, action, name):
            return nano
    raise AssertionError(f"no {type_} {action} of {name} in {events}")


@pytest.fixture
def netvol_cleanup(lab: Lab) -> Iterator[None]:
    lab.root.instance_id()  # a refresh lists a node only for a root that made something
    yield
    for found in lab.client.containers.list(all=True):
        if lab.prefix in found.name:
            found.remove(force=True)
    for net in lab.client.networks.list():
        if net.name.startswith(lab.prefix):
            net.remove()
    for vol in lab.client.volumes.list():
        if vol.name.startswith(lab.prefix):
            vol.remove(force=True)


def test_networks_and_volumes_come_first_and_go_last_when_all_is_approved_at_once(
    lab: Lab, services: Services, netvol_cleanup: None
) -> None:
    net, data = lab.name("net"), lab.name("data")
    lab.write(f"manifests/{net}.yaml", _doc("Network", net, {}))
    lab.write(f"manifests/{data}.yaml", _doc("Volume", data, {"deletionPolicy": "Delete"}))
    db = lab.container(
        "db",
        command=READY_SOON,
        healthcheck=CHECK,
        networkMode="bridge",
        networks=[net],
        volumes=[{"volume": data, "target": "/data"}],
    )
    web = lab.container(
        "web",
        networkMode="bridge",
        networks=[{"network": net, "aliases": ["www"]}],
        dependsOn=[{"resource": f"Container/{db}", "condition": "healthy"}],
    )
    lab.commit("a network, a volume, db and web")
    plan = lab.plan(fold=False)
    after = {c.name: c.after for c in plan.plan.changes}
    assert after[web] == (f"Container/{db} (healthy)", f"Network/{net}")  # dependsOn, then used
    assert after[db] == (f"Network/{net}", f"Volume/{data}")
    order = [c.name for c in plan.plan.changes]
    assert order.index(db) > max(order.index(net), order.index(data))
    assert order.index(web) > order.index(db)
    since = time.time()
    actions = propose_in_order(lab, ["web", "db", "data", "net"])  # dependants first
    services.start_executor()
    for action in actions.values():
        assert lab.wait_final(action.id, 120) == "done", lab.action(action.id).outcome
    events = all_events(lab, since)
    for container in (db, web):
        started = at(events, "container", "start", f"homelab-{container}")
        assert at(events, "network", "create", net) < started
    assert at(events, "volume", "create", data) < at(events, "container", "create", f"homelab-{db}")
    healthy = at(events, "container", "health_status: healthy", f"homelab-{db}")
    assert healthy < at(events, "container", "create", f"homelab-{web}")

    for name in (net, data, db, web):  # prune it all, approved at once, users last
        lab.repo.remove(f"manifests/{name}.yaml")
    lab.commit("prune")
    wait_for("the world to show db and web", lambda: len(lab.plan(fold=False).plan.changes) == 4)
    prune = lab.plan(fold=False)
    after = {c.name: c.after for c in prune.plan.changes}
    assert after[net] == (f"Container/{db}", f"Container/{web}")
    assert after[data] == (f"Container/{db}",)
    since = time.time()
    deletes = propose_in_order(lab, ["net", "data", "db", "web"])
    assert {a.operation for a in deletes.values()} == {"delete"}
    for action in deletes.values():
        assert lab.wait_final(action.id, 120) == "done", lab.action(action.id).outcome
    events = all_events(lab, since)
    gone_db = at(events, "container", "destroy", f"homelab-{db}")
    gone_web = at(events, "container", "destroy", f"homelab-{web}")
    assert max(gone_db, gone_web) < at(events, "network", "destroy", net)
    assert gone_db < at(events, "volume", "destroy", data)
