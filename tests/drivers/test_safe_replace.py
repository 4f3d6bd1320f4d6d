"""Safe replace on the real engine: a failing new container leaves the old one serving.

A replace to a missing image, to a container that exits at once, to one in a
crash loop and to one that never gets healthy each fail the action with the
reason (and the new container's last log lines), and leave the old
container as it was: same id, same name, running and answering HTTP. A good
replace leaves only the new one. The old one stays up beside the new one
unless it holds what the new one needs (host ports, the host network), and
the collector never reports a parked generation as the resource.
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from reconciler.drivers.docker import DockerDriver
from reconciler.drivers.generations import is_leftover, needs_stop, old_name
from reconciler.observer.collectors.docker import DockerCollector
from reconciler.observer.collectors.node import NodeTarget
from reconciler.resources.key import ResourceKey
from tests.executor.lab import Lab

pytestmark = pytest.mark.docker  # every test here uses the real engine

PORT = 19301  # helper "replace" owns 19300-19399


def web(text: str, port: int = PORT) -> list[str]:
    """A busybox httpd answering `text` on 127.0.0.1:`port` (the host network)."""
    serve = f"mkdir -p /w && echo {text} > /w/index.html && exec httpd -f -p {port} -h /w"
    return ["sh", "-c", serve]


def fetch(port: int = PORT) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
        return str(response.read().decode().strip())


def serving(port: int = PORT, timeout: float = 10) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fetch(port)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def only_container(lab: Lab, name: str) -> Any:
    """The one container of the resource, whatever its name (parked ones included)."""
    found = [
        c
        for c in lab.client.containers.list(all=True)
        if c.name == f"homelab-{name}" or c.name.startswith(f"homelab-{name}.")
    ]
    assert len(found) == 1, [c.name for c in found]
    return found[0]


@pytest.fixture
def old_web(lab: Lab) -> Iterator[tuple[str, str]]:
    """A running web container (the old generation) and its id."""
    name = lab.container("web", command=web("gen1"))
    lab.commit("gen1")
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    assert serving() == "gen1"
    yield name, only_container(lab, name).id


def replace_to(lab: Lab, name: str, **spec: Any) -> tuple[str | None, dict[str, Any]]:
    lab.container(name.removeprefix(f"{lab.prefix}-"), **spec)
    lab.commit("replace")
    [replace] = lab.propose()
    assert replace.operation == "replace", replace.operation
    [state] = lab.run_now([replace], health_timeout=8)
    return state, lab.action(replace.id).outcome or {}


def assert_old_kept(lab: Lab, name: str, old_id: str) -> None:
    container = only_container(lab, name)
    container.reload()
    assert (container.id, container.name, container.status) == (
        old_id,
        f"homelab-{name}",
        "running",
    )
    assert serving() == "gen1"


def test_a_replace_to_a_missing_image_touches_nothing(lab: Lab, old_web: tuple[str, str]) -> None:
    name, old_id = old_web
    since = time.time()
    state, outcome = replace_to(lab, name, image="local/missing:none", command=web("gen2"))
    assert state == "failed"
    assert "image local/missing:none is not present" in outcome["error"], outcome
    assert_old_kept(lab, name, old_id)
    events = lab.client.api.events(
        since=since, until=time.time(), filters={"container": old_id}, decode=True
    )
    assert [e["Action"] for e in events] == []  # not renamed, not stopped: untouched


def test_a_new_container_that_exits_at_once_is_rolled_back(
    lab: Lab, old_web: tuple[str, str]
) -> None:
    name, old_id = old_web
    crash = ["sh", "-c", "echo starting up; echo cannot open /config/app.conf >&2; exit 3"]
    state, outcome = replace_to(lab, name, command=crash)
    assert state == "failed"
    error = outcome["error"]
    assert "replace failed: the new container exited (exit code 3)" in error, error
    logs = error.partition("last log lines of the new container:\n")[2].splitlines()
    # stdout and stderr reach the engine's log on two pipes: their order is not kept
    assert sorted(logs) == ["  cannot open /config/app.conf", "  starting up"], error
    assert f"the old container homelab-{name} ({old_id[:12]}) is back, running" in error
    assert_old_kept(lab, name, old_id)


def test_a_new_container_in_a_crash_loop_is_rolled_back(lab: Lab, old_web: tuple[str, str]) -> None:
    name, old_id = old_web
    loop = ["sh", "-c", "echo crash; sleep 0.1; exit 1"]
    state, outcome = replace_to(lab, name, command=loop, restartPolicy="always")
    assert state == "failed"
    assert "replace failed: the new container" in outcome["error"], outcome
    assert "crash" in outcome["error"]
    assert_old_kept(lab, name, old_id)
    assert only_container(lab, name).attrs["HostConfig"]["RestartPolicy"]["Name"] == "no"


def test_a_new_container_that_never_gets_healthy_is_rolled_back(
    lab: Lab, old_web: tuple[str, str]
) -> None:
    name, old_id = old_web
    check = {"test": ["CMD-SHELL", "echo probe says no; exit 1"], "interval": 1, "retries": 2}
    state, outcome = replace_to(
        lab, name, command=["sh", "-c", "echo new one up; exec sleep 300"], healthcheck=check
    )
    assert state == "failed"
    error = outcome["error"]
    assert "replace failed: container is unhealthy after start" in error, error
    assert "probe says no" in error and "new one up" in error
    assert_old_kept(lab, name, old_id)


def test_a_good_replace_leaves_only_the_new_container(lab: Lab, old_web: tuple[str, str]) -> None:
    name, old_id = old_web
    state, outcome = replace_to(lab, name, command=web("gen2"))
    assert state == "done", outcome
    new = only_container(lab, name)
    assert new.id != old_id and new.name == f"homelab-{name}" and new.status == "running"
    assert new.labels["homelab.reconciler/replaces"] == old_id
    assert serving() == "gen2"
    out = outcome["output"]
    assert f"renamed homelab-{name}" in out and "stopped" in out and "the host network" in out
    assert (
        f"removed the old {old_name(f'homelab-{name}', new.labels['homelab.reconciler/action-id'])}"
        in out
    )


def test_secret_values_in_the_failed_containers_logs_are_masked(lab: Lab) -> None:
    (lab.root.secrets / "api-token").write_bytes(b"tok-very-secret\n")
    env = [{"name": "TOKEN", "valueFrom": {"secret": "api-token"}}]
    name = lab.container("leaky", env=env)
    lab.commit()
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    leak = ["sh", "-c", 'echo "token is $TOKEN"; exit 2']
    state, outcome = replace_to(lab, name, env=env, command=leak)
    assert state == "failed"
    assert "token is <secret api-token>" in outcome["error"]
    assert b"tok-very-secret" not in b"".join(
        p.read_bytes() for p in lab.root.path.rglob("*.json*")
    )


@pytest.fixture
def bridge(lab: Lab) -> Iterator[str]:
    network = lab.client.networks.create(f"{lab.prefix}-net", driver="bridge")
    yield network.name
    for container in lab.client.containers.list(all=True):
        if container.name.startswith(f"homelab-{lab.prefix}"):
            container.remove(force=True)
    network.remove()


def test_an_old_container_without_a_conflict_serves_throughout_a_failed_replace(
    lab: Lab, bridge: str
) -> None:
    ports = [{"containerPort": 80, "hostPort": PORT + 1, "hostIP": "127.0.0.1"}]
    name = lab.container("side", networkMode=bridge, ports=ports, command=web("gen1", 80))
    lab.commit()
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    old_id = only_container(lab, name).id
    assert serving(PORT + 1) == "gen1"
    failures: list[str] = []
    answers = [0]
    done = threading.Event()

    def probe() -> None:  # the old one must answer every request while the new one is tried
        while not done.is_set():
            try:
                assert fetch(PORT + 1) == "gen1"
                answers[0] += 1
            except (OSError, AssertionError) as exc:
                failures.append(repr(exc))
            time.sleep(0.02)

    other = [{"containerPort": 80, "hostPort": PORT + 2, "hostIP": "127.0.0.1"}]
    check = {"test": ["CMD", "false"], "interval": 1, "retries": 2}
    thread = threading.Thread(target=probe)
    thread.start()
    try:
        state, outcome = replace_to(
            lab, name, networkMode=bridge, ports=other, command=web("gen2", 80), healthcheck=check
        )
    finally:
        done.set()
        thread.join()
    assert state == "failed" and "unhealthy" in outcome["error"], outcome
    assert failures == [] and answers[0] > 10, (failures, answers)
    assert "stopped" not in outcome["error"]
    container = only_container(lab, name)
    assert (container.id, container.name, container.status) == (
        old_id,
        f"homelab-{name}",
        "running",
    )


def test_the_collector_never_reports_a_parked_generation(lab: Lab) -> None:
    name = lab.container("parked")
    lab.commit()
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    container = only_container(lab, name)
    container.rename(f"homelab-{name}.old-0123456789ab")
    emitted: list[tuple[str, ResourceKey | None, dict[str, Any]]] = []
    collector = DockerCollector(
        NodeTarget("local", lab.host), lab.root, lambda t, k, d: emitted.append((t, k, d))
    )
    collector.full_listing(lab.client)
    [listing] = [d for t, _, d in emitted if t == "observed.listing" and d["kind"] == "Container"]
    assert name not in listing["names"]
    assert not [k for t, k, _ in emitted if k == ResourceKey("Container", name)]


def test_leftover_names_and_what_makes_the_old_one_stop() -> None:
    assert is_leftover("/homelab-web.old-0123456789ab") and is_leftover("homelab-web.failed-x")
    assert not is_leftover("/homelab-web") and not is_leftover("homelab-old-web")
    published = {
        "HostConfig": {
            "NetworkMode": "frontend",
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
            "Devices": [{"PathOnHost": "/dev/ttyUSB0"}],
        },
        "NetworkSettings": {"Networks": {"frontend": {"IPAMConfig": {"IPv4Address": "10.5.0.9"}}}},
    }
    same = {"networkMode": "frontend", "ports": [{"containerPort": 80, "hostPort": 8080}]}
    assert needs_stop(published, same) == ["host port 8080/tcp"]
    udp = {"ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "udp"}]}
    assert needs_stop(published, udp) == []
    other_ip = {"ports": [{"containerPort": 80, "hostPort": 8080, "hostIP": "127.0.0.1"}]}
    assert needs_stop(published, other_ip) == ["host port 8080/tcp"]  # the old one binds all
    assert needs_stop(published, {"networkMode": "host"}) == ["the host network"]
    assert needs_stop(published, {"devices": ["/dev/ttyUSB0:/dev/ttyUSB0"]}) == [
        "device /dev/ttyUSB0"
    ]
    static = {"networks": [{"network": "frontend", "ipv4Address": "10.5.0.9"}]}
    assert needs_stop(published, static) == ["address 10.5.0.9 on frontend"]
    assert needs_stop(published, {"ports": [{"containerPort": 80, "hostPort": 9090}]}) == []


def test_the_collector_following_events_reports_only_the_generation_at_the_name(
    lab: Lab, old_web: tuple[str, str]
) -> None:
    name, old_id = old_web
    written: list[tuple[str, ResourceKey | None, dict[str, Any]]] = []
    collector = DockerCollector(
        NodeTarget("local", lab.host),
        lab.root,
        lambda t, k, d: written.append((t, k, d)),
        resync=3600,
    )
    stop = threading.Event()
    thread = threading.Thread(target=collector.run, args=(stop,), daemon=True)
    thread.start()
    key = ResourceKey("Container", name)

    def seen_ids() -> list[str]:
        return [d["containerId"] for t, k, d in list(written) if k == key and "containerId" in d]

    try:
        deadline = time.monotonic() + 20
        while old_id[:12] not in seen_ids():
            assert time.monotonic() < deadline, written
            time.sleep(0.05)
        crash = ["sh", "-c", "exit 4"]
        state, _ = replace_to(lab, name, command=crash)  # rolled back: the old one again
        assert state == "failed"
        state, _ = replace_to(lab, name, command=web("gen2"))
        assert state == "done"
        new_id = only_container(lab, name).id[:12]
        while new_id not in seen_ids():
            assert time.monotonic() < deadline + 40, written
            time.sleep(0.05)
        time.sleep(1)  # the events of the old one's removal
    finally:
        stop.set()
        thread.join(timeout=30)
    ids = seen_ids()
    assert ids[-1] == new_id and old_id[:12] not in ids[ids.index(new_id) :], ids
    for _t, _k, data in written:  # no parked name ever reported as a resource
        assert not is_leftover(str(data.get("name") or "")), data
    assert all(not (k and is_leftover(k.name)) for _t, k, _d in written)


def test_a_replace_left_half_done_by_another_action_is_rolled_back_first(
    lab: Lab, old_web: tuple[str, str]
) -> None:
    name, old_id = old_web
    parked = f"homelab-{name}.old-aaaaaaaaaaaa"  # action aaaa... was killed, then superseded
    lab.client.containers.get(old_id).rename(parked)
    lab.container("web", command=web("gen2"))
    lab.commit("gen2")
    desired = lab.plan().desired.get(ResourceKey("Container", name))
    assert desired is not None
    driver = DockerDriver()
    try:
        result = driver.apply(lab.apply_context(name, dict(desired), "b" * 20))
    finally:
        driver.close()
    assert f"renamed {parked} ({old_id[:12]}) to homelab-{name}" in result.output
    assert f"removed the old homelab-{name}.old-bbbbbbbbbbbb ({old_id[:12]})" in result.output
    new = only_container(lab, name)
    assert new.id != old_id and new.name == f"homelab-{name}"
    assert serving() == "gen2"
