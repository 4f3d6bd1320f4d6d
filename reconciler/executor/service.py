"""The executor service: watches `queue/approved/` and runs what appears there.

`Executor.run(stop)` takes the exclusive lock (a second executor on the same
root exits with a message naming the holder), finishes queue moves a crash
interrupted after their event was recorded (`ActionQueue.finish_interrupted`),
resolves actions left in `running/` by a crash (`ActionRunner.recover`), then waits on file-system
notifications for `queue/approved/` (a `FileWatch`: an approval starts
within well under half a second, and nothing wakes while nothing is
approved; a slow tick re-scans for anything missed, every `TICK_SECONDS`,
or every `WINDOW_TICK_SECONDS` while approved actions wait for a
maintenance window to open). Approved actions run one at a time, oldest approval first,
except that one whose `dependsOn` is not settled waits, unclaimed, and the
next ready one runs (`reconciler.executor.dependencies`; re-checked every
`DEPENDENCY_TICK_SECONDS` while any waits). While
every maintenance window of `homelab.yaml` is closed they wait, visibly: one
`action.waiting` event each and `state/executor_status.json`. Called by
`homelab run executor` and `homelab up`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.atomic_files import atomic_write_json
from reconciler.drivers.base import Driver, DriverSettings
from reconciler.drivers.compose import ComposeDriver
from reconciler.drivers.docker import DockerDriver
from reconciler.drivers.file import FileDriver
from reconciler.drivers.network import NetworkDriver
from reconciler.drivers.volume import VolumeDriver
from reconciler.errors import HomelabError
from reconciler.events.log import EventLog
from reconciler.events.retry import WriteRetry
from reconciler.executor.action_runner import ACTOR, ActionRunner, RetryPolicy
from reconciler.executor.context import DesiredView
from reconciler.executor.dependencies import DEFAULT_TIMEOUT, DependencyGate, Verdict
from reconciler.executor.lock import ExecutorLock
from reconciler.executor.window import next_opening, window_open
from reconciler.file_watch import Change, FileWatch
from reconciler.queue.action import now_iso
from reconciler.queue.store import ActionQueue
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.blobcache import BlobCache
from reconciler.sources.git import GitSource

TICK_SECONDS = 60.0  # re-scan for an approval the watch missed
WINDOW_TICK_SECONDS = 5.0  # while approved actions wait: how soon an opened window is seen
DEPENDENCY_TICK_SECONDS = 1.0  # while actions wait for dependencies (health, a reject)
log = logging.getLogger("reconciler.executor")


def default_drivers() -> dict[str, Driver]:
    return {
        "Container": DockerDriver(),
        "File": FileDriver(),
        "ComposeStack": ComposeDriver(),
        "Network": NetworkDriver(),
        "Volume": VolumeDriver(),
    }


def _approved_only(approved: Path) -> Callable[[Change, str], bool]:
    def relevant(change: Change, path: str) -> bool:
        p = Path(path)
        return p.parent == approved and p.name.endswith(".json") and not p.name.startswith(".")

    return relevant


class Executor:
    """One executor per runtime root; see the module docstring."""

    name = "executor"

    def __init__(
        self,
        root: RuntimeRoot,
        repo: Path,
        *,
        manifests_path: str | None = None,
        settings: DriverSettings | None = None,
        retry: RetryPolicy | None = None,
        drivers: dict[str, Driver] | None = None,
        dependency_timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.root = root.ensure()
        self.source = GitSource(repo, manifests_path, BlobCache(root.cache))
        self.desired = DesiredView(self.source, self.root)  # one, so verdicts stay cached
        self._fixed_path = manifests_path is not None
        self.settings = settings or DriverSettings()
        self.retry = retry or RetryPolicy()
        self.drivers = drivers or default_drivers()
        self.lock = ExecutorLock(root)
        self._announced: set[str] = set()
        self._told: dict[str, str] = {}  # action id -> the dependency wait last announced
        self.dependency_timeout = dependency_timeout
        self._dependency_gate: DependencyGate | None = None
        self._status: dict[str, Any] = {}

    def run(self, stop: threading.Event) -> None:
        self.lock.acquire()
        events = EventLog(self.root, ACTOR, retry=WriteRetry("executor", stop))
        try:
            if not self._fixed_path:
                self._pick_manifests_path()
            queue = ActionQueue(self.root, events)
            view = self.desired
            runner = ActionRunner(
                queue,
                events,
                view,
                self.drivers,
                settings=self.settings,
                retry=self.retry,
                stop=stop,
            )
            self._write_status("recovering", None, [])
            for action_id, state in queue.finish_interrupted():
                log.info("executor: finished an interrupted move of %s to %s", action_id, state)
            for action in queue.actions("running"):
                if stop.is_set():
                    return
                self._write_status("recovering", action.id, [])
                runner.recover(action)
            self._loop(stop, queue, runner, events)
        finally:
            for driver in self.drivers.values():
                driver.close()
            events.close()
            self.lock.release()

    def _pick_manifests_path(self) -> None:
        # No commit yet: keep the default; actions are checked when they come.
        with contextlib.suppress(HomelabError):
            state = self.desired.load_desired()
            self.source.path = state.config.manifestsPath.strip("/") or "."

    def _loop(
        self, stop: threading.Event, queue: ActionQueue, runner: ActionRunner, events: EventLog
    ) -> None:
        # All of queue/ (the filter keeps arrivals in approved/): one inotify watch
        # set whatever folder the next state of the queue moves an action to.
        approved = self.root.queue_dir("approved")
        watch = FileWatch([self.root.queue], relevant=_approved_only(approved))
        with watch:
            watch.close_when(stop)
            self.drain(stop, queue, runner, events)
            while not stop.is_set():
                state = self._status.get("state")
                tick = {
                    "waiting-for-window": WINDOW_TICK_SECONDS,
                    "waiting-for-dependencies": DEPENDENCY_TICK_SECONDS,
                }.get(str(state), TICK_SECONDS)
                watch.changes(tick, step=0.02, debounce=0.2)
                self.drain(stop, queue, runner, events)

    def _approved(self, queue: ActionQueue) -> list[str]:
        folder = self.root.queue_dir("approved")
        stamped = []
        for action_id in queue.ids("approved"):
            try:
                stamped.append(((folder / f"{action_id}.json").stat().st_mtime_ns, action_id))
            except FileNotFoundError:
                continue
        return [action_id for _, action_id in sorted(stamped)]

    def drain(
        self, stop: threading.Event, queue: ActionQueue, runner: ActionRunner, events: EventLog
    ) -> None:
        """Run every approved action now (or mark them waiting for a window)."""
        while not stop.is_set():
            ids = self._approved(queue)
            if not ids:
                self._write_status("idle", None, [])
                return
            if not self._window_allows(queue, ids, events):
                return
            chosen = self._next_ready(queue, runner, ids, events)
            if chosen is None:
                continue  # one was failed for its dependency: look again
            if not chosen:
                return  # every approved action waits for a dependency
            self._write_status("running", chosen, [i for i in ids if i != chosen])
            runner.claim_and_run(chosen)
            self._gate(queue).note(chosen)
            self._announced.discard(chosen)
            self._told.pop(chosen, None)

    def _gate(self, queue: ActionQueue) -> DependencyGate:
        gate = self._dependency_gate
        if gate is None or gate.queue is not queue:
            gate = DependencyGate(self.root, queue, timeout=self.dependency_timeout)
            self._dependency_gate = gate
        return gate

    def _next_ready(
        self, queue: ActionQueue, runner: ActionRunner, ids: list[str], events: EventLog
    ) -> str | None:
        """The first approved action whose dependencies are settled ("" when all wait).

        None after failing an action whose dependency failed (the caller looks again).
        """
        gate = self._gate(queue)
        board = gate.board()
        self._told = {i: r for i, r in self._told.items() if i in ids}  # left approved/
        blocked: dict[str, str] = {}
        for action_id in ids:
            action = gate.read("approved", action_id)
            if action is None:
                continue  # moved meanwhile (a reject)
            verdict: Verdict = gate.verdict(action, board)
            if verdict.state == "ready":
                return action_id
            if verdict.state == "fail":
                runner.fail_unrun(action, verdict.reason)
                gate.note(action_id)
                self._told.pop(action_id, None)
                return None
            blocked[action_id] = verdict.reason
            if self._told.get(action_id) != verdict.reason:
                self._told[action_id] = verdict.reason
                runner.waiting(action, verdict.reason)
        self._write_status("waiting-for-dependencies", None, list(blocked), blocked=blocked)
        return ""

    def _window_allows(self, queue: ActionQueue, ids: list[str], events: EventLog) -> bool:
        try:
            windows = self.desired.load_desired().config.maintenanceWindows
        except HomelabError:
            return True  # the runner reports an unreadable repository per action
        now = datetime.now(UTC)
        if window_open(windows, now):
            return True
        opening = next_opening(windows, now)
        when = opening.strftime("%Y-%m-%dT%H:%M:%SZ") if opening else "never"
        for action_id in ids:
            if action_id in self._announced:
                continue
            found = queue.get(action_id)
            if found is None:
                continue
            _state, action = found
            self._announced.add(action_id)
            events.append(
                "action.waiting",
                action.key,
                {
                    "action": action_id,
                    "operation": action.operation,
                    "actor": ACTOR,
                    "state": "waiting",
                    "reason": f"outside the maintenance windows; next opens at {when}",
                },
            )
        self._write_status("waiting-for-window", None, ids, nextWindowAt=when)
        return False

    def _write_status(
        self, state: str, current: str | None, waiting: list[str], **extra: Any
    ) -> None:
        doc = {"state": state, "current": current, "waiting": waiting, **extra}
        if doc == self._status:
            return
        self._status = doc
        holder = self.lock.holder() or {}
        try:
            atomic_write_json(
                self.root.state / "executor_status.json",
                {**doc, "holder": holder, "updatedAt": now_iso()},
                durable=False,
            )
        except OSError as exc:  # a full disk must not stop the executor: written next time
            self._status = {}
            log.error("executor: cannot write executor_status.json: %s", exc)


ExecutorService = Executor  # the name `homelab up` looks up
