"""One Docker collector thread per Node, kept in step with the Node list.

`CollectorPool.refresh(targets)` starts a `DockerCollector` for each new
node and stops the one of a node that went away or whose engine address
changed; `stop()` ends them all (and lets `refresh` start them afresh);
`states()` says, per node, when its collector started and whether its
engine answers. `nodes_status` joins those states with the folded full
listings into the `nodes` of `state/observer_status.json`, which the
supervisor's delete gate reads. Used by the observer service (`homelab up`,
`homelab run observer`) and the collector service (`homelab run collector`,
the Compose stack).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.observer.collectors import Emit
from reconciler.observer.collectors.docker import HEARTBEAT, DockerCollector
from reconciler.observer.collectors.node import NodeTarget
from reconciler.runtime_root import RuntimeRoot

LISTED_KINDS = ("Container", "ComposeStack", "Network", "Volume")


@dataclass
class _Running:
    target: NodeTarget
    collector: DockerCollector
    stop: threading.Event
    thread: threading.Thread


@dataclass(frozen=True)
class CollectorState:
    started_at: str
    ready: bool


class CollectorPool:
    """The running collectors of one process, by node name."""

    def __init__(
        self,
        root: RuntimeRoot,
        emit: Emit,
        *,
        resync: float = 30.0,
        heartbeat: float = HEARTBEAT,
        engine: Callable[[NodeTarget], NodeTarget] = lambda target: target,
        compose_command: tuple[str, ...] | None = None,
    ) -> None:
        self.root = root
        self.emit = emit
        self.resync = resync
        self.heartbeat = heartbeat
        self.engine = engine  # where a node's engine is read (the Compose stack's proxy)
        self.compose_command = compose_command  # for the stacks' `config --hash`
        self._running: dict[str, _Running] = {}

    def refresh(self, targets: Mapping[str, NodeTarget]) -> None:
        for name in list(self._running):
            if targets.get(name) != self._running[name].target:
                self._running.pop(name).stop.set()
        for name, target in targets.items():
            if name in self._running:
                continue
            collector = DockerCollector(
                self.engine(target),
                self.root,
                self.emit,
                resync=self.resync,
                heartbeat=self.heartbeat,
                compose_command=self.compose_command,
            )
            stop = threading.Event()
            thread = threading.Thread(
                target=collector.run, args=(stop,), name=f"collector-{name}", daemon=True
            )
            thread.start()
            self._running[name] = _Running(target, collector, stop, thread)

    def stop(self) -> None:
        for running in self._running.values():
            running.stop.set()
        for running in self._running.values():
            running.thread.join(timeout=10)
        self._running.clear()

    def states(self) -> dict[str, CollectorState]:
        return {
            name: CollectorState(r.collector.started_at, r.collector.ready)
            for name, r in self._running.items()
        }


def nodes_status(
    states: Mapping[str, CollectorState], listings: Mapping[str, Mapping[str, tuple[str, str]]]
) -> dict[str, dict[str, Any]]:
    """Per node: `collectorStartedAt`, `lastFullListingAt` (None until one since), `ready`.

    `listings` is the fold's node -> kind -> (ts, startedAt) of the newest
    full listing; a listing counts when it started after the collector did.
    """
    nodes = {}
    for name, state in states.items():
        done = [listings.get(name, {}).get(kind) for kind in LISTED_KINDS]
        full = None
        if all(d is not None and d[1] >= state.started_at for d in done):
            full = min(d[0] for d in done if d is not None)
        nodes[name] = {
            "collectorStartedAt": state.started_at,
            "lastFullListingAt": full,
            "ready": state.ready,
        }
    return nodes
