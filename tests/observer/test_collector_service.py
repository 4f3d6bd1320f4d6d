"""The collector service (`homelab run collector`) through the read-only proxy, on the real engine.

The Compose layout end to end in one process: the proxy in front of the
test engine, the collector reading only through it and appending as the
producer `collector`, the observer without Docker collectors folding those
events and judging the collector's full listings for the delete gate.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler.atomic_files import read_json
from reconciler.observer.collector_service import CollectorService, CollectorSettings
from reconciler.observer.collectors.docker import P
from reconciler.observer.collectors.pool import CollectorState, nodes_status
from reconciler.observer.docker_proxy import DockerProxyService
from reconciler.observer.service import ObserverService, ObserverSettings
from reconciler.runtime_root import RuntimeRoot
from reconciler.supervisor.policy import deletes_gate
from reconciler.world import world_path
from tests.conftest import BUSYBOX, GitRepo


def _wait(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout} s: {what}"
        time.sleep(0.1)


def _health(root: RuntimeRoot, name: str) -> str | None:
    try:
        return str(read_json(world_path(root, "Container", name))["status"]["health"])
    except (OSError, ValueError, KeyError):
        return None


def _sources(root: RuntimeRoot, name: str) -> set[str]:
    found = set()
    for path in root.events.glob("*/*.jsonl"):
        for line in path.read_bytes().splitlines():
            event = orjson.loads(line)
            if (event["ref"] or {}).get("name") == name:
                found.add(event["source"])
    return found


class _Threads:
    """Services' `run(stop)` in threads, all stopped at the end."""

    def __init__(self) -> None:
        self.running: list[tuple[threading.Event, threading.Thread]] = []

    def start(self, service: Any) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,), name=service.name)
        thread.start()
        self.running.append((stop, thread))

    def stop(self) -> None:
        for stop, _ in self.running:
            stop.set()
        for _, thread in self.running:
            thread.join(timeout=20)
            assert not thread.is_alive()


@pytest.fixture
def threads() -> Iterator[_Threads]:
    running = _Threads()
    yield running
    running.stop()


def _managed(client: Any, root: RuntimeRoot, name: str) -> Any:
    spec = {"node": "local", "image": BUSYBOX, "command": ["sleep", "300"]}
    labels = {
        f"{P}/managed-by": "homelab-reconciler",
        f"{P}/instance": root.instance_id(),
        f"{P}/kind": "Container",
        f"{P}/name": name,
        f"{P}/node": "local",
        f"{P}/spec": orjson.dumps(spec).decode(),
    }
    return client.containers.run(
        BUSYBOX,
        ["sleep", "300"],
        name=f"homelab-{name}",
        detach=True,
        network_mode="none",
        labels=labels,
    )


@pytest.mark.docker
def test_the_collector_sees_a_hand_stop_through_the_proxy_and_the_observer_folds_it(
    tmp_path: Path,
    runtime_root: RuntimeRoot,
    docker_client: Any,
    docker_host: str,
    threads: _Threads,
    git_repo: GitRepo,
) -> None:
    # The Node manifest names the socket the executor sees (absent here): the
    # collector reads it through the proxy instead, as in compose.yaml.
    git_repo.write(
        "manifests/nodes.yaml",
        """\
        apiVersion: homelab.reconciler/v1alpha1
        kind: Node
        metadata:
          name: local
        spec:
          dockerHost: unix:///nonexistent/docker.sock
        """,
    )
    git_repo.commit("a node")
    listen = tmp_path / "engine.sock"
    threads.start(DockerProxyService(listen, docker_host))
    _wait(listen.exists, 15, "the proxy's socket")
    name = f"coll-{uuid.uuid4().hex[:8]}"
    container = _managed(docker_client, runtime_root, name)
    try:
        settings = CollectorSettings(resync=2, status_period=0.5, local_engine=f"unix://{listen}")
        threads.start(CollectorService(runtime_root, git_repo.path, settings))
        threads.start(ObserverService(runtime_root, settings=ObserverSettings(docker=False)))
        _wait(lambda: _health(runtime_root, name) == "Healthy", 20, "the container observed")

        def gate_open() -> bool:
            status = read_json(runtime_root.state / "observer_status.json")
            ready = status["nodes"].get("local", {}).get("ready")  # written within a second
            return deletes_gate(status).open and status["collectorService"] is True and ready

        _wait(gate_open, 20, "the observer judged the collector's full listing")
        nodes = read_json(runtime_root.state / "observer_status.json")["nodes"]
        assert nodes["local"]["lastFullListingAt"] >= nodes["local"]["collectorStartedAt"]
        container.stop(timeout=0)
        _wait(lambda: _health(runtime_root, name) == "Stopped", 10, "the hand stop seen")
        assert _sources(runtime_root, name) == {"collector"}
        collector = read_json(runtime_root.state / "collector_status.json")
        assert collector["nodes"]["local"]["ready"] is True
        assert set(collector["nodes"]) == {"local"}
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)


@pytest.mark.docker
def test_without_the_proxy_the_node_is_not_ready_and_deletes_stay_withheld(
    tmp_path: Path,
    runtime_root: RuntimeRoot,
    docker_host: str,
    threads: _Threads,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DOCKER_HOST", docker_host)  # the implicit node `local`...
    missing = f"unix://{tmp_path}/no-proxy.sock"  # ...read through a proxy that is not there
    settings = CollectorSettings(resync=2, status_period=0.5, local_engine=missing)
    threads.start(CollectorService(runtime_root, None, settings))
    threads.start(ObserverService(runtime_root, settings=ObserverSettings(docker=False)))

    def node_down() -> bool:
        try:
            doc = read_json(world_path(runtime_root, "Node", "local"))
        except (OSError, ValueError):
            return False
        return bool(doc["status"]["health"] == "Unhealthy")

    _wait(node_down, 20, "node.status ready=false")
    _wait(lambda: (runtime_root.state / "observer_status.json").exists(), 10, "observer status")
    time.sleep(1)
    status = read_json(runtime_root.state / "observer_status.json")
    assert status["nodes"]["local"]["ready"] is False
    gate = deletes_gate(status)
    assert not gate.open and "no full listing" in gate.reason


def test_a_listing_older_than_the_collector_does_not_count() -> None:
    started = "2026-01-01T10:00:00.000000Z"
    listings = {
        "local": {
            "Container": ("2026-01-01T09:59:00.000000Z", "2026-01-01T09:58:59.000000Z"),
            "ComposeStack": ("2026-01-01T10:00:01.000000Z", "2026-01-01T10:00:00.500000Z"),
            "Network": ("2026-01-01T10:00:01.000000Z", "2026-01-01T10:00:00.500000Z"),
            "Volume": ("2026-01-01T10:00:01.000000Z", "2026-01-01T10:00:00.500000Z"),
        }
    }
    nodes = nodes_status({"local": CollectorState(started, True)}, listings)
    assert nodes == {
        "local": {"collectorStartedAt": started, "lastFullListingAt": None, "ready": True}
    }
    listings["local"]["Container"] = ("2026-01-01T10:00:02.000000Z", "2026-01-01T10:00:00.100000Z")
    nodes = nodes_status({"local": CollectorState(started, True)}, listings)
    assert nodes["local"]["lastFullListingAt"] == "2026-01-01T10:00:01.000000Z"
