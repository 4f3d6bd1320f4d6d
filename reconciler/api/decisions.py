"""What the UI writes: approvals, rejections and events ingested from remote agents.

An approval or rejection is one `ActionQueue.move` out of `pending` with the
operator's name as actor and their address recorded in the event, so two
operators clicking at once get one success and one `QueueConflict`. The
move writes its event before the rename; when the disk is full it raises
`StorageError` with nothing moved (the controllers answer 507). Ingested
events go through `reconciler.events.ingest` (type pattern, known kind, DNS
name, size; `action.*` refused) under the producer `ingest-<agent>`. Called by the controllers
in `reconciler.api.controllers`.
"""

from __future__ import annotations

import threading

from reconciler.api import schemas as s
from reconciler.api.auth import Operator
from reconciler.api.views import RuntimeViews
from reconciler.errors import HomelabError
from reconciler.events.ingest import InvalidEvent, ingest
from reconciler.events.log import EventLog
from reconciler.queue.store import ActionQueue
from reconciler.runtime_root import RuntimeRoot


class InvalidInput(HomelabError):
    """A request the API refuses with 400 (what is wrong and where)."""


class Decisions:
    """The UI's write side; one per app, sharing the `ui` event producer."""

    def __init__(self, root: RuntimeRoot, views: RuntimeViews) -> None:
        self.root = root
        self.views = views
        self.events = EventLog(root, "ui")
        self.queue = ActionQueue(root, self.events)
        self._lock = threading.Lock()

    def decide(
        self, action_id: str, approve: bool, operator: Operator, reason: str | None
    ) -> s.DecisionResult:
        """Approve or reject a pending action.

        QueueConflict when it is not pending; StorageError when the decision
        cannot be recorded (then nothing moved).
        """
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
                address=operator.address,
            )
        finally:
            self.views.refresh({"queue", "events"})
        return s.DecisionResult(id=action_id, state=target, actor=operator.name)

    def ingest(self, batch: s.IngestBatch) -> s.IngestResult:
        """Validate the whole batch first, then append it (`reconciler.events.ingest`)."""
        raw = [
            {
                "type": e.type,
                "ref": {"kind": e.ref.kind, "name": e.ref.name} if e.ref else None,
                "data": dict(e.data),
            }
            for e in batch.events
        ]
        try:
            written = ingest(self.root, batch.agent, raw)
        except InvalidEvent as exc:
            raise InvalidInput(str(exc)) from None
        self.views.refresh({"events"})
        return s.IngestResult(accepted=len(written), ids=[e["id"] for e in written])

    def close(self) -> None:
        self.events.close()
