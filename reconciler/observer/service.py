"""The observer service: collectors in, world documents out, status for the supervisor.

`ObserverService.run(stop)` locks the runtime root, resumes (or rebuilds)
the world, starts one Docker collector thread per Node, and folds new events
whenever the log changes: a watchfiles thread wakes it on any write under
`events/` (and on world documents deleted by hand), with a one-second poll
as a fallback. Between ticks it runs the File collector, refreshes the Node
list from the repository tip, and writes `state/observer_status.json`
(`caughtUp`, lag, and per node `collectorStartedAt` / `lastFullListingAt`,
which the supervisor requires before it proposes deletes). Without Docker
collectors of its own (`--no-docker`, the Compose stack) it takes the nodes'
collector start times from `state/collector_status.json`, which the
collector service (`homelab run collector`) writes, and judges their
listings the same way. Started by `homelab run observer` and `homelab up`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import watchfiles

from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.events.log import EventLog
from reconciler.observer.collectors.docker import now_iso
from reconciler.observer.collectors.file import FileCollector
from reconciler.observer.collectors.node import DesiredFile, NodeTarget, node_targets
from reconciler.observer.collectors.pool import CollectorPool, CollectorState, nodes_status
from reconciler.observer.world_builder import WorldBuilder
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot

log = logging.getLogger("reconciler.observer")
COLLECTOR_STATUS = "collector_status.json"  # written by reconciler.observer.collector_service


@dataclass
class ObserverSettings:
    resync: float = 30.0  # full re-list of every engine
    listing_heartbeat: float = 600.0  # an unchanged listing is written again after this
    file_period: float = 5.0  # File collector
    nodes_period: float = 60.0  # re-read Node manifests from the repository tip
    poll: float = 1.0  # fallback when file watching misses a change
    durable: bool = True
    sync_period: float = 5.0  # longest a busy observer leaves written documents unsynced
    # False where the observer has no engine access (the Compose stack gives the
    # socket to the executor and the read-only proxy only): no Docker collectors
    # here; the collector service observes the engines, and without one the world
    # learns about containers from the executor's reports alone.
    docker: bool = True


def external_collectors(root: RuntimeRoot) -> dict[str, CollectorState]:
    """The collector service's nodes from `state/collector_status.json` ({} without one)."""
    try:
        doc = read_json(root.state / COLLECTOR_STATUS)
    except (OSError, ValueError):
        return {}
    nodes = doc.get("nodes") if isinstance(doc, dict) else None
    if not isinstance(nodes, dict):
        return {}
    return {
        name: CollectorState(str(node.get("collectorStartedAt")), bool(node.get("ready")))
        for name, node in nodes.items()
        if isinstance(node, dict) and isinstance(node.get("collectorStartedAt"), str)
    }


class ObserverService:
    name = "observer"

    def __init__(
        self, root: RuntimeRoot, repo: Path | None = None, settings: ObserverSettings | None = None
    ) -> None:
        self.root = root
        self.repo = repo
        self.settings = settings or ObserverSettings()
        self.builder = WorldBuilder(root, durable=self.settings.durable)
        self._wake = threading.Event()
        self._world_deleted: set[ResourceKey] = set()
        self._deleted_lock = threading.Lock()
        self._collectors: CollectorPool | None = None
        self._targets: dict[str, NodeTarget] = {}
        self._desired_files: list[DesiredFile] = []
        self._files: FileCollector | None = None
        self._log: EventLog | None = None

    def _emit(self, etype: str, ref: ResourceKey | None, data: dict[str, Any]) -> None:
        assert self._log is not None
        self._log.append(etype, ref, data)
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        self.builder.lock()
        self._log = EventLog(self.root, "observer")
        self._files = FileCollector(self._emit)
        if self.settings.docker:
            self._collectors = CollectorPool(
                self.root,
                self._emit,
                resync=self.settings.resync,
                heartbeat=self.settings.listing_heartbeat,
            )
        # The watcher gets an event of its own: `stop` belongs to whoever runs us
        # (in `homelab up` setting it once stopped every service in the process).
        halt = threading.Event()
        watcher = threading.Thread(target=self._watch, args=(halt,), name="observer-watch")
        try:
            log.info("observer: %s", self.builder.open())
            gc.freeze()  # the loaded world is long-lived: keep the cyclic GC off it
            watcher.start()
            self._loop(stop)
        finally:
            halt.set()
            # The runner calls run() again after a failure: start collectors afresh.
            if self._collectors is not None:
                self._collectors.stop()
            self._targets = {}
            if watcher.is_alive():
                watcher.join(timeout=10)
            self._log.close()
            try:
                self.builder.sync()
            finally:
                self.builder.unlock()

    def _watch(self, stop: threading.Event) -> None:
        """Wake the loop on log appends; notice world documents deleted by hand."""
        paths = [self.root.events, self.root.world]
        for changes in watchfiles.watch(
            *paths,
            watch_filter=None,
            debounce=20,
            step=10,
            stop_event=stop,
            rust_timeout=1000,
            yield_on_timeout=True,
            raise_interrupt=False,
        ):
            for change, path in changes:
                p = Path(path)
                if (
                    change == watchfiles.Change.deleted
                    and p.name.endswith(".json")
                    and not p.name.startswith(".")
                    and p.parent.parent == self.root.world
                ):
                    with self._deleted_lock:
                        self._world_deleted.add(ResourceKey(p.parent.name, p.name[:-5]))
            if changes:
                self._wake.set()

    def _loop(self, stop: threading.Event) -> None:
        next_nodes = next_files = 0.0
        last_status = last_sync = 0.0
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_nodes:
                self._refresh_nodes()
                next_nodes = now + self.settings.nodes_period
            with self._deleted_lock:
                deleted, self._world_deleted = self._world_deleted, set()
            if deleted:
                self.builder.restore_deleted(deleted)
            result = self.builder.tick()
            if not self.builder.synced and (
                not result.events or now - last_sync >= self.settings.sync_period
            ):
                self.builder.sync()  # idle, or busy for a while: make the world durable
                last_sync = now
            if now >= next_files:
                assert self._files is not None
                self._files.learn(self.builder.state.docs, self._desired_files)
                local = {n for n, t in self._targets.items() if t.local}
                self._files.check(self.builder.state.docs, local)
                next_files = now + self.settings.file_period
            if result.events or now - last_status >= 5.0:
                self.write_status()
                last_status = now
            self._wake.wait(self.settings.poll)
            self._wake.clear()

    def _refresh_nodes(self) -> None:
        try:
            targets, files = node_targets(self.repo)
        except Exception as exc:  # a bad commit must not stop observation
            log.warning("observer: cannot read Node manifests (%s); keeping the old list", exc)
            return
        self._desired_files = files
        self._targets = targets
        if self._collectors is not None:
            self._collectors.refresh(targets)

    def write_status(self) -> None:
        if self._collectors is not None:
            states = self._collectors.states()
        else:
            states = external_collectors(self.root)
        nodes = nodes_status(states, self.builder.state.listings)
        lag = self.builder.reader.lag_bytes()
        status = {
            "caughtUp": lag == 0,
            "updatedAt": now_iso(),
            "lagBytes": lag,
            "eventsFolded": self.builder.state.folded,
            "documents": len(self.builder.state.docs),
            "nodes": nodes,
            "dockerCollectors": self.settings.docker,
            "collectorService": self._collectors is None and bool(states),
        }
        atomic_write_json(self.root.state / "observer_status.json", status)
