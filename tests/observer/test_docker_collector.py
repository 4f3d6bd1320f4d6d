"""The Docker collector on the real engine writes what changed and nothing else.

A converged, idle homelab must not fill the event log: a fast healthcheck,
the collector's periodic full listing and a restart of the observer write
no repeated observation, while a change made by hand is still seen at once.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from reconciler.atomic_files import read_json
from reconciler.observer.collectors.docker import P
from reconciler.observer.service import ObserverService, ObserverSettings
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import world_path
from tests.conftest import BUSYBOX


def _wait(check: Callable[[], object], timeout: float) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


def _status(root: RuntimeRoot, name: str) -> dict[str, Any]:
    try:
        status: dict[str, Any] = read_json(world_path(root, "Container", name))["status"]
    except (OSError, ValueError):
        return {}
    return status


def _events(root: RuntimeRoot, etype: str, name: str | None = None) -> list[dict[str, Any]]:
    found = []
    for path in sorted(root.events.glob("*/observer.jsonl")):
        for line in path.read_bytes().splitlines():
            event = orjson.loads(line)
            ref = event["ref"] or {}
            if event["type"] == etype and (name is None or ref.get("name") == name):
                found.append(event)
    return found


class _Observer:
    """`ObserverService.run` in a thread, stopped and started again at will."""

    def __init__(self, root: RuntimeRoot, settings: ObserverSettings) -> None:
        self.root, self.settings = root, settings
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        self.service: ObserverService | None = None

    def start(self) -> None:
        self.service = ObserverService(self.root, settings=self.settings)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.service.run, args=(self._stop,))
        self._thread.start()

    def stop(self) -> None:
        assert self._stop is not None and self._thread is not None
        self._stop.set()
        self._thread.join(timeout=20)
        assert not self._thread.is_alive()

    def listed_since_start(self) -> bool:
        """The collector of node `local` has written a full listing since it started."""
        try:
            node = read_json(self.root.state / "observer_status.json")["nodes"]["local"]
        except (OSError, ValueError, KeyError):
            return False
        listed = node["lastFullListingAt"]
        return bool(listed) and listed >= node["collectorStartedAt"]


@pytest.fixture
def observer(
    runtime_root: RuntimeRoot, docker_host: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[_Observer]:
    monkeypatch.setenv("DOCKER_HOST", docker_host)
    running = _Observer(runtime_root, ObserverSettings(resync=2, durable=False))
    running.start()
    yield running
    running.stop()


def _run_healthchecked(client: Any, root: RuntimeRoot, name: str, spec: dict[str, Any]) -> Any:
    """A managed container whose healthcheck runs every second."""
    labels = {
        f"{P}/managed-by": "homelab-reconciler",
        f"{P}/instance": root.instance_id(),
        f"{P}/kind": "Container",
        f"{P}/name": name,
        f"{P}/node": "local",
        f"{P}/spec": orjson.dumps(spec).decode(),
    }
    second = 1_000_000_000
    return client.containers.run(
        BUSYBOX,
        ["sleep", "300"],
        name=f"homelab-{name}",
        detach=True,
        network_mode="none",
        labels=labels,
        healthcheck={"test": ["CMD", "true"], "interval": second, "timeout": second},
    )


@pytest.fixture
def healthy(
    observer: _Observer, runtime_root: RuntimeRoot, docker_client: Any
) -> Iterator[tuple[str, Any]]:
    """A managed container with a 1 s healthcheck, seen Healthy; removed afterwards."""
    name = f"quiet-{uuid.uuid4().hex[:8]}"
    spec = {"node": "local", "image": BUSYBOX, "command": ["sleep", "300"]}
    container = _run_healthchecked(docker_client, runtime_root, name, spec)
    try:
        _wait(lambda: _status(runtime_root, name).get("health") == "Healthy", 15)
        yield name, container
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)


def _repeats(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events whose data equals the one written before them for the same resource."""
    return [b for a, b in itertools.pairwise(events) if a["data"] == b["data"]]


@pytest.mark.docker
def test_a_fast_healthcheck_writes_no_repeated_observation(
    observer: _Observer, runtime_root: RuntimeRoot, healthy: tuple[str, Any]
) -> None:
    name, _ = healthy
    healthy_at = len(_events(runtime_root, "observed.resource", name))
    time.sleep(2.5)  # the next full listing sees the engine's new container count
    nodes = len(_events(runtime_root, "node.status"))
    time.sleep(10)  # ~10 healthchecks (30 exec events) and 5 full listings
    written = _events(runtime_root, "observed.resource", name)
    assert _repeats(written) == []
    assert len(written) == healthy_at, [e["data"]["health"] for e in written]
    # created/started (Starting), then Healthy: a transition is one event each
    assert [e["data"]["health"] for e in written][-1] == "Healthy"
    assert len(written) <= 3
    listings = _events(runtime_root, "observed.listing")
    assert len([e for e in listings if e["data"]["kind"] == "Container"]) <= 2
    assert len(_events(runtime_root, "node.status")) == nodes


@pytest.mark.docker
def test_a_restarted_collector_does_not_rewrite_an_unchanged_observation(
    observer: _Observer, runtime_root: RuntimeRoot, healthy: tuple[str, Any]
) -> None:
    name, _ = healthy
    time.sleep(3)  # a full listing passes, everything folded
    observer.stop()
    before = len(_events(runtime_root, "observed.resource", name))
    nodes_before = len(_events(runtime_root, "node.status"))
    observer.start()
    _wait(observer.listed_since_start, 15)
    time.sleep(5)  # more full listings and healthchecks
    assert len(_events(runtime_root, "observed.resource", name)) == before
    assert len(_events(runtime_root, "node.status")) == nodes_before
    assert _status(runtime_root, name)["health"] == "Healthy"


@pytest.mark.docker
def test_a_container_stopped_by_hand_is_still_seen_at_once(
    observer: _Observer, runtime_root: RuntimeRoot, healthy: tuple[str, Any]
) -> None:
    name, container = healthy
    before = len(_events(runtime_root, "observed.resource", name))
    container.stop(timeout=0)
    took = _wait(lambda: _status(runtime_root, name).get("health") == "Stopped", 5)
    assert took < 3.0, f"stop seen after {took:.2f} s"
    written = _events(runtime_root, "observed.resource", name)[before:]
    assert [e["data"]["health"] for e in written] == ["Stopped"]  # die and stop: one write
    container.start()
    _wait(lambda: _status(runtime_root, name).get("health") == "Healthy", 15)
