"""The collector service: the Docker collectors alone, for a deployment that splits the observer.

In the Compose stack the observer has no engine access, so this service
(`homelab run collector`) runs one `DockerCollector` per Node (the same
`CollectorPool` the observer uses in `homelab up`) and appends their events
to the log as its own producer, `collector`; the observer folds them like
any other producer's. Nodes whose `dockerHost` is a local unix socket are
read through `CollectorSettings.local_engine` when it is set: the
read-only Docker API proxy (`reconciler.observer.docker_proxy`), so this
process never holds the engine's socket. Every `status_period` seconds, and
whenever a collector's readiness changes, it writes
`state/collector_status.json` (`updatedAt`, per node `collectorStartedAt`
and `ready`); the observer joins those start times with the listings it
folded for the supervisor's delete gate. Node manifests are re-read from
the repository tip every `nodes_period` seconds.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.atomic_files import atomic_write_json
from reconciler.events.log import EventLog
from reconciler.events.retry import WriteRetry
from reconciler.observer.collectors.docker import HEARTBEAT, now_iso
from reconciler.observer.collectors.node import NodeTarget, node_targets
from reconciler.observer.collectors.pool import CollectorPool
from reconciler.observer.service import COLLECTOR_STATUS
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot

log = logging.getLogger("reconciler.observer")
PRODUCER = "collector"


@dataclass(frozen=True)
class CollectorSettings:
    resync: float = 30.0  # full re-list of every engine
    listing_heartbeat: float = HEARTBEAT
    nodes_period: float = 60.0  # re-read Node manifests from the repository tip
    status_period: float = 5.0
    local_engine: str | None = None  # read unix-socket nodes through this (the proxy)


class CollectorService:
    name = "collector"

    def __init__(
        self, root: RuntimeRoot, repo: Path | None = None, settings: CollectorSettings | None = None
    ) -> None:
        self.root = root
        self.repo = repo
        self.settings = settings or CollectorSettings()
        self._targets: dict[str, NodeTarget] = {}

    def _engine(self, target: NodeTarget) -> NodeTarget:
        engine = self.settings.local_engine
        if engine and target.docker_host.startswith("unix://"):
            return dataclasses.replace(target, docker_host=engine)
        return target

    def run(self, stop: threading.Event) -> None:
        events = EventLog(self.root.ensure(), PRODUCER, retry=WriteRetry(self.name, stop))

        def emit(etype: str, ref: ResourceKey | None, data: dict[str, Any]) -> None:
            events.append(etype, ref, data)

        pool = CollectorPool(
            self.root,
            emit,
            resync=self.settings.resync,
            heartbeat=self.settings.listing_heartbeat,
            engine=self._engine,
        )
        next_nodes = last_status = 0.0
        written: Any = None
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_nodes:
                    self._refresh(pool)
                    next_nodes = now + self.settings.nodes_period
                states = {
                    name: {"collectorStartedAt": s.started_at, "ready": s.ready}
                    for name, s in pool.states().items()
                }
                if states != written or now - last_status >= self.settings.status_period:
                    self.write_status(states)
                    written, last_status = states, now
                stop.wait(min(1.0, self.settings.status_period))
        finally:
            pool.stop()
            events.close()

    def _refresh(self, pool: CollectorPool) -> None:
        try:
            targets, _files = node_targets(self.repo)
        except Exception as exc:  # a bad commit must not stop observation
            log.warning("collector: cannot read Node manifests (%s); keeping the old list", exc)
            return
        if targets != self._targets:
            log.info(
                "collector: watching %s",
                ", ".join(f"{n} at {self._engine(t).docker_host}" for n, t in targets.items()),
            )
        self._targets = targets
        pool.refresh(targets)

    def write_status(self, nodes: dict[str, dict[str, Any]]) -> None:
        doc = {"updatedAt": now_iso(), "producer": PRODUCER, "nodes": nodes}
        try:
            atomic_write_json(self.root.state / COLLECTOR_STATUS, doc)
        except OSError as exc:  # a full disk must not stop the collectors: written next time
            log.error("collector: cannot write %s: %s", COLLECTOR_STATUS, exc)
