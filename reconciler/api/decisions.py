"""What the UI writes: approvals, rejections and events ingested from remote agents.

An approval or rejection is one `ActionQueue.move` out of `pending` with the
operator's name as actor and their address recorded in the event: the move
holds the queue's flock (across processes), writes the event and renames, so
two operators clicking at once, in one UI process or in two on the same
runtime root, get one success (whose process wrote the one audit event) and
one `QueueConflict` naming the state the action is in now ("already
approved": 409, or the page's notice). Each UI process writes its events
under its own producer, since a producer's file is locked by its one writer:
the first UI on a root is `ui`, the next ones `ui-2`, `ui-3`, ... (claimed
with a lock file under `ROOT/state/ui-writers/` held for the process's
life). The move writes its event before the rename; when the disk is full
it raises `StorageError` with nothing moved (the controllers answer 507). Ingested
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
from typing import IO, Any

from reconciler.api import schemas as s
from reconciler.api.auth import Agent, Operator
from reconciler.api.views import RuntimeViews
from reconciler.atomic_files import try_lock
from reconciler.errors import ConfigError, HomelabError, QueueConflict
from reconciler.events.ingest import ForbiddenEvent, InvalidEvent, ingest
from reconciler.events.log import EventLog
from reconciler.events.retry import WriteRetry
from reconciler.queue.store import ActionQueue
from reconciler.runtime_root import PRIVATE_DIR, RuntimeRoot


class InvalidInput(HomelabError):
    """A request the API refuses with 400 (what is wrong and where)."""


class Forbidden(HomelabError):
    """A request the caller may not make, refused with 403 and audited."""


MAX_UI_WRITERS = 64


def claim_producer(root: RuntimeRoot) -> tuple[str, IO[bytes]]:
    """The event producer of this UI process: `ui`, or `ui-N` when other UIs hold the lower ones.

    Returns the name and the open lock file, which holds the claim until it
    is closed (by the kernel too, when the process dies).
    """
    folder = root.state / "ui-writers"
    folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)  # the tree is private
    for n in range(1, MAX_UI_WRITERS + 1):
        name = "ui" if n == 1 else f"ui-{n}"
        held = try_lock(folder / f"{name}.lock")
        if held is not None:
            return name, held
    raise ConfigError(
        f"{MAX_UI_WRITERS} UI processes already write events to {root.path}: "
        "stop one before starting another"
    )


DECISION_RETRY_SECONDS = 5.0


class Decisions:
    """The UI's write side; one per app, with its own event producer (`ui`, `ui-2`, ...)."""

    def __init__(self, root: RuntimeRoot, views: RuntimeViews) -> None:
        self.root = root
        self.views = views
        self.producer, self._claim = claim_producer(root)
        # A full disk: retried for a few seconds, then the operator is told (507), nothing moved.
        self.events = EventLog(
            root,
            self.producer,
            retry=WriteRetry(self.producer, give_up_after=DECISION_RETRY_SECONDS),
        )
        self.queue = ActionQueue(root, self.events)
        self._lock = threading.Lock()

    def unconfirmed_delete(self, action_id: str, typed: str | None) -> str | None:
        """Why approving `action_id` needs its resource name typed first, or None.

        A delete is approved only with the resource's name typed (the queue form's
        `confirm_name`, the API's `confirmName`); read from disk, so it holds for
        every UI process. An unknown id gives None: `decide` answers for it.
        """
        try:
            found = self.queue.get(action_id)
        except QueueConflict:
            return None
        action = found[1] if found else None
        if action is None or action.operation != "delete" or (typed or "").strip() == action.name:
            return None
        return (
            f"Not approved: type the resource name {action.name!r} to approve deleting "
            f"{action.kind}/{action.name}"
        )

    def decide(
        self,
        action_id: str,
        approve: bool,
        operator: Operator,
        reason: str | None,
        *,
        refresh: bool = True,
    ) -> s.DecisionResult:
        """Approve or reject a pending action.

        QueueConflict when it is not pending; StorageError when the decision
        cannot be recorded (then nothing moved). `refresh=False` leaves
        re-reading the views to the caller (a bulk decision refreshes once).
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
            if refresh:
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
        self._claim.close()
