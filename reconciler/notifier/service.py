"""The notifier service: follows the event log, tells the configured targets, records it.

`NotifierService.run(stop)` holds `state/notifier.lock`, reads the event log
from its own checkpoint (`state/notifier_checkpoint.json`), turns events into
signals (reconciler/notifier/signals.py; drift comes from the supervisor's
status file, read when it changes), digests each burst into messages
(a window of `quiet` seconds without news, held while the supervisor's
pass that proposed actions is still going, at most `max_wait`), and hands
every message to the courier of each target that subscribed to it
(`on`, `minSeverity`; reconciler/notifier/delivery.py: one thread per
target). Each outcome is recorded as a `notification.sent` or
`notification.failed` event (producer `notifier`, the target redacted) by
the courier right after the send, then removed from the outbox.

Exactly once, as far as a crash allows: the checkpoint holds, in one file
replaced atomically, the log offsets, the tracker's state, the open digest
window and the **outbox** (every message not yet recorded, per target). A
batch of events advances the offsets in the same write that puts its
messages in the outbox, and a courier gets a message only after that write,
so nothing read is lost and nothing is turned into messages twice. On a
restart the log is read up to its end before any courier starts; the
notifier's own `notification.*` events found past the checkpoint (recorded
after the last checkpoint write) remove their entries from the outbox, so a
recorded delivery is never repeated. The one window left: a kill after the
receiver accepted a message and before its `notification.sent` event is on
disk (milliseconds) sends that message to that target once more after the
restart: at least once, never lost.

A first start (no checkpoint) begins at the current end of the log: it
learns the state of nodes and conditions from the world documents and puts
the actions pending right now in its first digest, then tells only news.
`homelab.yaml` is re-read at the tip of the tracked branch every
`config_period` seconds; a broken entry is reported (log, status file) and
skipped, the others keep working. `state/notifier_status.json` holds per
target `{id, url (redacted), sent, failed, consecutiveFailures, lastError,
lastSentAt, lastFailureAt, backlog, healthy}` and the configuration
problems; the UI shows it in `/summary`, `/metrics` and the dashboard.
Started by `homelab run notifier` and `homelab up`.
"""

from __future__ import annotations

import errno
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from reconciler.atomic_files import atomic_write_json, read_json, try_lock
from reconciler.errors import ConfigError, HomelabError
from reconciler.events.log import EventLog
from reconciler.events.reader import LogEvent, LogReader, LogRef, log_files
from reconciler.events.retry import WriteRetry
from reconciler.file_watch import Change, FileWatch
from reconciler.notifier.delivery import DOWN_AFTER, Courier, DeliverySettings, Outcome
from reconciler.notifier.signals import SEVERITY_RANK, Digest, Message, Signal, Tracker
from reconciler.notifier.targets import Target, read_targets
from reconciler.queue import ActionQueue
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitRepo
from reconciler.world import WorldReader

log = logging.getLogger("reconciler.notifier")
CHECKPOINT = "notifier_checkpoint.json"
STATUS = "notifier_status.json"
LOCK = "notifier.lock"
VERSION = 1
RECORDS = ("notification.sent", "notification.failed")
SUPERVISOR_STATUS = "supervisor_status.json"


@dataclass(frozen=True)
class NotifierSettings:
    ui_url: str = "http://127.0.0.1:8080"
    quiet: float = 2.0  # a burst ends after this many seconds without news
    max_wait: float = 5.0  # and is told at the latest this long after it began
    poll: float = 30.0  # fallback: the loop wakes on log appends and courier outcomes
    config_period: float = 30.0
    outbox_cap: int = 500  # per target; past it the oldest message is recorded failed
    delivery: DeliverySettings = field(default_factory=DeliverySettings)


def _event_time(event_id: str) -> float | None:
    """The time in an event id (`<ns>-<producer>-<seq>`), or None for other ids."""
    head = event_id.split("-", 1)[0]
    return int(head) / 1e9 if head.isdigit() else None


def _key(target: str, message: str) -> str:
    return f"{target}|{message}"


class NotifierService:
    name = "notifier"

    def __init__(
        self,
        root: RuntimeRoot,
        repo: Path,
        ref: str | None = None,
        settings: NotifierSettings | None = None,
    ) -> None:
        self.root = root.ensure()
        self.repo = GitRepo(repo)
        self.ref = ref
        self.settings = settings or NotifierSettings()
        self._log: EventLog | None = None
        self._couriers: dict[str, Courier] = {}
        self._targets: dict[str, Target] = {}
        self._problems: list[str] = []
        self._commit: str | None = None
        self._config_at = 0.0
        self._done: queue.Queue[str] = queue.Queue()  # outbox keys a courier recorded
        self._outbox: dict[str, dict[str, Any]] = {}
        self._to_submit: list[tuple[str, Message]] = []  # in the outbox, not yet saved
        self._status_at = 0.0
        self._supervisor_stamp: tuple[int, int, int] | None = None
        self._wake = threading.Event()  # a log append, the supervisor's status, an outcome
        self._status_doc: dict[str, Any] | None = None  # what notifier_status.json holds
        self._save_failing = False  # the checkpoint could not be written (a full disk)

    # ---- the loop -----------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        lock = self._lock()
        self._log = EventLog(self.root, "notifier", retry=WriteRetry("notifier", stop))
        try:
            reader, tracker, digest = self._resume()
            self._load_config(force=True)
            self._read(reader, tracker, digest)  # catch up before any courier starts
            self._save(reader, tracker, digest)
            self._start_couriers()
            watch = FileWatch(
                [self.root.events, (self.root.state, False)],
                relevant=self._relevant,
                on_change=lambda _change, _path: self._wake.set(),
            )
            watch.start()
            # A stop must end the wait at once too.
            threading.Thread(
                target=self._wake_on, args=(stop,), name="notifier-stop", daemon=True
            ).start()
            try:
                while not stop.is_set():
                    self._wake.clear()
                    self._tick(reader, tracker, digest)
                    wait = digest.next_due(time.time())
                    wait = self.settings.poll if wait is None else min(self.settings.poll, wait)
                    # Nothing wakes an idle notifier but news: no polling tick.
                    self._wake.wait(max(0.0, wait))
                    if stop.is_set():
                        break
            finally:
                watch.close()
            self._drain()
            self._save(reader, tracker, digest)
        finally:
            for courier in self._couriers.values():
                courier.stop()
            self._write_status(force=True, stopped=True)
            self._couriers = {}
            self._log.close()
            lock.close()

    def _lock(self) -> IO[bytes]:
        fh = try_lock(self.root.state / LOCK)
        if fh is None:
            raise ConfigError(
                f"another notifier already runs on {self.root.path} ({self.root.state / LOCK})"
            )
        return fh

    def _wake_on(self, stop: threading.Event) -> None:
        stop.wait()
        self._wake.set()

    def _relevant(self, change: Change, path: str) -> bool:
        """Appends to the log, and the supervisor's status (drift, pass end), wake the loop."""
        p = Path(path)
        return p.is_relative_to(self.root.events) or p.name == SUPERVISOR_STATUS

    def _tick(self, reader: LogReader, tracker: Tracker, digest: Digest) -> None:
        self._load_config()
        changed = self._read(reader, tracker, digest)
        now = time.time()
        if digest.due(now) and not self._pass_running(digest, now):
            self._flush(digest)
            changed = True
        changed |= self._drain()
        if changed:
            self._save(reader, tracker, digest)
        # Only now, with the messages and the offsets that made them on disk together,
        # may a courier send: a crash can then neither lose them nor make them anew.
        for target_id, message in self._to_submit:
            courier = self._couriers.get(target_id)
            if courier is not None:
                courier.submit(message)
        self._to_submit = []
        self._write_status()

    # ---- checkpoint ---------------------------------------------------------
    def _resume(self) -> tuple[LogReader, Tracker, Digest]:
        s = self.settings
        try:
            doc = read_json(self.root.state / CHECKPOINT)
        except FileNotFoundError:
            doc = None
        except (OSError, ValueError) as exc:
            raise HomelabError(f"notifier checkpoint unreadable ({exc}); not guessing") from exc
        if isinstance(doc, dict) and doc.get("version") == VERSION:
            self._outbox = dict(doc.get("outbox") or {})
            reader = LogReader(self.root, doc.get("offsets"), doc.get("fingerprints"))
            return (
                reader,
                Tracker(doc.get("tracker")),
                Digest(s.quiet, s.max_wait, doc.get("digest")),
            )
        return self._first_start()

    def _first_start(self) -> tuple[LogReader, Tracker, Digest]:
        """No checkpoint: start at the log's end, knowing what the world and queue say now."""
        offsets = {key: size for files in log_files(self.root).values() for key, size, _ in files}
        reader = LogReader(self.root, offsets)
        tracker = Tracker()
        for ref, doc in WorldReader(self.root).read().items():
            if ref.kind == "Node":
                ready = doc.status.condition("Ready")
                if ready is not None:
                    tracker.nodes[ref.name] = ready.status != "True"
            for ctype in ("Flapping", "Drifted"):
                cond = doc.status.condition(ctype)
                if cond is not None:
                    tracker.conditions[f"{ref.kind}/{ref.name}|{ctype}"] = cond.status == "True"
        digest = Digest(self.settings.quiet, self.settings.max_wait)
        self._supervisor(tracker, digest, quiet=True)  # what is drifted now is not news
        now = time.time()
        for action in ActionQueue(self.root).actions("pending"):
            ev = LogEvent(
                id=f"queue:{action.id}",
                ts="",
                source="queue",
                type="action.pending",
                ref=LogRef(action.kind, action.name),
                data={"action": action.id, "operation": action.operation},
            )
            for signal in tracker.signals(ev, self._lookup):
                digest.add(signal, now)
        return reader, tracker, digest

    def _save(self, reader: LogReader, tracker: Tracker, digest: Digest) -> None:
        """Write the checkpoint; a full disk keeps the old one (saved again next tick)."""
        try:
            atomic_write_json(
                self.root.state / CHECKPOINT,
                {
                    "version": VERSION,
                    "offsets": reader.offsets,
                    "fingerprints": reader.fingerprints(),
                    "tracker": tracker.to_json(),
                    "digest": digest.to_json(),
                    "outbox": self._outbox,
                },
            )
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            if not self._save_failing:
                log.error("notifier: cannot save %s, keeping the old one: %s", CHECKPOINT, exc)
            self._save_failing = True
            return
        if self._save_failing:
            log.warning("notifier: %s saved again", CHECKPOINT)
        self._save_failing = False

    # ---- reading ------------------------------------------------------------
    def _lookup(self, action_id: str) -> tuple[str, str] | None:
        try:
            found = ActionQueue(self.root).get(action_id)
        except Exception:  # an id that is no valid file name, a half-written file
            return None
        return None if found is None else (found[1].commit, found[1].summary)

    def _supervisor(self, tracker: Tracker, digest: Digest, *, quiet: bool = False) -> bool:
        """Drift as the supervisor's status file says it (read when the file changed)."""
        path = self.root.state / SUPERVISOR_STATUS
        try:
            st = path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp == self._supervisor_stamp:
                return False
            doc = read_json(path)
        except (OSError, ValueError):
            return False
        self._supervisor_stamp = stamp
        if not isinstance(doc, dict):
            return False
        now = time.time()
        for signal in tracker.supervisor_status(doc, quiet=quiet):
            digest.add(signal, now)
        return True

    def _read(self, reader: LogReader, tracker: Tracker, digest: Digest) -> bool:
        changed = self._supervisor(tracker, digest)
        for batch in reader.batches():
            changed = True
            for bad in batch.bad:
                log.warning("notifier: skipped a bad line in events/%s: %s", bad.file, bad.reason)
            now = time.time()
            for ev in sorted(batch.events, key=lambda e: e.id):
                self._one(ev, tracker, digest, now)
        return changed

    def _one(self, ev: LogEvent, tracker: Tracker, digest: Digest, now: float) -> None:
        if ev.type in RECORDS:
            data = ev.data
            if ev.source == "notifier":  # recorded after the last checkpoint: delivered
                self._outbox.pop(_key(str(data.get("target")), str(data.get("message"))), None)
            return
        if ev.type.startswith("action.") and ev.type != "action.pending":
            digest.settle(str(ev.data.get("action") or ""))
        try:
            signals = tracker.signals(ev, self._lookup)
        except Exception:  # one odd event must not stop the others being told
            log.exception("notifier: could not read event %s", ev.id)
            return
        for signal in signals:
            digest.add(signal, now)

    # ---- telling ------------------------------------------------------------
    def _pass_running(self, digest: Digest, now: float) -> bool:
        """Proposals newer than the supervisor's last status: its pass is not over yet.

        The supervisor writes its status at the end of every pass that changed
        something, so holding the window until then keeps one pass's proposals
        in one message however slowly they come; `max_wait` still bounds it.
        """
        if digest.first_at is not None and now - digest.first_at >= self.settings.max_wait:
            return False
        times = [_event_time(s.source_id) for s in digest.signals if s.event == "action.pending"]
        newest = max((t for t in times if t is not None), default=None)
        if newest is None:
            return False
        try:
            written = (self.root.state / SUPERVISOR_STATUS).stat().st_mtime
        except OSError:
            return False
        return newest > written

    def _still_pending(self, signal: Signal) -> bool:
        if signal.event != "action.pending":
            return True
        action = str(signal.extra.get("action") or "")
        try:
            return ActionQueue(self.root).find(action) == "pending"
        except Exception:
            return False

    def _flush(self, digest: Digest) -> None:
        digest.signals = [s for s in digest.signals if self._still_pending(s)]
        for message in digest.flush(self.settings.ui_url):
            for target in self._targets.values():
                if message.event not in target.events:
                    continue
                if SEVERITY_RANK[message.severity] < SEVERITY_RANK[target.min_severity]:
                    continue
                self._enqueue(target, message)

    def _enqueue(self, target: Target, message: Message) -> None:
        key = _key(target.id, message.id)
        if key in self._outbox:
            return
        self._outbox[key] = {"target": target.id, "message": message.to_json(), "at": time.time()}
        mine = [k for k, v in self._outbox.items() if v["target"] == target.id]
        for old in mine[: max(0, len(mine) - self.settings.outbox_cap)]:
            entry = self._outbox.pop(old)
            dropped = Message.from_json(entry["message"])
            self._record(target, dropped, Outcome(False, 0, 0.0, "outbox full; dropped"))
        self._to_submit.append((target.id, message))

    def _report(self, target: Target, message: Message, outcome: Outcome) -> None:
        """Called by a courier's thread right after a send: record it, then forget it."""
        self._record(target, message, outcome)
        self._done.put(_key(target.id, message.id))
        self._wake.set()

    def _record(self, target: Target, message: Message, outcome: Outcome) -> None:
        assert self._log is not None
        data: dict[str, Any] = {
            "message": message.id,
            "target": target.id,
            "url": target.shown,
            "event": message.event,
            "severity": message.severity,
            "title": message.title,
            "refs": list(message.refs[:50]),
            "count": len(message.sources),
            "attempts": outcome.attempts,
            "seconds": round(outcome.seconds, 3),
        }
        if outcome.error:
            data["error"] = outcome.error
        ref = ResourceKey(*message.refs[0].split("/", 1)) if len(message.refs) == 1 else None
        etype = "notification.sent" if outcome.ok else "notification.failed"
        try:
            self._log.append(etype, ref, data, sync=True)
        except HomelabError as exc:  # a full disk: the delivery happened all the same
            log.error("notifier: could not record %s for %s: %s", etype, target.id, exc)
        if outcome.ok:
            log.info("notifier: told %s: %s", target.id, message.title)
        else:
            log.warning("notifier: %s failed: %s (%s)", target.id, message.title, outcome.error)

    def _drain(self) -> bool:
        changed = False
        while True:
            try:
                key = self._done.get_nowait()
            except queue.Empty:
                return changed
            changed |= self._outbox.pop(key, None) is not None

    # ---- configuration and couriers -----------------------------------------
    def _load_config(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._config_at < self.settings.config_period:
            return
        self._config_at = now
        try:
            commit = self.repo.resolve(self.ref)
            if commit == self._commit and not force:
                return
            found = read_targets(self.repo, commit, self.root.secrets)
        except HomelabError as exc:
            self._problems = [f"cannot read homelab.yaml: {exc}"]
            log.error("notifier: %s", self._problems[0])
            return
        problems = [str(p) for p in found.problems]
        if problems != self._problems:
            for problem in problems:
                log.error("notifier: homelab.yaml: %s", problem)
        self._commit, self._problems = commit, problems
        new = {t.id: t for t in found.targets}
        if new != self._targets:
            self._targets = new
            if self._couriers or not force:
                self._start_couriers()

    def _start_couriers(self) -> None:
        """Couriers for the current targets; a new one gets its target's outbox entries."""
        for tid in list(self._couriers):
            courier = self._couriers[tid]
            if self._targets.get(tid) != courier.target:
                courier.stop()
                del self._couriers[tid]
        self._drain()
        started = []
        for tid, target in self._targets.items():
            if tid not in self._couriers:
                courier = Courier(target, self._report, self.settings.delivery)
                self._couriers[tid] = courier
                courier.start()
                started.append(tid)
        for entry in list(self._outbox.values()):
            if entry["target"] in started:  # others are queued already or have no target now
                self._couriers[entry["target"]].submit(Message.from_json(entry["message"]))
        shown = ", ".join(t.shown for t in self._targets.values()) or "none"
        log.info("notifier: targets %s", shown)

    # ---- status -------------------------------------------------------------
    def _write_status(self, *, force: bool = False, stopped: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._status_at < 2.0:
            return
        self._status_at = now
        targets = []
        for tid, target in self._targets.items():
            courier = self._couriers.get(tid)
            stats = courier.stats if courier is not None else None
            backlog = sum(1 for v in self._outbox.values() if v["target"] == tid)
            failures = stats.consecutive_failures if stats else 0
            targets.append(
                {
                    "id": tid,
                    "url": target.shown,
                    "events": sorted(target.events),
                    "minSeverity": target.min_severity,
                    "sent": stats.sent if stats else 0,
                    "failed": stats.failed if stats else 0,
                    "consecutiveFailures": failures,
                    "lastError": stats.last_error if stats else None,
                    "lastSentAt": stats.last_sent_at if stats else None,
                    "lastFailureAt": stats.last_failure_at if stats else None,
                    "backlog": backlog,
                    "healthy": failures == 0,
                    "down": failures >= DOWN_AFTER,
                }
            )
        doc: dict[str, Any] = {
            "state": "stopped" if stopped else "running",
            "commit": self._commit,
            "uiUrl": self.settings.ui_url,
            "targets": targets,
            "problems": self._problems,
        }
        if doc == self._status_doc and not force:
            return  # unchanged: an idle notifier writes nothing (the supervisor watches state/)
        self._status_doc = doc
        doc = {**doc, "updatedAt": time.time()}
        try:
            atomic_write_json(self.root.state / STATUS, doc)
        except OSError as exc:
            log.error("notifier: could not write %s: %s", STATUS, exc)
