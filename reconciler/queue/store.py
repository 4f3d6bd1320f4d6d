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

from reconciler.atomic_files import atomic_write_json, fsync_dir
from reconciler.errors import QueueConflict
from reconciler.events.log import EventLog
from reconciler.queue.action import (
    Action,
    HistoryEntry,
    InvalidAction,
    action_from_json,
    action_to_dict,
    now_iso,
)
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

    def read(self, state: str, action_id: str) -> Action:
        """The action file in `state`; FileNotFoundError, or InvalidAction when unreadable."""
        return action_from_json(self.path(state, action_id).read_bytes())

    def get(self, action_id: str) -> tuple[str, Action] | None:
        for _ in range(3):  # it may move between find and read
            state = self.find(action_id)
            if state is None:
                return None
            try:
                return state, self.read(state, action_id)
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

    def actions(self, state: str) -> list[Action]:
        """Every readable action in `state` (one that is not an action document is left alone)."""
        out = []
        for action_id in self.ids(state):
            try:
                out.append(self.read(state, action_id))
            except (FileNotFoundError, InvalidAction):
                continue
        return out

    def propose(self, action: Action, actor: str = "supervisor") -> bool:
        """Add a pending action unless one with this id exists in any state."""
        if self.find(action.id) is not None:
            return False
        self.update("pending", action)
        self._event("pending", action, actor, None)
        return True

    def update(self, state: str, action: Action) -> None:
        """Rewrite an action in place (e.g. add its outcome before it moves on)."""
        atomic_write_json(self.path(state, action.id), action_to_dict(action))

    def move(
        self,
        action_id: str,
        src: str,
        dst: str,
        *,
        actor: str,
        reason: str | None = None,
        outcome: dict[str, Any] | None = None,
        address: str | None = None,
    ) -> Action:
        """Atomically move an action from `src` to `dst`; QueueConflict if it is not in `src`.

        The move is recorded in the action's history (with the `outcome` of a
        finished action and the `address` of the person who decided).
        """
        if dst not in TRANSITIONS.get(src, ()):
            raise ValueError(f"no transition {src} -> {dst}")
        source, target = self.path(src, action_id), self.path(dst, action_id)
        try:
            os.rename(source, target)
        except FileNotFoundError:
            raise QueueConflict(action_id, self.find(action_id)) from None
        fsync_dir(target.parent)
        action = action_from_json(target.read_bytes())
        changes: dict[str, Any] = {
            "history": (*action.moves, HistoryEntry(dst, now_iso(), actor, reason))
        }
        if outcome is not None:
            changes["outcome"] = outcome
        if address is not None:
            changes["address"] = address
        action = action.evolve(**changes)
        self.update(dst, action)
        self._event(dst, action, actor, reason, outcome=outcome, address=address)
        return action

    def _event(
        self,
        state: str,
        action: Action,
        actor: str,
        reason: str | None,
        *,
        outcome: dict[str, Any] | None = None,
        address: str | None = None,
    ) -> None:
        if self.events is None:
            return
        data: dict[str, Any] = {
            "action": action.id,
            "operation": action.operation,
            "actor": actor,
            "state": state,
        }
        if reason:
            data["reason"] = reason
        if outcome is not None:
            data["outcome"] = outcome
        if address is not None:
            data["address"] = address
        self.events.append(f"action.{state}", action.key, data)

    def live_for(self, kind: str, name: str) -> list[tuple[str, Action]]:
        """Live (pending/approved/running) actions of one resource."""
        return [
            (state, a)
            for state in LIVE_STATES
            for a in self.actions(state)
            if a.kind == kind and a.name == name
        ]
