"""The Docker collector follows one long-lived events stream on the real engine.

An idle engine sends nothing, so the collector's thread sleeps in the read:
a container stopped by hand must still be seen within a few seconds (with
the periodic re-list far away, only the stream can tell), stopping the
collector must close the stream from outside and return at once, over a
local socket and over `ssh://` (paramiko) alike, and when the stream is
opened again (every `resync`) no event may fall between two streams nor be
handled twice.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from reconciler.observer.collectors.docker import DockerCollector, P
from reconciler.observer.collectors.engine_events import EVENT_FILTERS, event_key
from reconciler.observer.collectors.node import NodeTarget
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from tests.conftest import BUSYBOX
from tests.drivers.test_ssh import sshd  # noqa: F401  (the fixture)
from tests.observer.test_docker_collector import _wait

pytestmark = pytest.mark.docker  # every test here uses the real engine

Written = list[tuple[str, ResourceKey | None, dict[str, Any]]]


class _Running:
    """One collector in a thread, with what it wrote."""

    def __init__(self, collector: DockerCollector, written: Written) -> None:
        self.collector, self.written = collector, written
        self.stop = threading.Event()
        self.thread = threading.Thread(target=collector.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def listed(self) -> bool:
        return any(etype == "observed.listing" for etype, _, _ in self.written)

    def health(self, name: str) -> str | None:
        key = ResourceKey("Container", name)
        seen = [
            d.get("health") for t, r, d in self.written if r == key and t == "observed.resource"
        ]
        return seen[-1] if seen else None

    def halt(self) -> float:
        """Stop the collector; how long `run` took to return."""
        began = time.monotonic()
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the collector did not stop"
        return time.monotonic() - began


def _collector(root: RuntimeRoot, host: str, resync: float) -> _Running:
    written: Written = []

    def emit(etype: str, ref: ResourceKey | None, data: dict[str, Any]) -> None:
        written.append((etype, ref, data))

    return _Running(DockerCollector(NodeTarget("local", host), root, emit, resync=resync), written)


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


@pytest.fixture
def managed(runtime_root: RuntimeRoot, docker_client: Any) -> Iterator[tuple[str, Any]]:
    name = f"stream-{uuid.uuid4().hex[:8]}"
    container = _managed(docker_client, runtime_root, name)
    try:
        yield name, container
    finally:
        with contextlib.suppress(Exception):
            container.remove(force=True)


def _stop_is_seen_and_stopping_is_prompt(running: _Running, name: str, container: Any) -> None:
    try:
        _wait(lambda: running.health(name) == "Healthy", 15)
        time.sleep(1.0)  # nothing happens: the stream is idle, the thread blocked in its read
        container.stop(timeout=0)
        took = _wait(lambda: running.health(name) == "Stopped", 10)
        assert took < 3.0, f"stop seen after {took:.2f} s"
        time.sleep(1.0)  # idle again
    finally:
        stopped_in = running.halt()
    assert stopped_in < 2.0, f"stopping the collector took {stopped_in:.2f} s"


def test_a_stop_by_hand_comes_through_the_stream_and_stopping_is_prompt(
    runtime_root: RuntimeRoot, docker_host: str, managed: tuple[str, Any]
) -> None:
    name, container = managed
    running = _collector(runtime_root, docker_host, resync=300)  # no re-list during the test
    _stop_is_seen_and_stopping_is_prompt(running, name, container)
    listings = [d for t, _, d in running.written if t == "observed.listing"]
    assert [d["kind"] for d in listings] == ["Container", "ComposeStack", "Network", "Volume"]


def test_over_ssh_the_stream_is_followed_and_closed_too(
    runtime_root: RuntimeRoot,
    sshd: str,  # noqa: F811
    managed: tuple[str, Any],
) -> None:
    name, container = managed
    running = _collector(runtime_root, sshd, resync=300)
    _stop_is_seen_and_stopping_is_prompt(running, name, container)


def test_stopping_returns_promptly_while_the_stream_is_idle(
    runtime_root: RuntimeRoot, docker_host: str
) -> None:
    running = _collector(runtime_root, docker_host, resync=300)
    try:
        _wait(running.listed, 15)
        time.sleep(1.5)
    finally:
        stopped_in = running.halt()
    assert running.collector.ready
    assert stopped_in < 1.0, f"stopping the collector took {stopped_in:.2f} s"


class _Recording(DockerCollector):
    """Records every event handed on, as the engine sent it."""

    handled: list[dict[str, Any]]
    streams = 0

    def _stream(self, client: Any, stop: threading.Event, since: int) -> int:
        self.streams += 1
        return super()._stream(client, stop, since)

    def _on_event(self, client: Any, event: dict[str, Any]) -> None:
        self.handled.append(event)


def test_no_event_falls_between_two_streams_nor_is_handled_twice(
    runtime_root: RuntimeRoot, docker_host: str, docker_client: Any
) -> None:
    mark = f"stream-gap-{uuid.uuid4().hex[:8]}"
    collector = _Recording(
        NodeTarget("local", docker_host), runtime_root, lambda *_: None, resync=0.25
    )
    collector.handled = []
    running = _Running(collector, [])
    began = int(time.time()) - 1
    try:
        time.sleep(0.5)
        for i in range(6):  # create, start, die, stop, destroy: ~30 events over many streams
            container = docker_client.containers.run(
                BUSYBOX,
                ["sleep", "30"],
                name=f"{mark}-{i}",
                detach=True,
                network_mode="none",
                labels={"test.mark": mark},
            )
            time.sleep(0.1)
            container.remove(force=True)
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        running.halt()
    until = int(time.time()) + 1
    filters = {**EVENT_FILTERS, "label": [f"test.mark={mark}"]}
    sent = [
        event_key(e)
        for e in docker_client.events(since=began, until=until, filters=filters, decode=True)
    ]
    mine = [
        event_key(e)
        for e in collector.handled
        if ((e.get("Actor") or {}).get("Attributes") or {}).get("test.mark") == mark
    ]
    assert len(sent) >= 24, sent
    assert collector.streams >= 5  # the events came over several streams
    assert sorted(mine) == sorted(sent)  # every event once: none lost, none repeated
