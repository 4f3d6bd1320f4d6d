"""What the UI writes: approvals, rejections and events ingested from remote agents.

An approval or rejection is one `ActionQueue.move` out of `pending` with the
operator's name as actor and their address recorded in the event, so two
operators clicking at once get one success and one `QueueConflict`. The
move writes its event before the rename; when the disk is full it raises
`StorageError` with nothing moved (the controllers answer 507). Ingested
events go through `reconciler.events.ingest` (type pattern, known kind, DNS
name, size; the project's own namespaces such as `observed.*`, `node.*`,
`resource.*` and `action.*` refused) under the producer `ingest-<agent>`. An
agent token ingests only under its own name; the operator (token, session
or proxy identity) may ingest under any agent name, since it could approve
anyway. A forbidden batch (reserved type, another agent's name) raises
`Forbidden` and leaves an `ingest.refused` audit event under `ui` with who,
from where and why (never a token). Called by the controllers in
`reconciler.api.controllers` and, for `audit`, the auth middleware.
"""

from __future__ import annotations

import threading
from typing import Any

from reconciler.api import schemas as s
from reconciler.api.auth import Agent, Operator
from reconciler.api.views import RuntimeViews
from reconciler.errors import HomelabError
from reconciler.events.ingest import ForbiddenEvent, InvalidEvent, ingest
from reconciler.events.log import EventLog
from reconciler.events.retry import WriteRetry
from reconciler.queue.store import ActionQueue
from reconciler.runtime_root import RuntimeRoot


class InvalidInput(HomelabError):
    """A request the API refuses with 400 (what is wrong and where)."""


class Forbidden(HomelabError):
    """A request the caller may not make, refused with 403 and audited."""


DECISION_RETRY_SECONDS = 5.0


class Decisions:
    """The UI's write side; one per app, sharing the `ui` event producer."""

    def __init__(self, root: RuntimeRoot, views: RuntimeViews) -> None:
        self.root = root
        self.views = views
        # A full disk: retried for a few seconds, then the operator is told (507), nothing moved.
        self.events = EventLog(
            root, "ui", retry=WriteRetry("ui", give_up_after=DECISION_RETRY_SECONDS)
        )
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

    def audit(self, type: str, data: dict[str, Any]) -> None:
        """One audit event under `ui` (refusals of agents and forged events)."""
        self.events.append(type, None, data, sync=True)
        self.views.refresh({"events"})

    def ingest(self, batch: s.IngestBatch, who: Operator | Agent) -> s.IngestResult:
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
            if isinstance(who, Agent) and batch.agent != who.name:
                raise ForbiddenEvent(
                    f"agent token {who.name!r} may ingest only as agent {who.name!r}, "
                    f"not {batch.agent!r}: create a token for that agent "
                    f"(`homelab tokens create {batch.agent}`)"
                )
            written = ingest(self.root, batch.agent, raw)
        except ForbiddenEvent as exc:
            self.audit(
                "ingest.refused",
                {
                    "agent": batch.agent,
                    "via": who.via,
                    "actor": who.name,
                    "address": who.address,
                    "types": sorted({e.type for e in batch.events}),
                    "reason": str(exc),
                },
            )
            raise Forbidden(str(exc)) from None
        except InvalidEvent as exc:
            raise InvalidInput(str(exc)) from None
        self.views.refresh({"events"})
        return s.IngestResult(accepted=len(written), ids=[e["id"] for e in written])

    def close(self) -> None:
        self.events.close()
