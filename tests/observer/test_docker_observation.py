"""The Docker collector reports what the engine runs, not what a label says.

Changes made by hand (`docker update`, stop, pause, remove, a container
recreated with the same labels) show in the observation; a container named
`homelab-<name>` that this project never made is observed unmanaged, and
one recorded in the adoption registry is managed. Real engine; the
collector's events go to an in-memory list.
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

from reconciler.drivers.adopted import write_adopted
from reconciler.drivers.docker import DockerDriver
from reconciler.observer.collectors.docker import DockerCollector, P
from reconciler.observer.collectors.node import NodeTarget
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from tests.conftest import BUSYBOX
from tests.drivers.observe_kit import apply_spec, desired_spec

pytestmark = pytest.mark.docker


class _Seen:
    """A collector on the test engine whose events are kept in memory."""

    def __init__(self, root: RuntimeRoot, host: str, client: Any) -> None:
        self.root, self.host, self.client = root, host, client
        self.events: list[tuple[str, ResourceKey | None, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self.collector = DockerCollector(NodeTarget("local", host), root, self._emit, resync=3600)
        self.driver = DockerDriver()
        self.prefix = "v" + uuid.uuid4().hex[:6]

    def _emit(self, etype: str, key: ResourceKey | None, data: dict[str, Any]) -> None:
        with self._lock:
            self.events.append((etype, key, data))

    def name(self, short: str) -> str:
        return f"{self.prefix}-{short}"

    def listing(self) -> None:
        self.collector.full_listing(self.client)

    def last(self, name: str) -> tuple[str, dict[str, Any]] | None:
        """The newest observed.resource / observed.missing written for Container `name`."""
        with self._lock:
            for etype, key, data in reversed(self.events):
                if key == ResourceKey("Container", name) and etype.startswith("observed."):
                    return etype, data
        return None

    def observed(self, name: str) -> dict[str, Any]:
        found = self.last(name)
        assert found is not None and found[0] == "observed.resource", found
        return found[1]

    def listed(self) -> list[str]:
        with self._lock:
            listings = [
                d for t, _, d in self.events if t == "observed.listing" and d["kind"] == "Container"
            ]
        return [n for n in listings[-1]["names"] if n.startswith(self.prefix)]

    def create(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        desired = desired_spec(self.root, name, spec)
        apply_spec(self.driver, self.root, self.host, name, desired)
        return desired

    def cleanup(self) -> None:
        for summary in self.client.api.containers(all=True):
            if any(n.startswith(f"/homelab-{self.prefix}") for n in summary["Names"]):
                self.client.api.remove_container(summary["Id"], force=True)
        self.driver.close()


@pytest.fixture
def seen(runtime_root: RuntimeRoot, docker_host: str, docker_client: Any) -> Iterator[_Seen]:
    the_seen = _Seen(runtime_root, docker_host, docker_client)
    yield the_seen
    the_seen.cleanup()


_SPEC = {
    "image": BUSYBOX,
    "command": ["sleep", "300"],
    "networkMode": "none",
    "env": {"A": "1"},
    "restartPolicy": "unless-stopped",
}


def test_hand_changes_show_in_the_observation(seen: _Seen) -> None:
    name = seen.name("web")
    desired = seen.create(name, _SPEC)
    seen.listing()
    data = seen.observed(name)
    assert data["spec"] == desired and data["managed"] is True and data["health"] == "Healthy"
    assert data["conditions"][0]["reason"] == "LabelRead"
    container = seen.client.containers.get(f"homelab-{name}")
    assert data["runtime"]["containerId"] == container.id
    assert data["runtime"]["imageId"] == container.attrs["Image"]

    container.update(restart_policy={"Name": "no"})  # docker update --restart=no
    seen.listing()
    assert seen.observed(name)["spec"] == {**desired, "restartPolicy": "no"}
    container.pause()
    seen.listing()
    assert seen.observed(name)["spec"]["state"] == "paused"
    container.unpause()
    container.stop(timeout=0)
    seen.listing()
    data = seen.observed(name)
    assert (data["spec"]["state"], data["health"]) == ("stopped", "Stopped")
    assert seen.listed() == [name]
    container.remove()
    seen.listing()
    assert seen.listed() == []  # the listing marks it missing


def test_a_listing_writes_an_unchanged_observation_once(seen: _Seen) -> None:
    name = seen.name("quiet")
    seen.create(name, _SPEC)
    seen.listing()
    written = len(seen.events)
    seen.listing()
    seen.listing()
    assert len(seen.events) == written  # nothing changed: nothing written


def test_a_container_recreated_by_hand_with_the_same_labels_shows_its_env(seen: _Seen) -> None:
    name = seen.name("again")
    desired = seen.create(name, _SPEC)
    old = seen.client.containers.get(f"homelab-{name}")
    labels = old.labels
    old.remove(force=True)
    seen.client.containers.run(
        BUSYBOX,
        entrypoint=["sleep", "300"],
        name=f"homelab-{name}",
        detach=True,
        network_mode="none",
        restart_policy={"Name": "unless-stopped"},
        environment=["A=2", "EXTRA=x"],
        labels=labels,
    )
    seen.listing()
    data = seen.observed(name)
    assert data["managed"] is True
    assert data["spec"]["env"] == [
        {"name": "A", "value": "2", "valueFrom": None},
        {"name": "EXTRA", "value": "x", "valueFrom": None},
    ]
    assert {**data["spec"], "env": desired["env"]} == desired  # only the env differs


def _by_hand(seen: _Seen, name: str, **kwargs: Any) -> Any:
    return seen.client.containers.run(
        BUSYBOX,
        entrypoint=["sleep", "300"],
        name=f"homelab-{name}",
        detach=True,
        network_mode="none",
        **kwargs,
    )


def test_an_unmanaged_container_is_observed_unmanaged_with_its_spec(seen: _Seen) -> None:
    name = seen.name("manual")
    _by_hand(seen, name, environment={"A": "1"}, restart_policy={"Name": "unless-stopped"})
    seen.listing()
    data = seen.observed(name)
    assert data["managed"] is False
    assert data["conditions"][0]["reason"] == "NotManaged"
    # exactly the manifest that would describe it (what `adopt` compares with)
    assert data["spec"] == desired_spec(seen.root, name, _SPEC)
    assert name in seen.listed()


def test_an_adopted_container_is_managed_with_the_records_spec(seen: _Seen) -> None:
    name = seen.name("taken")
    container = _by_hand(seen, name, environment={"A": "1"})
    record_spec = desired_spec(seen.root, name, {**_SPEC, "env": {"A": "1", "PATH": "/bin"}})
    record = {"containerId": container.id, "node": "local", "spec": record_spec, "action": "x"}
    write_adopted(seen.root, "Container", name, record)
    seen.listing()
    data = seen.observed(name)
    assert data["managed"] is True and data["conditions"][0]["reason"] == "RegistryRecord"
    # PATH=/bin is the image's, and last-applied (the record) has it: observed
    assert [v["name"] for v in data["spec"]["env"]] == ["A", "PATH"]

    # the record names another container: this one is not managed
    write_adopted(seen.root, "Container", name, {**record, "containerId": "f" * 64})
    seen.listing()
    assert seen.observed(name)["managed"] is False


def test_containers_not_ours_are_not_observed(seen: _Seen, tmp_path: Path) -> None:
    other = RuntimeRoot(tmp_path / "other").ensure()
    foreign, compose, odd = seen.name("foreign"), seen.name("svc"), seen.name("odd")
    labels = {
        f"{P}/managed-by": "homelab-reconciler",
        f"{P}/instance": other.instance_id(),
        f"{P}/kind": "Container",
        f"{P}/name": foreign,
        f"{P}/node": "local",
        f"{P}/spec": orjson.dumps({"image": BUSYBOX}).decode(),
    }
    _by_hand(seen, foreign, labels=labels)
    _by_hand(seen, compose, labels={"com.docker.compose.project": "homelab"})
    _by_hand(seen, f"{odd}_X")  # not a DNS label
    seen.listing()
    assert seen.listed() == []
    assert [e for e in seen.events if e[1] is not None and e[1].kind == "Container"] == []


def _wait(check: Callable[[], object], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)


def test_engine_events_of_unmanaged_containers_are_followed(seen: _Seen) -> None:
    stop = threading.Event()
    thread = threading.Thread(target=seen.collector.run, args=(stop,))
    thread.start()
    try:
        _wait(lambda: seen.collector.ready and any(e[0] == "observed.listing" for e in seen.events))
        name, renamed = seen.name("moved"), seen.name("there")
        container = _by_hand(seen, name)
        _wait(lambda: (seen.last(name) or ("", {}))[0] == "observed.resource")
        assert seen.observed(name)["managed"] is False
        container.pause()
        _wait(lambda: seen.observed(name)["spec"]["state"] == "paused")
        container.unpause()
        _wait(lambda: seen.observed(name)["spec"]["state"] == "running")
        container.update(restart_policy={"Name": "always"})
        _wait(lambda: seen.observed(name)["spec"]["restartPolicy"] == "always")
        container.rename(f"homelab-{renamed}")
        _wait(lambda: (seen.last(name) or ("", {}))[0] == "observed.missing")
        _wait(lambda: (seen.last(renamed) or ("", {}))[0] == "observed.resource")
        container.remove(force=True)
        _wait(lambda: (seen.last(renamed) or ("", {}))[0] == "observed.missing")
    finally:
        stop.set()
        thread.join(timeout=20)
        with contextlib.suppress(Exception):
            container.remove(force=True)
    assert not thread.is_alive()
