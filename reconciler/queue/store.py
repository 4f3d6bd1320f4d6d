"""The queue on disk: `ROOT/queue/<state>/<id>.json`, moved by atomic rename.

States: pending -> approved -> running -> done | failed, or pending ->
rejected | superseded (approved/running -> superseded for stale plans).
Every transition holds the queue's flock (`queue/.move.lock`, across
processes) and runs in this order, so the audit trail is written before the
change: (1) the new document (history entry, outcome, address) is staged
beside the old one (`.ID.json.*.staged`) and fsynced, (2) the `action.<state>` event naming the
actor is appended and fsynced, (3) the staged document replaces the old
one and (4) is renamed into the new state's folder. A failed write in (1)
or (2) (a full disk) raises `StorageError` with nothing moved and no event
in the log; a caller that finds the action gone gets `QueueConflict`
naming its state now. A crash after (3) leaves a document whose last
history entry names a state it has not reached; its event is durable, so
`finish_interrupted` completes the rename (docs/internals.md, "Queue
moves"). Called by the supervisor, the CLI, the executor and the API.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import orjson

from reconciler.atomic_files import atomic_write_json, fsync_dir, fsync_many
from reconciler.errors import QueueConflict, StorageError
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
STAGED = ".staged"  # suffix of a move's staged document (atomic_write's temporaries end .tmp)
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("approved", "rejected", "superseded"),
    # approved -> failed: a dependency failed, so the action is never run (executor).
    "approved": ("running", "superseded", "rejected", "failed"),
    "running": ("done", "failed", "superseded"),
}


def _check_id(action_id: str) -> str:
    if not action_id or not all(c in "0123456789abcdef" for c in action_id) or len(action_id) > 64:
        raise QueueConflict(action_id, None)
    return action_id


T = TypeVar("T")


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

    def _retrying(self, what: str, write: Callable[[], T]) -> T:
        """`write()`, retried through the event log's `WriteRetry` when it has one (a full disk)."""
        retry = self.events.retry if self.events is not None else None
        return write() if retry is None else retry.run(what, write)

    def propose_many(self, actions: list[Action], actor: str = "supervisor") -> list[Action]:
        return self._retrying(
            f"propose {len(actions)} actions", lambda: self._propose_many(actions, actor)
        )

    def _propose_many(self, actions: list[Action], actor: str) -> list[Action]:
        """Add the actions not yet in the queue as pending, durably, in one flush; those added.

        One `propose` pays three flushes (document, folder, event); a pass that
        proposes hundreds (a homelab changed by hand) would spend seconds on
        them, so a batch pays one parallel fsync of its documents
        (`fsync_many`), one folder fsync and one log fsync, under the move
        lock. Its crash guarantees are those of `propose`: (1) every document
        is written under a hidden staged name and fsynced, so no pending
        document can appear torn or empty after a crash; (2) they are renamed
        into `pending/` and the folder fsynced; (3) their `action.pending`
        events are appended and fsynced once. A crash before (2) ends leaves staged copies, which
        `finish_interrupted` drops: nothing was proposed, and the next pass
        proposes the same content-derived ids again. A crash in (3) leaves
        proposed actions whose events may be missing, as a crash between a
        single `propose`'s document and its event does.
        """
        folder = self.root.queue_dir("pending")
        with self._locked():
            # Every move holds this lock, so one listing of the folders is exact here.
            known = self.snapshot()
            new = [a for a in dict((a.id, a) for a in actions).values() if a.id not in known]
            if not new:
                return []
            staged = []
            try:
                for action in new:
                    # 0600 as `propose` writes them: the runtime tree is private.
                    staged.append(self._stage("pending", action, durable=False, mode=0o600))
                fsync_many(staged)
                for path, action in zip(staged, new, strict=True):
                    os.rename(path, self.path("pending", action.id))
                fsync_dir(folder)
            except OSError as exc:
                for path in staged:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(path)
                if isinstance(exc, StorageError):
                    raise
                raise StorageError(
                    f"propose {len(new)} actions", folder, exc, "some may be pending"
                ) from exc
            for action in new:
                self._event("pending", action, actor, None, sync=False)
            if self.events is not None:
                self.events.sync()
        return new

    def update(self, state: str, action: Action) -> None:
        """Rewrite an action in place (e.g. add its outcome before it moves on)."""
        path = self.path(state, action.id)
        try:
            atomic_write_json(path, action_to_dict(action))
        except OSError as exc:
            raise StorageError(f"write action {action.id}", path, exc, "not changed") from exc

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the queue's move lock (one transition at a time, across processes)."""
        path = self.root.queue / ".move.lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StorageError("lock the queue", path, exc, "nothing was moved") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _stage(
        self, state: str, action: Action, *, durable: bool = True, mode: int = 0o644
    ) -> Path:
        """The new document, fsynced (unless the caller syncs) under a hidden name."""
        folder = self.root.queue_dir(state)
        data = orjson.dumps(
            action_to_dict(action), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
        )
        fd, tmp = tempfile.mkstemp(prefix=f".{action.id}.json.", suffix=STAGED, dir=folder)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data + b"\n")
                if durable:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.chmod(tmp, mode)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise StorageError(
                f"record the move of action {action.id}", folder, exc, "nothing was moved"
            ) from exc
        return Path(tmp)

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
        """Move an action from `src` to `dst`, its event first; QueueConflict if not in `src`.

        The move is recorded in the action's history (with the `outcome` of a
        finished action and the `address` of the person who decided) and as an
        `action.<dst>` event, both durable before the rename. StorageError
        when they cannot be written: then nothing moved (with the event log's
        `WriteRetry`, the move is tried again until they are written).
        """
        return self._retrying(
            f"move {action_id} to {dst}",
            lambda: self._move_once(action_id, src, dst, actor, reason, outcome, address),
        )

    def _move_once(
        self,
        action_id: str,
        src: str,
        dst: str,
        actor: str,
        reason: str | None,
        outcome: dict[str, Any] | None,
        address: str | None,
    ) -> Action:
        if dst not in TRANSITIONS.get(src, ()):
            raise ValueError(f"no transition {src} -> {dst}")
        source, target = self.path(src, action_id), self.path(dst, action_id)
        with self._locked():
            try:
                action = action_from_json(source.read_bytes())
            except FileNotFoundError:
                raise QueueConflict(action_id, self.find(action_id)) from None
            changes: dict[str, Any] = {
                "history": (*action.moves, HistoryEntry(dst, now_iso(), actor, reason))
            }
            if outcome is not None:
                changes["outcome"] = outcome
            if address is not None:
                changes["address"] = address
            action = action.evolve(**changes)
            staged = self._stage(src, action)
            try:
                self._event(dst, action, actor, reason, outcome=outcome, address=address)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(staged)
                raise
            self._commit(staged, source, target)
        return action

    def _commit(self, staged: Path, source: Path, target: Path) -> None:
        """Steps (3) and (4): no new blocks are needed, so only an I/O error stops them."""
        try:
            os.replace(staged, source)
            os.rename(source, target)
            fsync_dir(target.parent)
            fsync_dir(source.parent)
        except OSError as exc:
            error = StorageError(
                f"move action {source.stem} to {target.parent.name}",
                target,
                exc,
                "its event is recorded; `homelab actions list` shows where it is, "
                "and the next queue reader finishes an interrupted move",
            )
            error.retryable = False  # its event is written: moving again would record it twice
            raise error from exc

    def finish_interrupted(self) -> list[tuple[str, str]]:
        """Complete moves a crash cut between (3) and (4); drop staged copies. Returns (id, state).

        A document whose last history entry names a state it may move to
        from the folder it is in was written after its event was durable, so
        the decision stands and the rename is done now. A staged copy
        (hidden `.ID.json.*.staged`) left without its replace belongs to a move
        whose event may or may not exist; the action stays where it is.
        """
        finished = []
        with self._locked():
            for src in LIVE_STATES:
                folder = self.root.queue_dir(src)
                for name in os.listdir(folder):
                    if name.startswith(".") and name.endswith(STAGED):  # made under this lock
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(folder / name)
                for action in self.actions(src):
                    moves = action.moves
                    dst = moves[-1].state if moves else src
                    if dst != src and dst in TRANSITIONS[src]:
                        os.rename(self.path(src, action.id), self.path(dst, action.id))
                        fsync_dir(self.root.queue_dir(dst))
                        finished.append((action.id, dst))
        return finished

    def _event(
        self,
        state: str,
        action: Action,
        actor: str,
        reason: str | None,
        *,
        outcome: dict[str, Any] | None = None,
        address: str | None = None,
        sync: bool | None = None,
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
        self.events.append(f"action.{state}", action.key, data, sync=sync)

    def live_for(self, kind: str, name: str) -> list[tuple[str, Action]]:
        """Live (pending/approved/running) actions of one resource."""
        return [
            (state, a)
            for state in LIVE_STATES
            for a in self.actions(state)
            if a.kind == kind and a.name == name
        ]
