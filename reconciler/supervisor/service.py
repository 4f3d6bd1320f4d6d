"""The supervisor service: level-triggered reconcile of every resource.

`Supervisor.run(stop)` plans the whole desired state against the world
(`compute_plan`, the same diff as `homelab plan`) whenever something the
plan depends on changes (`Wakeup`: a commit on the tracked branch, world
documents, queue outcomes, the observer's status) and every `resync`
seconds, and lets `Proposer` make the queue match. A wake-up whose inputs
did not change (same commit, world, queue and gate) costs a few stats and
a `git rev-parse`, not a plan. When the source requires signed commits,
the commit planned is the one `SignedCommitGate` keeps in force (an
unsigned tip is held back and the reason reported). Each pass ends by writing
`state/supervisor_status.json` (docs/internals.md), which the UI reads.
Errors of one pass (git unreachable, a bug) are logged and reported in
that file; the service keeps running. With a remote repository (`remote`)
it runs the source follower (`reconciler.sources.follow`) beside the loop:
each fetch that moves the mirror's branch wakes it through the watch of
`refs/heads/`, a change of SourceReady wakes it directly, and while the
source is not ready no delete is proposed. The commit planned is
`commit_in_force`. Called by `homelab run supervisor` and `homelab up`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.errors import HomelabError
from reconciler.events.log import EventLog
from reconciler.events.retry import WriteRetry
from reconciler.planning import compute_plan
from reconciler.queue import ActionQueue
from reconciler.queue.action import now_iso
from reconciler.queue.reproposals import reopened
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.blobcache import BlobCache
from reconciler.sources.follow import Follower, FollowSettings, commit_in_force, source_gate
from reconciler.sources.git import GitSource
from reconciler.sources.remote import Remote
from reconciler.sources.signatures import GateDecision, SignedCommitGate
from reconciler.supervisor.flap import FlapGuard, read_flap_state, ref_key
from reconciler.supervisor.policy import Gate, deletes_gate
from reconciler.supervisor.proposals import Proposer, RefStatus
from reconciler.supervisor.watch import Wakeup
from reconciler.world import WorldReader

log = logging.getLogger("reconciler.supervisor")
STATUS_FILE = "supervisor_status.json"
OBSERVER_STATUS = "observer_status.json"


@dataclass(frozen=True)
class SupervisorSettings:
    resync: float = 60.0
    flap_threshold: int = 3
    flap_window: float = 3600.0
    step_ms: int = 20
    debounce_ms: int = 300
    # Before the first pass, how long to wait for the observer to fold a fresh look
    # (its status says `filesChecked` and `caughtUp`, written since this start).
    startup_wait: float = 3.0


def read_observer_status(root: RuntimeRoot) -> dict[str, Any] | None:
    try:
        doc = read_json(root.state / OBSERVER_STATUS)
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _relay(stop: threading.Event, watch_stop: threading.Event, wake: threading.Event) -> None:
    """Wake the loop when asked to stop, so it never waits out a resync period."""
    stop.wait()
    watch_stop.set()
    wake.set()


class Supervisor:
    name = "supervisor"

    def __init__(
        self,
        repo: Path,
        root: RuntimeRoot,
        ref: str | None = None,
        settings: SupervisorSettings | None = None,
        remote: Remote | None = None,
        follow: FollowSettings | None = None,
    ) -> None:
        self.repo = repo
        self.remote = remote
        self.follow = follow or FollowSettings()
        self.root = root.ensure()
        self.ref = ref
        self.settings = settings or SupervisorSettings()
        self.source = GitSource(repo, None, BlobCache(self.root.cache))
        self.signatures = SignedCommitGate(self.root, repo)
        self.world = WorldReader(self.root)
        self.events = EventLog(self.root, "supervisor")
        self.queue = ActionQueue(self.root, self.events)
        self.flap = FlapGuard(
            self.root, threshold=self.settings.flap_threshold, window=self.settings.flap_window
        )
        self.proposer = Proposer(self.queue, self.events, self.flap)
        self.last_resync: str | None = None
        self._last_inputs: Any = None
        self._restore_conditions()

    def _restore_conditions(self) -> None:
        """Remember the conditions reported before a restart, so fixes clear them."""
        try:
            previous = read_json(self.root.state / STATUS_FILE).get("resources") or {}
        except (OSError, ValueError, AttributeError):
            return
        for key, entry in previous.items():
            kind, _, name = key.partition("/")
            status = (entry or {}).get("status")
            if status == "Invalid":
                self.proposer.conditions[(ResourceKey(kind, name), "InvalidManifest")] = True
            elif status == "Flapping":
                self.proposer.conditions[(ResourceKey(kind, name), "Flapping")] = True

    def _inputs(self) -> Any:
        """What one pass depends on; equal inputs give an equal plan."""
        tip = commit_in_force(self.root, self.repo, self.ref)
        decision = self.signatures.decide(tip)
        world = self.world.read()
        gate = deletes_gate(read_observer_status(self.root))
        if self.remote is not None:
            why = source_gate(self.root)
            if why is not None:
                gate = Gate(False, why)
        return (
            decision,
            world,
            gate,
            self.queue.snapshot(),
            read_flap_state(self.root),
            reopened(self.root),
        )

    def reconcile(self, *, force: bool = False) -> dict[str, Any] | None:
        """One pass; returns the status written, or None when nothing changed."""
        inputs = self._inputs()
        if not force and inputs == self._last_inputs:
            return None
        decision, _world, gate, _queue, _flap, again = inputs
        if decision.commit is None:
            return self._hold_everything(inputs, decision)
        commit = decision.commit
        state = self.source.load(commit)
        wanted = state.config.manifestsPath.strip("/") or "."
        if wanted != self.source.path:
            self.source.path = wanted
            state = self.source.load(commit)
        result = compute_plan(self.source, self.root, commit, world_reader=self.world, state=state)
        statuses = self.proposer.apply(result, gate, again)
        status = self._status(commit, statuses, [str(e) for e in result.errors])
        self._note_signatures(status, decision)
        status["manifestErrors"] = [e.to_json() for e in result.errors]
        if not gate.open and any(c.operation == "delete" for c in result.plan.changes):
            status["errors"].append(f"deletes withheld: {gate.reason}")
        self._write_status(status)
        # The pass's own queue and flap writes must not trigger another pass; a commit
        # or world change that arrived meanwhile must, so those keep the values planned.
        self._last_inputs = (
            decision,
            _world,
            gate,
            self.queue.snapshot(),
            read_flap_state(self.root),
            again,
        )
        return status

    @staticmethod
    def _note_signatures(status: dict[str, Any], decision: GateDecision) -> None:
        if decision.required:
            status["signedCommits"] = decision.to_json()
        if decision.held:
            status["errors"].append(f"signed commits: {decision.held}")

    def _hold_everything(self, inputs: Any, decision: GateDecision) -> dict[str, Any]:
        """No commit may be planned (none verified yet): propose nothing, say why."""
        try:
            previous = read_json(self.root.state / STATUS_FILE).get("resources") or {}
        except (OSError, ValueError, AttributeError):
            previous = {}
        status: dict[str, Any] = {
            "commit": None,
            "updatedAt": now_iso(),
            "lastResyncAt": self.last_resync,
            "resources": previous,
            "errors": [],
        }
        self._note_signatures(status, decision)
        self._write_status(status)
        self._last_inputs = inputs
        return status

    def _status(
        self, commit: str, statuses: dict[ResourceKey, RefStatus], errors: list[str]
    ) -> dict[str, Any]:
        return {
            "commit": commit,
            "updatedAt": now_iso(),
            "lastResyncAt": self.last_resync,
            "resources": {ref_key(ref): s.to_json() for ref, s in statuses.items()},
            "errors": errors,
        }

    def _write_status(self, status: dict[str, Any]) -> None:
        try:
            atomic_write_json(self.root.state / STATUS_FILE, status)
        except OSError as exc:  # a full disk: the next pass writes it again
            log.error("supervisor: cannot write %s: %s", STATUS_FILE, exc)

    def _report_failure(self, exc: Exception) -> None:
        try:
            previous = read_json(self.root.state / STATUS_FILE)
        except (OSError, ValueError):
            previous = {"commit": None, "resources": {}, "lastResyncAt": self.last_resync}
        previous["updatedAt"] = now_iso()
        previous["errors"] = [f"supervisor pass failed: {exc}"]
        self._write_status(previous)

    def run(self, stop: threading.Event) -> None:
        """Reconcile on every wake-up and every `resync` seconds until `stop`."""
        started = now_iso()
        self.events.retry = WriteRetry("supervisor", stop)  # a full disk: wait, keep proposing
        wake = threading.Event()
        watcher = Wakeup(
            self.repo,
            self.root,
            wake,
            step_ms=self.settings.step_ms,
            debounce_ms=self.settings.debounce_ms,
        )
        watch_stop = threading.Event()  # ends this run's watch even when run() raises
        watch_thread = watcher.start(watch_stop)
        threading.Thread(target=_relay, args=(stop, watch_stop, wake), daemon=True).start()
        if self.remote is not None:
            Follower(self.remote, self.root, self.follow, emit=self._source_event(wake)).start(
                watch_stop
            )
        next_resync = 0.0
        try:
            self._await_observer(stop, wake, started)
            while not stop.is_set():
                wake.wait(max(0.0, next_resync - time.monotonic()))
                if stop.is_set():
                    break
                wake.clear()
                periodic = time.monotonic() >= next_resync
                if periodic:
                    self.last_resync = now_iso()
                    next_resync = time.monotonic() + self.settings.resync
                self._pass(periodic)
        finally:
            watch_stop.set()
            watch_thread.join(timeout=5.0)
            self.events.close()

    def _await_observer(self, stop: threading.Event, wake: threading.Event, started: str) -> None:
        """Hold the first pass until the observer folded what it saw since `started`.

        A plan of the world as it was at the last stop is thrown away (and may
        propose what is already fixed) once the first look arrives: in `homelab up`
        that look comes within a second, so waiting for it is cheaper. An observer
        that is not running costs `startup_wait` seconds, once.
        """
        deadline = time.monotonic() + self.settings.startup_wait
        while not stop.is_set():
            status = read_observer_status(self.root) or {}
            fresh = str(status.get("updatedAt") or "") >= started
            if fresh and status.get("filesChecked") is True and status.get("caughtUp") is True:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                log.info(
                    "no fresh observation after %.1fs; planning on the world as it is",
                    self.settings.startup_wait,
                )
                return
            wake.wait(left)
            wake.clear()

    def _source_event(self, wake: threading.Event) -> Any:
        def emit(type: str, data: dict[str, Any]) -> None:
            try:
                self.events.append(type, None, data, sync=True)
            except HomelabError as exc:  # the status file still says it; never stop following
                log.error("cannot record %s: %s", type, exc)
            if type in ("source.fetch_failed", "source.recovered"):
                wake.set()  # SourceReady changed: the deletes gate with it

        return emit

    def _pass(self, periodic: bool) -> None:
        started = time.perf_counter()
        try:
            status = self.reconcile(force=periodic)
        except HomelabError as exc:
            log.error("supervisor pass failed: %s", exc)
            self._report_failure(exc)
            return
        except Exception as exc:  # a bug must not stop reconciling the rest
            log.exception("supervisor pass crashed")
            self._report_failure(exc)
            return
        if status is not None:
            at = (status["commit"] or "no commit")[:12]
            log.info("pass at %s in %.3fs", at, time.perf_counter() - started)


SupervisorService = Supervisor  # the name `homelab up` looks up
