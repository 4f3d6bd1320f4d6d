"""In-memory views of the runtime root, refreshed when files change.

`RuntimeViews` holds the world documents, every queued action, the
supervisor, observer and notifier status files, the services' health documents
(`state/services/<name>.json`, reconciler/service_health.py) and a tail of
the event log. A
thread (`watch`, on a `FileWatch`: inotify, nothing wakes while nothing
changes) refreshes only the parts whose files changed and wakes the
live-update streams; request handlers never walk the tree.
Derived tables (resource rows, counts) are computed once per version.
Called by `reconciler.api.services` and the UI service's watcher thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from reconciler.api.disk import DiskThresholds, DiskUsage
from reconciler.api.eventbrowse import EventBrowser
from reconciler.api.eventfeed import EventFeed
from reconciler.file_watch import FileWatch
from reconciler.queue.action import Action, InvalidAction, action_from_json
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import QUEUE_STATES, RuntimeRoot
from reconciler.service_health import read_statuses
from reconciler.world import WorldReader
from reconciler.world.doc import WorldDoc

PARTS = ("world", "queue", "events", "state")
RESYNC_SECONDS = 60.0  # a full re-read, in case a change notification was missed


def _read_doc(path: Path) -> dict[str, Any]:
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {}


class RuntimeViews:
    """A consistent snapshot of the runtime root; `version` grows on every change."""

    def __init__(
        self,
        root: RuntimeRoot,
        *,
        event_capacity: int = 20000,
        disk_thresholds: DiskThresholds | None = None,
    ) -> None:
        self.root = root
        self.disk = DiskUsage(root, disk_thresholds)
        self.feed = EventFeed(root, event_capacity)
        self.browser = EventBrowser(root)  # the events page: the whole retained log
        self.world: dict[ResourceKey, WorldDoc] = {}
        self.queue: dict[str, dict[str, Action]] = {s: {} for s in QUEUE_STATES}
        self.supervisor: dict[str, Any] = {}
        self.observer: dict[str, Any] = {}
        self.services: dict[str, dict[str, Any]] = {}
        self.notifier: dict[str, Any] = {}
        self.source: dict[str, Any] = {}  # the remote follower's status (none: a local repo)
        self.checkpoint_mtime: float | None = None
        self.version = 0
        self.derived: dict[str, Any] = {}
        self._world_reader = WorldReader(root)
        self._stamps: dict[tuple[str, str], tuple[int, int]] = {}
        self._lock = threading.RLock()
        self._subscribers: dict[asyncio.Event, asyncio.AbstractEventLoop] = {}
        self.closed = False

    # ---- refreshing -------------------------------------------------------
    def refresh(self, parts: set[str] | None = None) -> bool:
        """Re-read the given parts (all by default); return whether anything changed."""
        parts = set(PARTS) if parts is None else parts
        with self._lock:
            changed = False
            if "world" in parts:
                changed |= self._refresh_world()
            if "queue" in parts:
                changed |= self._refresh_queue()
            if "events" in parts:
                changed |= self.feed.poll() > 0
            if "state" in parts:
                changed |= self._refresh_state()
            if changed:
                self.version += 1
                self.derived = {}
        if changed:
            self._notify()
        return changed

    def _refresh_world(self) -> bool:
        world = self._world_reader.read()
        if world.keys() == self.world.keys() and all(world[r] is self.world[r] for r in world):
            return False
        self.world = world
        self.disk.world_bytes = self._world_reader.total_bytes()
        return True

    def _refresh_queue(self) -> bool:
        # Copy on write: request handlers iterate the old dicts while we build new ones.
        queue = {state: dict(docs) for state, docs in self.queue.items()}
        changed = False
        for state in QUEUE_STATES:
            changed |= self._refresh_queue_state(state, queue[state])
        if changed:
            self.queue = queue
        return changed

    def _refresh_queue_state(self, state: str, current: dict[str, Action]) -> bool:
        try:
            entries = {
                e.name[:-5]: e for e in os.scandir(self.root.queue_dir(state)) if _is_doc(e.name)
            }
        except FileNotFoundError:
            entries = {}
        changed = False
        for gone in current.keys() - entries.keys():
            del current[gone]
            self._stamps.pop((state, gone), None)
            changed = True
        for action_id, entry in entries.items():
            try:
                st = entry.stat()
            except FileNotFoundError:
                continue
            stamp = (st.st_mtime_ns, st.st_size)
            if self._stamps.get((state, action_id)) == stamp and action_id in current:
                continue
            try:
                action = action_from_json(Path(entry.path).read_bytes())
            except (OSError, InvalidAction):
                continue  # moved away or half-visible; the next refresh sees it
            current[action_id] = action
            self._stamps[(state, action_id)] = stamp
            changed = True
        return changed

    def _refresh_state(self) -> bool:
        supervisor = _read_doc(self.root.state / "supervisor_status.json")
        observer = _read_doc(self.root.state / "observer_status.json")
        services = read_statuses(self.root)
        notifier = _read_doc(self.root.state / "notifier_status.json")
        source = _read_doc(self.root.state / "source" / "status.json")
        try:
            mtime: float | None = self.root.checkpoint.stat().st_mtime
        except FileNotFoundError:
            mtime = None
        new = (supervisor, observer, services, mtime, notifier, source)
        old = (
            self.supervisor,
            self.observer,
            self.services,
            self.checkpoint_mtime,
            self.notifier,
            self.source,
        )
        if new == old:
            return False
        (
            self.supervisor,
            self.observer,
            self.services,
            self.checkpoint_mtime,
            self.notifier,
            self.source,
        ) = new
        return True

    # ---- reading ----------------------------------------------------------
    def find_action(self, action_id: str) -> tuple[str, Action] | None:
        for state in QUEUE_STATES:
            doc = self.queue[state].get(action_id)
            if doc is not None:
                return state, doc
        return None

    def actions_of(self, kind: str, name: str) -> list[tuple[str, Action]]:
        found = [
            (state, action)
            for state in QUEUE_STATES
            for action in self.queue[state].values()
            if action.kind == kind and action.name == name
        ]
        return sorted(found, key=lambda p: p[1].created_at, reverse=True)

    def cached(self, key: str, build: Any) -> Any:
        """A value derived from this version, built once."""
        derived = self.derived
        if key not in derived:
            derived[key] = build()
        return derived[key]

    # ---- live updates -----------------------------------------------------
    def subscribe(self) -> asyncio.Event:
        event = asyncio.Event()
        self._subscribers[event] = asyncio.get_running_loop()
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._subscribers.pop(event, None)

    def _notify(self) -> None:
        for event, loop in list(self._subscribers.items()):
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(event.set)

    def close(self) -> None:
        self.closed = True
        self._notify()

    # ---- watching ---------------------------------------------------------
    def watch(self, stop: threading.Event, *, debounce_ms: int = 50) -> None:
        """Refresh on file changes (and every few seconds anyway) until `stop` is set.

        The watches are registered first and everything is re-read right after,
        so a change made between the app's first read and this thread's start
        (the supervisor proposing while `homelab up` starts) is seen at once,
        not at the next periodic resync.
        """
        self.root.ensure()
        paths = [self.root.world, self.root.queue, self.root.events, self.root.state]
        top = {str(p): p.name for p in paths}
        with FileWatch(paths) as watch:
            watch.close_when(stop)
            self.refresh()
            last_full = time.monotonic()
            while not stop.is_set():
                left = max(0.0, last_full + RESYNC_SECONDS - time.monotonic())
                changes = watch.changes(left, step=0.02, debounce=debounce_ms / 1000)
                if stop.is_set():
                    return
                parts = {_part(path, top) for _, path in changes} - {""}
                if time.monotonic() - last_full >= RESYNC_SECONDS:
                    parts, last_full = set(PARTS), time.monotonic()
                if parts:
                    self.refresh(parts)


def _is_doc(name: str) -> bool:
    return name.endswith(".json") and not name.startswith(".")


def _part(path: str, top: dict[str, str]) -> str:
    for prefix, part in top.items():
        if path.startswith(prefix):
            return part
    return ""
