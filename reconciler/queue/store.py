"""The queue on disk: `ROOT/queue/<state>/<id>.json`, moved by atomic rename.

States: pending -> approved -> running -> done | failed, or pending ->
rejected | superseded (approved/running -> superseded for stale plans).
A transition is one `os.rename`; only one caller can win it, and a loser
gets `QueueConflict` naming the state the action is in now. Each successful
transition appends an `action.<state>` event naming the actor. Writes go
through the crash-safe helper. Called by the supervisor, the CLI, the
executor and the API.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reconciler.atomic_files import atomic_write_json, fsync_dir, read_json
from reconciler.errors import QueueConflict
from reconciler.events.log import EventLog
from reconciler.queue.action import now_iso
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import QUEUE_STATES, RuntimeRoot

LIVE_STATES = ("pending", "approved", "running")
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("approved", "rejected", "superseded"),
    "approved": ("running", "superseded", "rejected"),
    "running": ("done", "failed", "superseded"),
}


def _check_id(action_id: str) -> str:
    if not action_id or not all(c in "0123456789abcdef" for c in action_id) or len(action_id) > 64:
        raise QueueConflict(action_id, None)
    return action_id


class ActionQueue:
    def __init__(self, root: RuntimeRoot, events: EventLog | None = None) -> None:
        self.root = root
        self.events = events
        for state in QUEUE_STATES:
            root.queue_dir(state).mkdir(parents=True, exist_ok=True)

    def path(self, state: str, action_id: str) -> Path:
        return self.root.queue_dir(state) / f"{_check_id(action_id)}.json"

    def find(self, action_id: str) -> str | None:
        """The state an action is in, or None."""
        for state in QUEUE_STATES:
            if self.path(state, action_id).exists():
                return state
        return None

    def get(self, action_id: str) -> tuple[str, dict[str, Any]] | None:
        for _ in range(3):  # it may move between find and read
            state = self.find(action_id)
            if state is None:
                return None
            try:
                return state, read_json(self.path(state, action_id))
            except FileNotFoundError:
                continue
        return None

    def ids(self, state: str) -> list[str]:
        folder = self.root.queue_dir(state)
        return sorted(
            n[:-5] for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")
        )

    def snapshot(self) -> dict[str, str]:
        """Every action id and its state, from one listing of each folder.

        An action moving during the listing may show in both folders or
        neither; callers treat the snapshot as a hint and let `move` decide.
        """
        return {action_id: state for state in QUEUE_STATES for action_id in self.ids(state)}

    def actions(self, state: str) -> list[dict[str, Any]]:
        out = []
        for action_id in self.ids(state):
            try:
                out.append(read_json(self.path(state, action_id)))
            except FileNotFoundError:
                continue
        return out

    def propose(self, action: dict[str, Any], actor: str = "supervisor") -> bool:
        """Add a pending action unless one with this id exists in any state."""
        if self.find(action["id"]) is not None:
            return False
        atomic_write_json(self.path("pending", action["id"]), action)
        self._event("pending", action, actor, None)
        return True

    def update(self, state: str, action: dict[str, Any]) -> None:
        """Rewrite an action in place (e.g. add its outcome before it moves on)."""
        atomic_write_json(self.path(state, action["id"]), action)

    def move(
        self,
        action_id: str,
        src: str,
        dst: str,
        *,
        actor: str,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Atomically move an action from `src` to `dst`; QueueConflict if it is not in `src`."""
        if dst not in TRANSITIONS.get(src, ()):
            raise ValueError(f"no transition {src} -> {dst}")
        source, target = self.path(src, action_id), self.path(dst, action_id)
        try:
            os.rename(source, target)
        except FileNotFoundError:
            raise QueueConflict(action_id, self.find(action_id)) from None
        fsync_dir(target.parent)
        action: dict[str, Any] = read_json(target)
        history = action.setdefault("history", [])
        history.append({"state": dst, "at": now_iso(), "actor": actor, "reason": reason})
        if extra:
            action.update(extra)
        self.update(dst, action)
        self._event(dst, action, actor, reason, extra)
        return action

    def _event(
        self,
        state: str,
        action: dict[str, Any],
        actor: str,
        reason: str | None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if self.events is None:
            return
        data: dict[str, Any] = {
            "action": action["id"],
            "operation": action["operation"],
            "actor": actor,
            "state": state,
        }
        if reason:
            data["reason"] = reason
        if extra:
            data.update({k: v for k, v in extra.items() if k in ("outcome", "address")})
        self.events.append(f"action.{state}", ResourceKey(action["kind"], action["name"]), data)

    def live_for(self, kind: str, name: str) -> list[tuple[str, dict[str, Any]]]:
        """Live (pending/approved/running) actions of one resource."""
        return [
            (state, a)
            for state in LIVE_STATES
            for a in self.actions(state)
            if a["kind"] == kind and a["name"] == name
        ]
