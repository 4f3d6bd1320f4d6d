"""The observation ledger: a collector writes an observation only when it changed.

Real parts: a runtime root, the observer's event log and the world builder
folding into world documents on disk, which is the ledger's memory across a
restart.
"""

from __future__ import annotations

from typing import Any

import orjson

from reconciler.events.log import EventLog
from reconciler.observer.collectors.ledger import ObservationLedger
from reconciler.observer.world_builder import WorldBuilder
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot

WEB = ResourceKey("Container", "web")
SPEC = {"node": "local", "image": "local/busybox:1", "command": ["sleep", "300"]}


def _observation(health: str = "Healthy", container: str = "abc123") -> dict[str, Any]:
    return {
        "spec": SPEC,
        "health": health,
        "node": "local",
        "managed": True,
        "conditions": [{"type": "SpecReadable", "status": "True", "reason": "LabelRead"}],
        "containerId": container,
    }


def _written(root: RuntimeRoot) -> list[tuple[str, dict[str, Any]]]:
    lines = b"".join(p.read_bytes() for p in sorted(root.events.glob("*/observer.jsonl")))
    return [(e["type"], e["data"]) for e in map(orjson.loads, lines.splitlines())]


class _Lab:
    """An observer's log and fold on one runtime root."""

    def __init__(self, root: RuntimeRoot) -> None:
        self.root = root
        self.log = EventLog(root, "observer")
        self.builder = WorldBuilder(root, durable=False)
        self.builder.open()

    def ledger(self) -> ObservationLedger:
        return ObservationLedger(self.root, lambda t, r, d: self.log.append(t, r, d) and None)

    def fold(self) -> None:
        self.builder.tick()


def test_an_unchanged_observation_is_written_once(runtime_root: RuntimeRoot) -> None:
    lab = _Lab(runtime_root)
    ledger = lab.ledger()
    assert ledger.write("observed.resource", WEB, _observation()) is True
    assert ledger.write("observed.resource", WEB, _observation()) is False
    assert ledger.write("observed.resource", WEB, _observation("Unhealthy")) is True
    assert ledger.write("observed.resource", WEB, _observation("Unhealthy")) is False
    assert ledger.write("observed.missing", WEB, {"reason": "container removed"}) is True
    assert ledger.write("observed.missing", WEB, {"reason": "container removed"}) is False
    assert [t for t, _ in _written(runtime_root)] == [
        "observed.resource",
        "observed.resource",
        "observed.missing",
    ]


def test_a_restarted_collector_does_not_rewrite_what_the_world_holds(
    runtime_root: RuntimeRoot,
) -> None:
    lab = _Lab(runtime_root)
    assert lab.ledger().write("observed.resource", WEB, _observation()) is True
    lab.fold()
    restarted = lab.ledger()  # a new collector: nothing in memory, the world on disk
    assert restarted.write("observed.resource", WEB, _observation(), resync=True) is False
    assert restarted.write("observed.resource", WEB, _observation()) is False
    assert len(_written(runtime_root)) == 1
    # what the world does not hold yet is written, once
    assert restarted.write("observed.resource", WEB, _observation("Stopped")) is True
    assert restarted.write("observed.resource", WEB, _observation("Stopped")) is False
    assert len(_written(runtime_root)) == 2


def test_a_full_listing_corrects_what_another_producer_reported(
    runtime_root: RuntimeRoot,
) -> None:
    """The executor reported the container Healthy; the collector saw it Stopped."""
    lab = _Lab(runtime_root)
    ledger = lab.ledger()
    ledger.write("observed.resource", WEB, _observation("Stopped"))
    lab.fold()
    executor = EventLog(runtime_root, "executor")
    executor.append("observed.resource", WEB, {**_observation(), "containerId": None})
    lab.fold()
    # an engine event for the same state: this collector wrote it already
    assert ledger.write("observed.resource", WEB, _observation("Stopped")) is False
    # a full listing reads the world, but not while its own write may be unfolded
    assert ledger.write("observed.resource", WEB, _observation("Stopped"), resync=True) is False
    ledger._last[WEB].at -= 60  # the grace for folding has passed
    assert ledger.write("observed.resource", WEB, _observation("Stopped"), resync=True) is True
    lab.fold()
    assert ledger.write("observed.resource", WEB, _observation("Stopped"), resync=True) is False


def test_node_status_is_compared_with_the_node_document(runtime_root: RuntimeRoot) -> None:
    lab = _Lab(runtime_root)
    node = ResourceKey("Node", "local")
    data = {
        "ready": True,
        "reason": "EngineReachable",
        "message": "Docker 26 on Debian",
        "info": {"serverVersion": "26", "containers": 3},
    }
    assert lab.ledger().write("node.status", node, data, resync=True) is True
    lab.fold()
    assert lab.ledger().write("node.status", node, data, resync=True) is False
    down = {"ready": False, "reason": "EngineUnreachable", "message": "gone", "info": {}}
    assert lab.ledger().write("node.status", node, down, resync=True) is True


def test_runtime_facts_are_part_of_what_the_world_must_hold(runtime_root: RuntimeRoot) -> None:
    """A restarted collector writes again when only the runtime changed (a new start)."""
    lab = _Lab(runtime_root)
    first = {**_observation(), "runtime": {"containerId": "abc123", "startedAt": "t1"}}
    assert lab.ledger().write("observed.resource", WEB, first) is True
    lab.fold()
    assert lab.ledger().write("observed.resource", WEB, first) is False  # the world has it
    restarted = {**first, "runtime": {"containerId": "abc123", "startedAt": "t2"}}
    assert lab.ledger().write("observed.resource", WEB, restarted) is True
    lab.fold()
    # the executor's report carries no runtime: the next listing puts it back
    executor = EventLog(runtime_root, "executor")
    executor.append("observed.resource", WEB, _observation())
    lab.fold()
    assert lab.ledger().write("observed.resource", WEB, restarted, resync=True) is True
