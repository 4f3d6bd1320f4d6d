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
        "cond_ids",
        "conds",
        "created",
        "info_from",
        "key",
        "labels_from",
        "last",
        "managed_from",
        "node_from",
        "obs",
        "obs_id",
        "obs_missing",
        "spec_from",
    )

    def __init__(self, key: ResourceKey) -> None:
        self.key = key
        self.created = False  # touched by an event: the document exists
        self.last: str | None = None  # lastEventId
        self.obs_id = ""
        self.obs: LogEvent | None = None
        self.obs_missing = False  # the winner of `obs` says the resource is missing
        self.spec_from: LogEvent | None = None  # observed/basis/runtime: resource or missing
        self.managed_from: LogEvent | None = None  # the resource event that set `managed`
        self.node_from: LogEvent | None = None  # the resource or node.status naming the node
        self.labels_from: LogEvent | None = None  # the resource event whose labels hold
        self.info_from: LogEvent | None = None  # the node.status whose info holds
        self.action_id = ""
        self.action: LogEvent | None = None
        self.cond_ids: dict[str, str] = {}
        self.conds: dict[str, list[str]] = {}  # type -> [status, reason, message, time]

    def touch(self, eid: str) -> None:
        last = self.last
        if last is None or eid > last:
            self.last = eid

    def current_node(self) -> str | None:
        """The node as `status.node` holds it now (read from the event that set it)."""
        ev = self.node_from
        if ev is None:
            return None
        if ev.type == _NODE:
            return self.key[1]  # a Node's own status names it
        data = ev.data
        node = data["node"] if "node" in data else data["spec"].get("node")
        return node if isinstance(node, str) else None

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


class _LaterRes(_Res):
    """A record of the later part of a split log (`LaterReplay`): what to merge after the earlier.

    `segs`: the observation group as it stood at each listing of this kind
    (the listing's index in `LaterReplay.pending` first), reset after each,
    since the earlier part decides what a listing does. `cond_log`: every
    condition update that won here, replayed over the earlier part's.
    """

    __slots__ = ("cond_log", "segs")

    def __init__(self, key: ResourceKey) -> None:
        super().__init__(key)
        self.segs: list[tuple[Any, ...]] = []
        self.cond_log: list[tuple[str, tuple[str, str, str], str, str]] = []

    def upsert(self, ctype: str, cond: tuple[str, str, str], eid: str, ts: str) -> None:
        ids = self.cond_ids
        if eid <= ids.get(ctype, ""):
            return
        ids[ctype] = eid
        self.cond_log.append((ctype, cond, eid, ts))

    def segment(self, listing: int) -> tuple[Any, ...]:
        return (
            listing,
            self.obs_id,
            self.obs,
            self.obs_missing,
            self.spec_from,
            self.managed_from,
            self.node_from,
            self.labels_from,
            self.info_from,
        )

    def reset_observation(self) -> None:
        self.obs_id = ""
        self.obs = self.spec_from = self.managed_from = None
        self.node_from = self.labels_from = self.info_from = None
        self.obs_missing = False


@dataclass
class _Listing:
    """A valid `observed.listing`: what it says, read once."""

    ev: LogEvent
    kind: str
    node: str
    present: set[str]
    started: str


@dataclass
class EarlierPart:
    """The fold of the earlier days of a split log, to merge before the later (`LaterReplay`)."""

    records: list[_Res]  # the created records, in creation order by kind (`Replay.by_kind`)
    listings: dict[str, dict[str, tuple[str, str]]]
    names: set[str]
    folded: int


class Replay:
    """Folds a whole log, batch after batch, into per-resource records."""

    record_type: type[_Res] = _Res
    handlers: dict[str, Callable[[Any, LogEvent, Any], None]]  # set below the classes

    def __init__(self) -> None:
        self.res: dict[LogRef, _Res] = {}
        self.by_kind: dict[str, list[_Res]] = {}
        self.listings: dict[str, dict[str, tuple[str, str]]] = {}
        self.diagnostics: list[Diagnostic] = []
        self.folded = 0
        self._names: set[str] = set()

    def _bad(self, ev: LogEvent, message: str) -> None:
        self.diagnostics.append(Diagnostic(ev.id, f"event {ev.id} ({ev.type}): {message}"))

    def _record(self, ev: LogEvent) -> _Res | None:
        """The record of the event's resource (created), or None with a diagnostic."""
        problem = ref_problem(ev, self._names)
        if problem is not None:
            self._bad(ev, problem)
            return None
        ref = ev.ref
        assert ref is not None
        # The document itself appears when an event first touches it (`_created`).
        rec = self.res[ref] = self.record_type(ResourceKey(ref.kind, ref.name))
        return rec

    def _created(self, rec: _Res) -> None:
        if not rec.created:
            rec.created = True
            self.by_kind.setdefault(rec.key.kind, []).append(rec)

    def fold(self, events: Iterable[LogEvent]) -> None:
        """Fold events in the order `WorldState.apply` would see them."""
        res = self.res
        handlers = self.handlers
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

    def part(self) -> EarlierPart:
        """This fold as the earlier part of a split log (`LaterReplay.merged_state`)."""
        records = [rec for recs in self.by_kind.values() for rec in recs]
        return EarlierPart(records, self.listings, self._names, self.folded)

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
            if not plain and isinstance(data.get("labels"), dict):
                rec.labels_from = ev
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
            rec.node_from = rec.info_from = ev  # a Node's own status names it
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

    def _parse_listing(self, ev: LogEvent) -> _Listing | None:
        data = ev.data
        kind, node, names = data.get("kind"), data.get("node"), data.get("names")
        if not (
            isinstance(kind, str) and kind in KINDS and isinstance(node, str)
        ) or not isinstance(names, list):
            self._bad(ev, "data needs kind (a known kind), node and names (a list)")
            return None
        present = {n for n in names if isinstance(n, str)}
        return _Listing(ev, kind, node, present, str(data.get("startedAt") or ev.ts))

    def _listing(self, ev: LogEvent, _rec: _Res | None = None) -> None:
        listing = self._parse_listing(ev)
        if listing is not None:
            for rec in self.by_kind.get(listing.kind, ()):
                _mark_unlisted(rec, listing)
            _newest_listing(self.listings, listing)

    def world_state(self) -> WorldState:
        """The folded world: every document built once, all of them dirty."""
        return _state(self.by_kind, self.listings, self.folded, self._names)


class LaterReplay(Replay):
    """`Replay` of the later days of a split log, folded while another process folds the earlier.

    A resource's record is a set of "last winner" fields each compared by
    event id (the highest wins, the first folded among equals), so the
    later days' winners are merged over the earlier days' by the same
    comparison (`merged_state`). Two things depend on the earlier days' state
    and are replayed at the merge instead: a condition's transition time
    (each winning update kept, `_LaterRes.cond_log`) and what a listing
    marks missing (the listing kept in `pending`; each record of its kind
    keeps its observation group as it stood there and starts a new one).
    """

    record_type = _LaterRes

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[_Listing] = []

    def _listing(self, ev: LogEvent, _rec: _Res | None = None) -> None:
        listing = self._parse_listing(ev)
        if listing is None:
            return
        index = len(self.pending)
        self.pending.append(listing)
        for rec in self.by_kind.get(listing.kind, ()):
            assert isinstance(rec, _LaterRes)
            rec.segs.append(rec.segment(index))
            rec.reset_observation()

    def merged_state(self, earlier: EarlierPart) -> WorldState:
        """The world one `Replay` of the earlier days then these would build."""
        by_kind: dict[str, list[_Res]] = {}
        found: dict[ResourceKey, _Res] = {}
        for rec in earlier.records:
            by_kind.setdefault(rec.key.kind, []).append(rec)
            found[rec.key] = rec
        pending = self.pending
        merged = set()
        for kind, recs in self.by_kind.items():
            for later in recs:
                assert isinstance(later, _LaterRes)
                known = found.get(later.key)
                if known is None:  # created in these days (listings before it see no node)
                    rec = _Res(later.key)
                    rec.created = True
                    by_kind.setdefault(kind, []).append(rec)
                else:
                    rec = known
                merged.add(later.key)
                _merge_record(rec, later, pending)
        if pending:
            for rec in earlier.records:
                if rec.key not in merged:  # no event here; the listings still see it
                    for listing in pending:
                        if listing.kind == rec.key.kind:
                            _mark_unlisted(rec, listing)
        listings = {node: dict(kinds) for node, kinds in earlier.listings.items()}
        for listing in pending:
            _newest_listing(listings, listing)
        return _state(by_kind, listings, earlier.folded + self.folded, earlier.names | self._names)


Replay.handlers = {
    _RESOURCE: Replay._resource,
    _MISSING: Replay._missing,
    _LISTING: Replay._listing,
    _NODE: Replay._node_status,
    _CONDITION: Replay._condition,
}
LaterReplay.handlers = {**Replay.handlers, _LISTING: LaterReplay._listing}


def _mark_unlisted(rec: _Res, listing: _Listing) -> None:
    """What a listing does to one record of its kind: missing if absent from its node."""
    ev = listing.ev
    name = rec.key[1]
    if ev.id > rec.obs_id and name not in listing.present and rec.current_node() == listing.node:
        rec.mark_missing(ev)


def _newest_listing(listings: dict[str, dict[str, tuple[str, str]]], listing: _Listing) -> None:
    ts = listing.ev.ts
    newest = listings.setdefault(listing.node, {}).get(listing.kind)
    if newest is None or ts > newest[0]:
        listings[listing.node][listing.kind] = (ts, listing.started)


def _merge_segment(rec: _Res, seg: tuple[Any, ...]) -> None:
    """A later observation group over the record's: each field where its winner is newer."""
    _, obs_id, obs, missing, spec_from, managed_from, node_from, labels_from, info_from = seg
    bar = rec.obs_id
    if obs is not None and obs_id > bar:
        rec.obs_id, rec.obs, rec.obs_missing = obs_id, obs, missing
    if spec_from is not None and spec_from.id > bar:
        rec.spec_from = spec_from
    if managed_from is not None and managed_from.id > bar:
        rec.managed_from = managed_from
    if node_from is not None and node_from.id > bar:
        rec.node_from = node_from
    if labels_from is not None and labels_from.id > bar:
        rec.labels_from = labels_from
    if info_from is not None and info_from.id > bar:
        rec.info_from = info_from


def _merge_record(rec: _Res, later: _LaterRes, pending: list[_Listing]) -> None:
    """`later` (folded from the later days alone) merged over `rec` (the earlier days)."""
    if later.last is not None and (rec.last is None or later.last > rec.last):
        rec.last = later.last
    if later.action_id > rec.action_id:
        rec.action_id, rec.action = later.action_id, later.action
    for ctype, cond, eid, ts in later.cond_log:
        _Res.upsert(rec, ctype, cond, eid, ts)
    segs = later.segs
    k = 0
    kind = rec.key.kind
    for index, listing in enumerate(pending):
        if listing.kind != kind:
            continue
        if k < len(segs) and segs[k][0] == index:
            _merge_segment(rec, segs[k])
            k += 1
        _mark_unlisted(rec, listing)
    _merge_segment(rec, later.segment(-1))


def _state(
    by_kind: dict[str, list[_Res]],
    listings: dict[str, dict[str, tuple[str, str]]],
    folded: int,
    names: set[str],
) -> WorldState:
    docs = {}
    for recs in by_kind.values():
        for rec in recs:
            docs[rec.key] = _document(rec)
    state = WorldState(docs=docs, listings=listings, folded=folded)
    state._names.update(names)
    state.dirty = set(docs)
    return state


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
    if rec.labels_from is not None:
        doc["metadata"]["labels"] = rec.labels_from.data["labels"]
    if rec.info_from is not None:
        info = rec.info_from.data.get("info")
        status["info"] = info if isinstance(info, dict) else {}
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
