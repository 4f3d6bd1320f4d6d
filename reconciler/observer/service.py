"""The observer service: collectors in, world documents out, status for the supervisor.

`ObserverService.run(stop)` locks the runtime root, resumes (or rebuilds)
the world, starts one Docker collector thread per Node, and folds new events
whenever the log changes: a `FileWatch` (inotify, no polling) wakes it on
any write under `events/` and on world documents deleted by hand, and a slow
`poll` is the fallback for a missed notification. Between ticks it runs the
File collector every `file_period` seconds and at once when a managed
file's folder reports a change (a second `FileWatch` on the folders of the
local nodes' File paths: a hand edit or chmod is seen in well under a
second), refreshes the Node list from
the repository tip, and writes `state/observer_status.json` (`caughtUp`,
lag, and per node `collectorStartedAt` / `lastFullListingAt`, which the
supervisor requires before it proposes deletes) when its content changed:
an idle observer rewrites nothing (the supervisor watches that file, and
liveness is the heartbeat of `state/services/observer.json`). Without
Docker collectors of its own (`--no-docker`, the Compose stack) it takes the
nodes' collector start times from `state/collector_status.json`, which the
collector service (`homelab run collector`) writes, and judges their
listings the same way. A thread of its own compresses old, covered days
of the event log and applies the operator's deletion bounds
(reconciler/observer/compaction.py; homelab.yaml's `eventLog`, the
`--compress-after-days` flag), a minute after start and then hourly, so
the folding loop never waits for it.
A full disk stopping a tick is ridden out, not
raised: the error is logged and reported, and once space is back the
world is re-opened from the checkpoint and the log (what was folded but not
written is folded again). Started by `homelab run observer` and `homelab up`.
"""

from __future__ import annotations

import contextlib
import errno
import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.errors import GitError, StorageError
from reconciler.events.log import EventLog
from reconciler.events.retry import WriteRetry
from reconciler.file_watch import Change, FileWatch
from reconciler.observer.collectors.docker import now_iso
from reconciler.observer.collectors.file import FileCollector
from reconciler.observer.collectors.node import (
    DesiredFile,
    NodeTarget,
    node_targets,
    targets_from_state,
)
from reconciler.observer.collectors.pool import CollectorPool, CollectorState, nodes_status
from reconciler.observer.compaction import RetentionPolicy, compact, due_in
from reconciler.observer.recovery import SnapshotPolicy
from reconciler.observer.world_builder import WorldBuilder
from reconciler.resources.key import ResourceKey
from reconciler.resources.repo import EventLogRetention
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.blobcache import BlobCache
from reconciler.sources.git import GitSource
from reconciler.sources.signatures import SignedCommitGate

log = logging.getLogger("reconciler.observer")
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
PROBE_BYTES = 256 * 1024  # written and removed before re-opening after a full disk
COLLECTOR_STATUS = "collector_status.json"  # written by reconciler.observer.collector_service


@dataclass
class ObserverSettings:
    resync: float = 30.0  # full re-list of every engine
    listing_heartbeat: float = 600.0  # an unchanged listing is written again after this
    file_period: float = 5.0  # File collector
    nodes_period: float = 60.0  # re-read Node manifests from the repository tip
    poll: float = 30.0  # fallback when file watching misses a change
    durable: bool = True
    sync_period: float = 5.0  # longest a busy observer leaves written documents unsynced
    # False where the observer has no engine access (the Compose stack gives the
    # socket to the executor and the read-only proxy only): no Docker collectors
    # here; the collector service observes the engines, and without one the world
    # learns about containers from the executor's reports alone.
    docker: bool = True
    # The compose CLI the stack observation runs `config --hash` with (None: what
    # is installed, as the executor's default); it must be the executor's.
    compose_command: tuple[str, ...] | None = None
    # Event-log retention (reconciler/observer/compaction.py), in a thread of its
    # own: first `compaction_delay` s after start, then every `compaction_period`
    # (sooner, `compaction_retry`, while a due day waits for coverage or a writer).
    # `compress_after_days` overrides homelab.yaml's eventLog.compressAfterDays.
    compaction: bool = True
    compress_after_days: int | None = None
    compaction_delay: float = 60.0
    compaction_period: float = 3600.0
    compaction_retry: float = 300.0
    # Snapshots of the fold (ROOT/state/snapshots/), so a lost checkpoint costs a
    # replay of the events since the last one, not of the whole log.
    snapshots: SnapshotPolicy = field(default_factory=SnapshotPolicy)


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
        self.builder = WorldBuilder(
            root, durable=self.settings.durable, snapshots=self.settings.snapshots
        )
        self._wake = threading.Event()
        self._world_deleted: set[ResourceKey] = set()
        self._deleted_lock = threading.Lock()
        self._collectors: CollectorPool | None = None
        self._targets: dict[str, NodeTarget] = {}
        self._desired_files: list[DesiredFile] = []
        self._files: FileCollector | None = None
        self._log: EventLog | None = None
        # The manifests cache the supervisor keeps warm: the first Node list (on the
        # way to the first file check) costs a cache read, not a parse of every file.
        self._source = GitSource(repo, None, BlobCache(root.cache)) if repo else None
        self._signatures = SignedCommitGate(root, repo) if repo else None
        self._status: dict[str, Any] | None = None  # what observer_status.json holds
        self._file_watch: FileWatch | None = None  # the folders of the managed files
        self._file_dirs: frozenset[Path] = frozenset()
        self._file_paths: frozenset[str] = frozenset()
        self._files_due = False
        self._files_checked = False
        self._retention = EventLogRetention()  # homelab.yaml's eventLog, at the tip
        self._space_pause, self._space_at = 0.5, 0.0  # waits after a full disk stopped a tick

    def _emit(self, etype: str, ref: ResourceKey | None, data: dict[str, Any]) -> None:
        assert self._log is not None
        self._log.append(etype, ref, data)
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        self.builder.lock()
        self._log = EventLog(self.root, "observer", retry=WriteRetry("observer", stop))
        self._files = FileCollector(self._emit)
        if self.settings.docker:
            self._collectors = CollectorPool(
                self.root,
                self._emit,
                resync=self.settings.resync,
                heartbeat=self.settings.listing_heartbeat,
                compose_command=self.settings.compose_command,
            )
        watch = FileWatch(
            [self.root.events, self.root.world], relevant=self._relevant, on_change=self._changed
        )
        compactor: threading.Thread | None = None
        done = threading.Event()  # set when this run ends, however it ends
        try:
            log.info("observer: %s", self.builder.open())
            gc.freeze()  # the loaded world is long-lived: keep the cyclic GC off it
            watch.start()
            if self.settings.compaction:
                compactor = threading.Thread(
                    target=self._compaction_loop, args=(done,), name="compaction", daemon=True
                )
                compactor.start()
            while True:
                try:
                    self._loop(stop)
                    break
                except OSError as exc:
                    if exc.errno not in DISK_FULL or stop.is_set():
                        raise
                    self._ride_out(exc, stop)
        finally:
            done.set()
            if compactor is not None:
                compactor.join()  # it stops between days
            watch.close()
            self._unwatch_files()
            # The runner calls run() again after a failure: start collectors afresh.
            if self._collectors is not None:
                self._collectors.stop()
            self._targets = {}
            self._status = None
            self._files_checked = False
            self._log.close()
            try:
                self.builder.sync()
            finally:
                self.builder.unlock()

    def retention(self) -> RetentionPolicy:
        """homelab.yaml's eventLog bounds, with the service flag's compression age."""
        policy = RetentionPolicy.from_config(self._retention)
        if self.settings.compress_after_days is not None:
            policy = RetentionPolicy(
                self.settings.compress_after_days,
                policy.delete_after_days,
                policy.delete_audit_after_days,
            )
        return policy

    def _compaction_loop(self, done: threading.Event) -> None:
        """Compress and delete old days now and then; never in the folding loop's way."""
        wait = self.settings.compaction_delay
        while not done.wait(wait):
            wait = self.settings.compaction_retry
            try:
                report = compact(self.root, self.retention(), stop=done)
            except Exception as exc:  # a full disk, a bad bound: say so, try again later
                log.warning("observer: event-log compaction failed (%s); retrying later", exc)
                continue
            for line in report.lines() if report.days or report.repaired else []:
                log.info("observer: compaction: %s", line)
            wait = due_in(report, self.settings.compaction_period, self.settings.compaction_retry)

    def _ride_out(self, exc: OSError, stop: threading.Event) -> None:
        """The world or its checkpoint could not be written (a full disk): wait, then re-open.

        What was folded but not written is folded again from the checkpoint
        and the log, so nothing is lost; the wait is reported like a refused
        append (log, the health document's `storage`), and the service keeps
        running instead of counting failures towards its restart bound.
        """
        log.error(
            "observer: cannot write the world (%s); re-opening from the checkpoint once "
            "space is freed",
            exc,
        )
        now = time.monotonic()
        self._space_pause = min(30.0, self._space_pause * 2) if now - self._space_at < 60 else 0.5
        self._space_at = now
        stop.wait(self._space_pause)  # room for a probe is not room for a tick: do not spin

        def reopen() -> str:
            try:
                probe = self.root.state / ".observer-space-probe"
                with open(probe, "wb") as fh:
                    fh.write(b"\0" * PROBE_BYTES)
                    fh.flush()
                probe.unlink()
                self.builder.unlock()
                self.builder = WorldBuilder(
                    self.root, durable=self.settings.durable, snapshots=self.settings.snapshots
                )
                self.builder.lock()
                return self.builder.open()
            except OSError as err:
                if err.errno not in DISK_FULL:
                    raise
                with contextlib.suppress(OSError):
                    probe.unlink()
                raise StorageError(
                    "write the world", self.root.world, err, "folded again once space is freed"
                ) from err

        retry = WriteRetry("observer", stop)
        log.info("observer: %s", retry.run("the world and its checkpoint", reopen))

    def _relevant(self, change: Change, path: str) -> bool:
        """Appends to the log wake the loop; of the world, only documents deleted by hand."""
        p = Path(path)
        if p.is_relative_to(self.root.events):
            return True
        return (
            change == "deleted"
            and p.name.endswith(".json")
            and not p.name.startswith(".")
            and p.parent.parent == self.root.world
        )

    def _changed(self, change: Change, path: str) -> None:
        """On the watch's thread: note a deleted world document, wake the loop."""
        p = Path(path)
        if p.parent.parent == self.root.world:
            with self._deleted_lock:
                self._world_deleted.add(ResourceKey(p.parent.name, p.name[:-5]))
        self._wake.set()

    def _loop(self, stop: threading.Event) -> None:
        next_nodes = next_files = 0.0
        last_sync = 0.0
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
            self.write_status()  # at once: the supervisor plans when a tick is whole
            if not self.builder.synced and (
                not result.events or now - last_sync >= self.settings.sync_period
            ):
                self.builder.sync()  # idle, or busy for a while: make the world durable
                last_sync = now
            if now >= next_files or self._files_due:
                self._files_due = False
                assert self._files is not None
                self._files.learn(self.builder.state.docs, self._desired_files)
                local = {n for n, t in self._targets.items() if t.local}
                self._files.check(self.builder.state.docs, local)
                self._files_checked = True
                self._watch_files(local)
                next_files = now + self.settings.file_period
                self.write_status()  # filesChecked, and the lag of what the check appended
            wait = min(next_nodes, next_files) - time.monotonic()
            if not self.builder.synced:
                wait = min(wait, self.settings.sync_period)
            self._wake.wait(max(0.0, min(wait, self.settings.poll)))
            self._wake.clear()

    def _watch_files(self, local: set[str]) -> None:
        """Watch the folders of the managed files on local nodes (re-made when they change)."""
        assert self._files is not None
        paths = frozenset(path for node, path in self._files.paths() if node in local)
        dirs = frozenset(d for d in {Path(p).parent for p in paths} if d.is_dir())
        self._file_paths = paths
        if dirs == self._file_dirs and self._file_watch is not None:
            return
        self._unwatch_files()
        self._file_dirs = dirs
        if not dirs:
            return
        watch = FileWatch(
            [(d, False) for d in sorted(dirs)],
            relevant=lambda _change, path: path in self._file_paths,
            on_change=self._file_changed,
            attributes=True,  # a chmod or chown by hand is drift too
        )
        try:
            watch.start()
        except (OSError, FileNotFoundError) as exc:  # a folder removed meanwhile: poll it
            log.info("observer: cannot watch the managed files' folders (%s)", exc)
            watch.close()
            self._file_dirs = frozenset()
            return
        self._file_watch = watch

    def _unwatch_files(self) -> None:
        if self._file_watch is not None:
            self._file_watch.close()
        self._file_watch = None
        self._file_dirs = frozenset()

    def _file_changed(self, change: Change, path: str) -> None:
        """On the file watch's thread: a managed file changed; check the files now."""
        self._files_due = True
        self._wake.set()

    def _commit_in_force(self) -> str | None:
        """The tip, or the last verified commit while signed commits hold the tip back."""
        if self._source is None or self._signatures is None:
            return None
        decision = self._signatures.decide(self._source.repo.resolve(None), record=False)
        if decision.commit is None:
            raise GitError(f"signed commits: {decision.held}")
        return decision.commit

    def _refresh_nodes(self) -> None:
        try:
            if self._source is not None:
                state = self._source.load(self._commit_in_force())
                targets, files = targets_from_state(state)
                self._retention = state.config.eventLog
            else:
                targets, files = node_targets(self.repo)
        except Exception as exc:  # a bad commit must not stop observation
            log.warning("observer: cannot read Node manifests (%s); keeping the old list", exc)
            return
        self._desired_files = files
        self._targets = targets
        if self._collectors is not None:
            self._collectors.refresh(targets)

    def write_status(self) -> None:
        """Write `state/observer_status.json` when anything but its `updatedAt` changed."""
        if self._collectors is not None:
            states = self._collectors.states()
        else:
            states = external_collectors(self.root)
        nodes = nodes_status(states, self.builder.state.listings)
        lag = self.builder.reader.lag_bytes()
        status = {
            "caughtUp": lag == 0,
            "lagBytes": lag,
            "eventsFolded": self.builder.state.folded,
            "documents": len(self.builder.state.docs),
            "nodes": nodes,
            "dockerCollectors": self.settings.docker,
            "collectorService": self._collectors is None and bool(states),
            # Since this start: the managed files were checked once (with `caughtUp`,
            # what that found is folded; the supervisor's first pass waits for it).
            "filesChecked": self._files_checked,
        }
        if status == self._status:
            return
        atomic_write_json(
            self.root.state / "observer_status.json", {**status, "updatedAt": now_iso()}
        )
        self._status = status
