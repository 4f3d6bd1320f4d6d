"""Records what the service runner sees: the log, `state/services/<name>.json` and events.

`ServiceRecorder.report` is the `ServiceRunner` reporter of `homelab up`
(reconciler/cli/up.py) and `homelab run` (reconciler/cli/run.py): every
change of a service's state is logged, written crash-safely to its health
document (`reconciler.service_health`, read by the UI and `homelab health`)
with a `ServiceFailed` condition, and every failure appended to the event
log as `service.failed` (`service.exhausted` when the runner gives up),
under the producer `service-<name>`. A heartbeat thread rewrites the
documents every `HEARTBEAT_SECONDS` (30 s; without fsync, since only the
time changes) so a reader can tell a dead process from a running service.
Recording is best effort: a full disk must not take the runner down with
it, so write errors are logged and the next change retries; meanwhile the
document is rewritten in place (in the blocks it already has), and its
`storage` field says whether the service's writers are failing to write
and retrying (reconciler/events/retry.py), since when and with what error.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
from typing import Any

import orjson

from reconciler.cli.service_runner import ServiceStatus
from reconciler.events.log import EventLog
from reconciler.events.retry import add_listener, remove_listener, storage_problems
from reconciler.runtime_root import RuntimeRoot
from reconciler.service_health import HEARTBEAT_SECONDS, now_iso, status_path, write_status

log = logging.getLogger("homelab.services")
FAILING = ("backoff", "failed")


class ServiceRecorder:
    """Health documents and events for the services of one process."""

    def __init__(self, root: RuntimeRoot, *, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.root = root
        self.heartbeat = heartbeat
        self._docs: dict[str, dict[str, Any]] = {}
        self._logs: dict[str, EventLog] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._storage: dict[str, dict[str, Any]] = {}  # the last write problem per service
        add_listener(self._storage_changed)

    def report(self, status: ServiceStatus, message: str) -> None:
        level = logging.WARNING if status.state in FAILING else logging.INFO
        log.log(level, "%s: %s", status.name, message)
        with self._lock:
            doc = self._document(status)
            self._docs[status.name] = doc
            self._write(doc)
        if status.state == "backoff":
            self._event("service.failed", status, message)
        elif status.state == "failed":
            self._event("service.exhausted", status, message)

    def _document(self, status: ServiceStatus) -> dict[str, Any]:
        old = self._docs.get(status.name, {})
        now = now_iso()
        failing = status.state in FAILING
        old_condition = next(iter(old.get("conditions", [])), None)
        flag = "True" if failing else "False"
        since = now
        if old_condition is not None and old_condition["status"] == flag:
            since = old_condition["lastTransitionTime"]
        condition = {
            "type": "ServiceFailed",
            "status": flag,
            "reason": (status.reason or "Error") if failing else "Running",
            "message": (status.last_error or "") if failing else "",
            "lastTransitionTime": since,
        }
        return {
            "service": status.name,
            "state": status.state,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "updatedAt": now,
            "startedAt": now if status.state == "running" else old.get("startedAt"),
            "restarts": status.restarts,
            "failures": status.failures,
            "recentFailures": status.recent_failures,
            "reason": status.reason,
            "lastError": status.last_error,
            "lastFailureAt": now if failing else old.get("lastFailureAt"),
            "nextStartIn": status.next_start_in,
            "conditions": [condition],
            "storage": self._storage.get(status.name, old.get("storage")) or {"failing": False},
        }

    def _storage_changed(self, name: str) -> None:
        """A writer of this process began or stopped failing to write: say so in its document."""
        problem = storage_problems().get(name)
        with self._lock:
            before = self._storage.get(name) or {}
            if problem is not None:
                entry = {"failing": True, **problem}
            else:
                entry = {
                    "failing": False,
                    "lastError": before.get("error") or before.get("lastError"),
                    "lastFailingSince": before.get("since") or before.get("lastFailingSince"),
                    "recoveredAt": now_iso(),
                }
            self._storage[name] = entry
            doc = self._docs.get(name)
            if doc is None:
                return
            doc = {**doc, "storage": entry, "updatedAt": now_iso()}
            self._docs[name] = doc
            self._write(doc)

    def _write(self, doc: dict[str, Any], *, durable: bool = True) -> None:
        try:
            write_status(self.root, doc, durable=durable)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT) and self._overwrite(doc):
                return
            log.warning("%s: cannot record health in %s (%s)", doc["service"], self.root.state, exc)

    def _overwrite(self, doc: dict[str, Any]) -> bool:
        """A full disk: rewrite the existing document in place, in the blocks it already has.

        Not atomic (a reader may catch it half-written and reads it again on
        the next change), but the UI and `homelab health` learn of the full
        disk while no new file can be made.
        """
        path = status_path(self.root, str(doc["service"]))
        data = orjson.dumps(doc)
        try:
            with open(path, "r+b") as fh:
                # JSON allows trailing spaces: a shorter document pads out the old length
                fh.write(data.ljust(os.fstat(fh.fileno()).st_size))
        except OSError:
            return False
        return True

    def _event(self, etype: str, status: ServiceStatus, message: str) -> None:
        data = {
            "service": status.name,
            "error": status.last_error,
            "reason": status.reason,
            "failures": status.failures,
            "restarts": status.restarts,
            "recentFailures": status.recent_failures,
            "nextStartIn": status.next_start_in,
            "message": message,
        }
        try:
            events = self._logs.get(status.name)
            if events is None:
                events = self._logs[status.name] = EventLog(self.root, f"service-{status.name}")
            events.append(etype, None, data, sync=True)
        except Exception as exc:  # disk full, another writer: the health document still says it
            log.warning("%s: cannot append %s to the event log (%s)", status.name, etype, exc)

    def start(self) -> None:
        """Start the heartbeat thread (rewrites each document's `updatedAt`)."""
        self._thread = threading.Thread(target=self._beat, name="service-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            with self._lock:
                for name, doc in list(self._docs.items()):
                    doc = {**doc, "updatedAt": now_iso()}
                    self._docs[name] = doc
                    self._write(doc, durable=False)

    def close(self) -> None:
        remove_listener(self._storage_changed)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        for events in self._logs.values():
            events.close()
