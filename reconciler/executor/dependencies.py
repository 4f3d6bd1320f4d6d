"""Whether an approved action may run yet: what the plan said it comes after.

What an action depends on is its `after` (`Change.after`: its `dependsOn`,
the Networks and Volumes its spec uses, or for a delete the resources that
use what it deletes); an action proposed before `after` existed falls back
to its manifest's `dependsOn`.

The executor asks `DependencyGate.verdict(action, board)` before it claims
an approved action. `ready`: nothing it depends on is still to be applied.
`wait` (with the reason): a dependency has a pending, approved or running
action, or a `condition: healthy` dependency is not healthy yet in its world
document; the action stays in `queue/approved/`, unclaimed, so a restart of
the executor finds it there and decides again (it is never half-run). A
healthy wait is bounded (`timeout`, counted from the later of the action's
approval and the dependency's last action): past it the verdict is `fail`.
`fail` also when a dependency's action failed or was rejected after this
action was proposed ("dependency Container/db failed: ..."); the executor
then moves the action from approved to failed without running it. A delete
waits the other way round: for the live actions of the resources that use
what it deletes (a Container attached to the Network, mounting the Volume,
or naming it in `dependsOn`), so the container goes before its network.
Failures are taken from the queue: the world document's last action names
the dependency's newest action, and the actions this executor finished
itself are remembered (`note`), so a failure the observer has not folded yet
still counts. Called by `reconciler.executor.service`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from reconciler.planning.dependencies import (
    HEALTHY,
    declared,
    engine_name,
    parse_after,
    shown,
    uses,
)
from reconciler.queue.action import Action, InvalidAction, action_from_json
from reconciler.queue.store import LIVE_STATES, ActionQueue
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import read_world_doc, world_path
from reconciler.world.doc import WorldDoc

DEFAULT_TIMEOUT = 300.0  # seconds a `condition: healthy` dependency may take
FAILED = ("failed", "rejected")


@dataclass(frozen=True)
class Verdict:
    state: Literal["ready", "wait", "fail"]
    reason: str = ""


READY = Verdict("ready")


@dataclass
class Board:
    """The live actions, read once per decision round, and only when a verdict needs them."""

    load: Callable[[], dict[ResourceKey, list[tuple[str, Action]]]] = dict
    _live: dict[ResourceKey, list[tuple[str, Action]]] | None = None

    @property
    def live(self) -> dict[ResourceKey, list[tuple[str, Action]]]:
        if self._live is None:
            self._live = self.load()
        return self._live

    def others(self, action: Action) -> list[tuple[str, Action]]:
        return [(s, a) for items in self.live.values() for s, a in items if a.key != action.key]


@dataclass(frozen=True)
class _Finished:
    action: Action
    state: str
    reason: str
    at: str


def _epoch(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        try:
            return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None


def _approved_at(action: Action) -> str | None:
    return next((m.at for m in reversed(action.moves) if m.state == "approved"), None)


def _reason(action: Action) -> str:
    outcome = action.outcome or {}
    if outcome.get("error"):
        return str(outcome["error"])
    last = action.moves[-1] if action.moves else None
    return (last.reason if last else None) or "no reason given"


class DependencyGate:
    def __init__(
        self,
        root: RuntimeRoot,
        queue: ActionQueue,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.root = root
        self.queue = queue
        self.timeout = timeout
        self.clock = clock
        self._recent: dict[ResourceKey, _Finished] = {}
        self._cache: dict[tuple[str, str], Action] = {}

    def board(self) -> Board:
        """This round's live actions (listed now, read when first needed)."""
        listing = [(state, i) for state in LIVE_STATES for i in self.queue.ids(state)]
        self._cache = {k: self._cache[k] for k in listing if k in self._cache}  # drop the gone

        def load() -> dict[ResourceKey, list[tuple[str, Action]]]:
            live: dict[ResourceKey, list[tuple[str, Action]]] = {}
            for state, action_id in listing:
                action = self.read(state, action_id)
                if action is not None:
                    live.setdefault(action.key, []).append((state, action))
            return live

        return Board(load)

    def read(self, state: str, action_id: str) -> Action | None:
        """An action file, parsed once: a document never changes while it is in one folder
        (a move renames it into another; ids are one-shot), so a round re-reads only arrivals."""
        cached = self._cache.get((state, action_id))
        if cached is not None:
            return cached
        try:
            action = action_from_json(self.queue.path(state, action_id).read_bytes())
        except (OSError, InvalidAction):
            return None  # moved meanwhile, or not an action document
        self._cache[(state, action_id)] = action
        return action

    def note(self, action_id: str) -> None:
        """Remember how an action this executor ran ended (before the observer folds it)."""
        found = self.queue.get(action_id)
        if found is None or found[0] in LIVE_STATES:
            return
        state, action = found
        at = action.moves[-1].at if action.moves else ""
        self._recent[action.key] = _Finished(action, state, _reason(action), at)

    def verdict(self, action: Action, board: Board) -> Verdict:
        if action.operation == "delete":
            return self._delete_verdict(action, board)
        for target, condition in self.dependencies(action):
            verdict = self._one(action, target, condition, board)
            if verdict.state != "ready":
                return verdict
        return READY

    @staticmethod
    def dependencies(action: Action) -> list[tuple[ResourceKey, str]]:
        """What the plan said the action comes after (its `after`), else its dependsOn."""
        if isinstance(action.after, list):
            return [parse_after(text) for text in action.after]
        return declared(action.manifest)

    def _one(self, action: Action, target: ResourceKey, condition: str, board: Board) -> Verdict:
        label = shown(target, condition)
        live = [(s, a) for s, a in board.live.get(target, []) if a.id != action.id]
        if live:
            state, other = live[0]
            return Verdict("wait", f"waiting for {label}: action {other.id} is {state}")
        doc = self._world(target)
        finished = self._finished(target, doc)
        if finished is not None and finished.state in FAILED and finished.at >= action.created_at:
            verb = "failed" if finished.state == "failed" else "was rejected"
            return Verdict(
                "fail", f"dependency {target.kind}/{target.name} {verb}: {finished.reason}"
            )
        if condition != HEALTHY:
            return READY
        health = doc.status.health if doc is not None and doc.status.exists else "Missing"
        if health == "Healthy":
            return READY
        marks = [_epoch(_approved_at(action)), _epoch(finished.at if finished else None)]
        if doc is not None and doc.status.last_action is not None:
            marks.append(_epoch(doc.status.last_action.at))
        since = max((m for m in marks if m is not None), default=self.clock())
        waited = self.clock() - since
        if waited > self.timeout:
            return Verdict(
                "fail",
                f"dependency {target.kind}/{target.name} not healthy after "
                f"{self.timeout:g} s (health: {health})",
            )
        return Verdict("wait", f"waiting for {label}: health is {health}")

    def _world(self, ref: ResourceKey) -> WorldDoc | None:
        try:
            return read_world_doc(world_path(self.root, ref.kind, ref.name))
        except (OSError, ValueError):  # missing, unreadable, InvalidWorldDoc
            return None

    def _finished(self, ref: ResourceKey, doc: WorldDoc | None) -> _Finished | None:
        """The dependency's newest finished action: remembered, or the world's last one."""
        recent = self._recent.get(ref)
        last = doc.status.last_action if doc is not None else None
        if last is None or not last.id or (recent is not None and recent.action.id == last.id):
            return recent
        found = self.queue.get(last.id)
        if found is None or found[0] in LIVE_STATES:
            return recent
        state, action = found
        at = action.moves[-1].at if action.moves else ""
        world = _Finished(action, state, _reason(action), at)
        return max((f for f in (recent, world) if f is not None), key=lambda f: f.at)

    def _delete_verdict(self, action: Action, board: Board) -> Verdict:
        for target, condition in self.dependencies(action):  # the users the plan saw
            verdict = self._one(action, target, condition, board)
            if verdict.state != "ready":
                return verdict
        mine = (action.kind, engine_name(action.kind, action.name, action.observed))
        for state, other in board.others(action):
            if self._uses(other, action.key, mine):
                return Verdict(
                    "wait",
                    f"waiting for {other.kind}/{other.name} (which uses "
                    f"{action.kind}/{action.name}): action {other.id} is {state}",
                )
        for ref, finished in self._recent.items():
            if ref == action.key or finished.state not in FAILED:
                continue
            if finished.at >= action.created_at and self._uses(finished.action, action.key, mine):
                return Verdict(
                    "fail", f"dependency {ref.kind}/{ref.name} failed: {finished.reason}"
                )
        return READY

    @staticmethod
    def _uses(other: Action, ref: ResourceKey, mine: tuple[str, str]) -> bool:
        named = {t for t, _ in declared(other.manifest)}
        return ref in named or mine in uses(other.kind, other.observed)
