"""What the UI writes: approvals, rejections and events ingested from remote agents.

An approval or rejection is one `ActionQueue.move` out of `pending` with the
operator's name as actor and their address recorded in the event, so two
operators clicking at once get one success and one `QueueConflict`. Ingested
events are validated (type pattern, known kind, DNS name, size) and appended
under the producer `ingest-<agent>`; `action.*` events are refused because
only the queue and the executor may write them. Called by the controllers
in `reconciler.api.controllers`.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson

from reconciler.api import schemas as s
from reconciler.api.auth import Operator
from reconciler.api.views import RuntimeViews
from reconciler.errors import HomelabError
from reconciler.events.log import EventLog
from reconciler.queue.store import ActionQueue
from reconciler.resources.kinds import KINDS
from reconciler.settings import RuntimeRoot

MAX_EVENT_DATA = 64 * 1024
RESERVED_TYPES = ("action.",)


class InvalidInput(HomelabError):
    """A request the API refuses with 400 (what is wrong and where)."""


class Decisions:
    """The UI's write side; one per app, sharing the `ui` event producer."""

    def __init__(self, root: RuntimeRoot, views: RuntimeViews) -> None:
        self.root = root
        self.views = views
        self.events = EventLog(root, "ui")
        self.queue = ActionQueue(root, self.events)
        self._ingest_logs: dict[str, EventLog] = {}
        self._lock = threading.Lock()

    def decide(
        self, action_id: str, approve: bool, operator: Operator, reason: str | None
    ) -> s.DecisionResult:
        """Approve or reject a pending action; raises QueueConflict when it is not pending."""
        reason = (reason or "").strip() or None
        if not approve and reason is None:
            raise InvalidInput("reason: a rejection needs a reason (what is wrong with it)")
        target = "approved" if approve else "rejected"
        try:
            self.queue.move(
                action_id,
                "pending",
                target,
                actor=operator.name,
                reason=reason,
                extra={"address": operator.address},
            )
        finally:
            self.views.refresh({"queue", "events"})
        return s.DecisionResult(id=action_id, state=target, actor=operator.name)

    def ingest(self, batch: s.IngestBatch) -> s.IngestResult:
        """Validate the whole batch first, then append it: all or nothing."""
        for i, event in enumerate(batch.events):
            where = f"events[{i}]"
            if event.type.startswith(RESERVED_TYPES):
                raise InvalidInput(f"{where}.type: {event.type!r} is reserved to the executor")
            if event.ref is not None and event.ref.kind not in KINDS:
                raise InvalidInput(
                    f"{where}.ref.kind: unknown kind {event.ref.kind!r}; "
                    f"expected one of {', '.join(sorted(KINDS))}"
                )
            try:
                size = len(orjson.dumps(event.data))
            except orjson.JSONEncodeError as exc:
                raise InvalidInput(
                    f"{where}.data: not storable as JSON ({exc}); integers must fit in 64 bits"
                ) from None
            if size > MAX_EVENT_DATA:
                raise InvalidInput(f"{where}.data: larger than {MAX_EVENT_DATA} bytes")
        producer = f"ingest-{batch.agent}"
        with self._lock:
            log = self._ingest_logs.get(producer)
            if log is None:
                log = self._ingest_logs[producer] = EventLog(self.root, producer)
            ids = []
            last = len(batch.events) - 1
            for i, event in enumerate(batch.events):
                ref = (event.ref.kind, event.ref.name) if event.ref else None
                written = log.append(event.type, ref, _data(event.data), sync=i == last)
                ids.append(written["id"])
        self.views.refresh({"events"})
        return s.IngestResult(accepted=len(ids), ids=ids)

    def close(self) -> None:
        self.events.close()
        for log in self._ingest_logs.values():
            log.close()


def _data(data: dict[str, Any]) -> dict[str, Any]:
    return dict(data)
