"""The from-scratch replay: the whole log folded at once into the world `WorldState` builds.

`WorldState.apply` keeps every world document as the JSON object it writes
and updates a dozen of its keys per event, which is what an incremental tick
needs. A rebuild from an empty world only needs the end result, so
`Replay` folds the same events, in the same order, with the same
comparisons, into one small record per resource that remembers which event
last set each field group (the observation, the last action, each
condition), and builds each document once, at the end (`world_state`). A
field group keeps a reference to its event; only the winners' payloads are
turned into document fields. Everything the fold decides from the order of
events is kept: a condition's transition time, a listing that marks a
resource missing (it sees each resource's node as of that event), ties
between equal ids (the first one folded wins), and the diagnostics of
malformed events, in fold order. The property test in
`tests/observer/test_replay.py` holds it byte-identical to `WorldState.apply`.
Pure, no I/O; called by the folding shell's rebuild
(`reconciler.observer.world_builder`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from reconciler.events.reader import LogEvent, LogRef
from reconciler.observer.fold import (
    HEALTH,
    Diagnostic,
    WorldState,
    _condition,
    ref_problem,
)
from reconciler.resources.key import ResourceKey
from reconciler.resources.kinds import KINDS
from reconciler.world import new_world_doc

_MISSING = "observed.missing"
_RESOURCE = "observed.resource"
_NODE = "node.status"
_CONDITION = "resource.condition"
_LISTING = "observed.listing"
_FIRST = itemgetter(0)
_BAD_RESOURCE = (
    "data needs spec (an object) and health (Healthy, Unhealthy, "
    "Starting, Stopped or Unknown); not folded"
)


class _Res:
    """What the fold has set so far for one resource, by field group.

    `obs` is the event that last won the observation group (exists, health,
    observedAt): an `observed.resource`, `observed.missing`, `node.status`
    or a listing that marked the resource missing. The other fields hold
    the last winner of the keys that only some of those events set.
    """

    __slots__ = (
        "action",
        "action_id",
        "at",
        "cond_ids",
        "conds",
        "created",
        "info",
        "key",
        "labels",
        "last",
        "managed_from",
        "node",
        "node_from",
        "obs",
        "obs_id",
        "obs_missing",
        "spec",
        "spec_from",
    )

    def __init__(self, key: ResourceKey) -> None:
        self.key = key
        self.created = False  # touched by an event: the document exists
        self.at = (0, 0)  # (batch, index) of the event that created it (`fold_shard`)
        self.last: str | None = None  # lastEventId
        self.obs_id = ""
        self.obs: LogEvent | None = None
        self.obs_missing = False  # the winner of `obs` says the resource is missing
        self.spec_from: LogEvent | None = None  # observed/basis/runtime: resource or missing
        self.spec: dict[str, Any] | None = None
        self.managed_from: LogEvent | None = None  # the resource event that set `managed`
        self.node: str | None = None
        self.node_from: LogEvent | None = None  # the resource event that names the node
        self.labels: dict[str, Any] | None = None
        self.info: dict[str, Any] | None = None
        self.action_id = ""
        self.action: LogEvent | None = None
        self.cond_ids: dict[str, str] = {}
        self.conds: dict[str, list[str]] = {}  # type -> [status, reason, message, time]

    def touch(self, eid: str) -> None:
        last = self.last
        if last is None or eid > last:
            self.last = eid

    def current_node(self) -> str | None:
        """The node as `status.node` holds it now (read from the spec on first need)."""
        ev = self.node_from
        if ev is not None:
            data = ev.data
            node = data["node"] if "node" in data else data["spec"].get("node")
            self.node = node if isinstance(node, str) else None
            self.node_from = None
        return self.node

    def mark_missing(self, ev: LogEvent) -> None:
        eid = ev.id
        self.touch(eid)
        if eid > self.obs_id:
            self.obs_id = eid
            self.obs = ev
            self.obs_missing = True
            self.spec_from = ev

    def upsert(self, ctype: str, cond: tuple[str, str, str], eid: str, ts: str) -> None:
        ids = self.cond_ids
        if eid <= ids.get(ctype, ""):
            return
        ids[ctype] = eid
        old = self.conds.get(ctype)
        if old is None:
            self.conds[ctype] = [cond[0], cond[1], cond[2], ts]
        else:
            old[3] = ts if old[0] != cond[0] else old[3]
            old[0], old[1], old[2] = cond


def shard_of(name: str) -> int:
    """Which of two folding processes folds the resources named `name` (stable across runs)."""
    return (ord(name[-1]) + len(name)) & 1 if name else 0


@dataclass
class ShardPart:
    """What the other folding process (`fold_shard` with shard 1) hands back to merge."""

    docs: list[tuple[tuple[int, int], ResourceKey, dict[str, Any]]]  # creation place, key, doc
    diagnostics: list[tuple[tuple[int, int], Diagnostic]]
    names: set[str]
    folded: int


class Replay:
    """Folds a whole log, batch after batch, into per-resource records.

    `shard` (0 or 1): fold only the resources `shard_of` gives that shard
    (events without a ref go to shard 0), and every listing (each marks only
    its own shard's resources; shard 0 counts and reports it). A resource's
    record depends only on its own events and the listings, so two shards
    folded apart and merged by `merged_state` give the world one `Replay`
    gives; each shard remembers where (batch, index in fold order) it created
    a record and reported a diagnostic, so the merge keeps their order.
    """

    def __init__(self, shard: int | None = None) -> None:
        self.res: dict[LogRef, _Res] = {}
        self.by_kind: dict[str, list[_Res]] = {}
        self.listings: dict[str, dict[str, tuple[str, str]]] = {}
        self.diagnostics: list[Diagnostic] = []
        self.diagnostics_at: list[tuple[int, int]] = []  # shard mode: where each was reported
        self.folded = 0
        self.shard = shard
        self._names: set[str] = set()
        self._batch = 0
        self._index = 0

    def _bad(self, ev: LogEvent, message: str) -> None:
        self.diagnostics.append(Diagnostic(ev.id, f"event {ev.id} ({ev.type}): {message}"))
        if self.shard is not None:
            self.diagnostics_at.append((self._batch, self._index))

    def _record(self, ev: LogEvent) -> _Res | None:
        """The record of the event's resource (created), or None with a diagnostic."""
        problem = ref_problem(ev, self._names)
        if problem is not None:
            self._bad(ev, problem)
            return None
        ref = ev.ref
        assert ref is not None
        # The document itself appears when an event first touches it (`_created`).
        rec = self.res[ref] = _Res(ResourceKey(ref.kind, ref.name))
        return rec

    def _created(self, rec: _Res) -> None:
        if not rec.created:
            rec.created = True
            rec.at = (self._batch, self._index)
            self.by_kind.setdefault(rec.key.kind, []).append(rec)

    def fold(self, events: Iterable[LogEvent]) -> None:
        """Fold events in the order `WorldState.apply` would see them."""
        res = self.res
        handlers = _HANDLERS
        folded = 0
        for ev in events:
            etype = ev.type
            handler = handlers.get(etype)
            if handler is None:
                if not etype.startswith("action."):
                    continue  # not an observation (queue, supervisor, ui events): nothing to fold
                handler = Replay._action
            if etype != _LISTING:
                rec = res.get(ev.ref)  # type: ignore[arg-type]  # None finds nothing
                if rec is None:
                    rec = self._record(ev)
                    if rec is None:
                        continue
            else:
                rec = None
            folded += 1
            handler(self, ev, rec)  # type: ignore[arg-type]  # only a listing gets None
        self.folded += folded

    def fold_shard(self, events: list[LogEvent], batch: int) -> None:
        """`fold` for one shard: the events of batch number `batch` (in fold order)."""
        res = self.res
        handlers = _HANDLERS
        mine = self.shard
        folded = 0
        self._batch = batch
        for index, ev in enumerate(events):
            etype = ev.type
            handler = handlers.get(etype)
            if handler is None:
                if not etype.startswith("action."):
                    continue
                handler = Replay._action
            self._index = index
            if etype != _LISTING:
                ref = ev.ref
                if ref is None:
                    if mine:
                        continue
                else:
                    name = ref.name
                    if ((ord(name[-1]) + len(name)) & 1 if name else 0) != mine:
                        continue  # (`shard_of`, inline: this runs for every event)
                rec = res.get(ref)  # type: ignore[arg-type]  # None finds nothing
                if rec is None:
                    rec = self._record(ev)
                    if rec is None:
                        continue
            elif mine:  # shard 1 applies listings to its resources; shard 0 counts and reports
                known = len(self.diagnostics)
                self._listing(ev)
                del self.diagnostics[known:], self.diagnostics_at[known:]
                continue
            else:
                rec = None
            folded += 1
            handler(self, ev, rec)  # type: ignore[arg-type]  # only a listing gets None
        self.folded += folded

    def part(self) -> ShardPart:
        """This shard's documents and diagnostics, to merge into shard 0 (`merged_state`)."""
        docs = [(rec.at, rec.key, _document(rec)) for recs in self.by_kind.values() for rec in recs]
        diags = list(zip(self.diagnostics_at, self.diagnostics, strict=True))
        return ShardPart(docs, diags, self._names, self.folded)

    def merged_state(
        self, other: ShardPart
    ) -> tuple[WorldState, list[tuple[tuple[int, int], Diagnostic]]]:
        """Shard 0's fold merged with shard 1's: the world and diagnostics one `Replay` gives.

        Documents in the order their resources were created, diagnostics in
        fold order (both by their place in the log's fold order).
        """
        mine = [(rec.at, rec.key, _document(rec)) for recs in self.by_kind.values() for rec in recs]
        every = sorted([*mine, *other.docs], key=_FIRST)
        by_kind: dict[str, dict[ResourceKey, dict[str, Any]]] = {}
        for _, key, doc in every:
            by_kind.setdefault(key.kind, {})[key] = doc
        docs = {key: doc for group in by_kind.values() for key, doc in group.items()}
        diags = sorted(
            [*zip(self.diagnostics_at, self.diagnostics, strict=True), *other.diagnostics],
            key=_FIRST,
        )
        state = WorldState(docs=docs, listings=self.listings, folded=self.folded + other.folded)
        state._names.update(self._names, other.names)
        state.dirty = set(docs)
        return state, diags

    def _resource(self, ev: LogEvent, rec: _Res) -> None:
        data = ev.data
        spec = data.get("spec")
        health = data.get("health", "Unknown")
        if not isinstance(spec, dict) or not isinstance(health, str) or health not in HEALTH:
            self._bad(ev, _BAD_RESOURCE)
            return
        if not rec.created:
            self._created(rec)
        eid = ev.id
        last = rec.last
        if last is None or eid > last:
            rec.last = eid
        plain = len(data) == 2 and "health" in data  # spec and health, nothing else
        if eid > rec.obs_id:
            rec.obs_id = eid
            rec.obs = rec.spec_from = rec.managed_from = rec.node_from = ev
            rec.obs_missing = False
            if not plain:
                labels = data.get("labels")
                if isinstance(labels, dict):
                    rec.labels = labels
        if not plain:
            self._conditions(ev, rec)

    def _action(self, ev: LogEvent, rec: _Res) -> None:
        if not rec.created:
            self._created(rec)
        eid = ev.id
        last = rec.last
        if last is None or eid > last:
            rec.last = eid
        if eid > rec.action_id:
            rec.action_id = eid
            rec.action = ev

    def _missing(self, ev: LogEvent, rec: _Res) -> None:
        if not rec.created:
            self._created(rec)
        rec.mark_missing(ev)

    def _conditions(self, ev: LogEvent, rec: _Res) -> None:
        conditions = ev.data.get("conditions")
        if isinstance(conditions, list):  # anything else carries no condition
            for raw in conditions:
                cond = _condition(raw)
                if cond is not None:
                    cond3 = (cond["status"], cond["reason"], cond["message"])
                    rec.upsert(cond["type"], cond3, ev.id, ev.ts)

    def _node_status(self, ev: LogEvent, rec: _Res) -> None:
        data = ev.data
        self._created(rec)
        eid = ev.id
        rec.touch(eid)
        ready = bool(data.get("ready"))
        if eid > rec.obs_id:
            rec.obs_id = eid
            rec.obs = ev
            rec.obs_missing = False
            rec.node = rec.key[1]
            rec.node_from = None  # a Node's own status names it
            info = data.get("info")
            rec.info = info if isinstance(info, dict) else {}
        reason = str(data.get("reason") or ("EngineReachable" if ready else "Unknown"))
        cond = ("True" if ready else "False", reason, str(data.get("message") or ""))
        rec.upsert("Ready", cond, eid, ev.ts)

    def _condition(self, ev: LogEvent, rec: _Res) -> None:
        cond = _condition(ev.data)
        if cond is None:
            self._bad(ev, "data needs type and status (True, False or Unknown)")
            return
        self._created(rec)
        rec.touch(ev.id)
        rec.upsert(cond["type"], (cond["status"], cond["reason"], cond["message"]), ev.id, ev.ts)

    def _listing(self, ev: LogEvent, _rec: _Res | None = None) -> None:
        data = ev.data
        kind, node, names = data.get("kind"), data.get("node"), data.get("names")
        if not (
            isinstance(kind, str) and kind in KINDS and isinstance(node, str)
        ) or not isinstance(names, list):
            self._bad(ev, "data needs kind (a known kind), node and names (a list)")
            return
        present = {n for n in names if isinstance(n, str)}
        eid = ev.id
        for rec in self.by_kind.get(kind, ()):
            if eid > rec.obs_id and rec.key[1] not in present and rec.current_node() == node:
                rec.mark_missing(ev)
        started = str(data.get("startedAt") or ev.ts)
        newest = self.listings.setdefault(node, {}).get(kind)
        if newest is None or ev.ts > newest[0]:
            self.listings[node][kind] = (ev.ts, started)

    def world_state(self) -> WorldState:
        """The folded world: every document built once, all of them dirty."""
        docs = {}
        for recs in self.by_kind.values():
            for rec in recs:
                docs[rec.key] = _document(rec)
        state = WorldState(docs=docs, listings=self.listings, folded=self.folded)
        state._names.update(self._names)
        state.dirty = set(docs)
        return state


_HANDLERS: dict[str, Callable[[Replay, LogEvent, _Res], None]] = {
    _RESOURCE: Replay._resource,
    _MISSING: Replay._missing,
    _LISTING: Replay._listing,
    _NODE: Replay._node_status,
    _CONDITION: Replay._condition,
}


def _document(rec: _Res) -> dict[str, Any]:
    doc = new_world_doc(*rec.key)
    status = doc["status"]
    status["node"] = rec.current_node()
    status["eventIds"] = {
        "observed": rec.obs_id,
        "lastAction": rec.action_id,
        "conditions": dict(rec.cond_ids),
    }
    status["lastEventId"] = rec.last
    obs = rec.obs
    if obs is not None:
        status["observedAt"] = obs.ts
        if rec.obs_missing:
            status["exists"] = False
            status["health"] = "Missing"
        else:
            status["exists"] = True
            if obs.type == _NODE:
                status["health"] = "Healthy" if obs.data.get("ready") else "Unhealthy"
            else:
                status["health"] = obs.data.get("health", "Unknown")
    if rec.managed_from is not None:
        status["managed"] = bool(rec.managed_from.data.get("managed", True))
    spec_from = rec.spec_from
    if spec_from is not None and spec_from.type == _RESOURCE:
        status["observed"] = spec_from.data["spec"]
        status["basis"] = None  # computed when written (`WorldState.take_dirty`)
        runtime = spec_from.data.get("runtime")
        if isinstance(runtime, dict):
            status["runtime"] = runtime
    elif spec_from is not None:  # marked missing
        status["observed"] = None
        status["basis"] = ""
    if rec.labels is not None:
        doc["metadata"]["labels"] = rec.labels
    if rec.info is not None:
        status["info"] = rec.info
    status["conditions"] = _conditions(rec)
    if rec.action is not None:
        status["lastAction"] = _last_action(rec.action)
    return doc


def _conditions(rec: _Res) -> list[dict[str, Any]]:
    return [
        {
            "type": ctype,
            "status": cond[0],
            "reason": cond[1],
            "message": cond[2],
            "lastTransitionTime": cond[3],
        }
        for ctype, cond in sorted(rec.conds.items())
    ]


def _last_action(action: LogEvent) -> dict[str, Any]:
    data = action.data
    last = {
        "id": data.get("action"),
        "state": data.get("state") or action.type[len("action.") :],
        "operation": data.get("operation"),
        "actor": data.get("actor"),
        "at": action.ts,
    }
    for extra in ("reason", "outcome"):
        if data.get(extra) is not None:
            last[extra] = data[extra]
    return last
