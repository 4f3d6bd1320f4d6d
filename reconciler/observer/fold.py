"""The fold: events in, world documents out. Pure, no I/O.

`WorldState.apply` folds one event (a `LogEvent`, in id order) into the
in-memory world documents and marks the touched documents dirty. Every field
group of a document remembers the id of the event that last set it
(`status.eventIds`), and an event older than that is ignored, so folding is
idempotent (replaying events changes nothing) and a late event from a slower
producer cannot undo a newer observation. Events the fold cannot use (an
unknown kind, a bad name, a malformed payload) become diagnostics, never
exceptions. Called by the observer's shell (`reconciler.observer.world_builder`),
which reads the log and writes what is dirty.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.events.reader import LogEvent, LogRef
from reconciler.resources.key import ResourceKey
from reconciler.resources.kinds import KINDS
from reconciler.resources.normalize import spec_hash
from reconciler.world import new_world_doc

HEALTH = frozenset({"Healthy", "Unhealthy", "Starting", "Stopped", "Unknown"})
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Diagnostic:
    event_id: str
    message: str


def _empty_ids() -> dict[str, Any]:
    return {"observed": "", "lastAction": "", "conditions": {}}


def _upsert_condition(status: dict[str, Any], cond: dict[str, Any], eid: str, ts: str) -> None:
    ids = status["eventIds"]["conditions"]
    ctype = cond["type"]
    if eid <= ids.get(ctype, ""):
        return
    ids[ctype] = eid
    conds: list[dict[str, Any]] = status["conditions"]
    for i, old in enumerate(conds):
        if old["type"] == ctype:
            changed = old["status"] != cond["status"]
            conds[i] = {
                "type": ctype,
                "status": cond["status"],
                "reason": cond["reason"],
                "message": cond["message"],
                "lastTransitionTime": ts if changed else old["lastTransitionTime"],
            }
            return
    conds.append(
        {
            "type": ctype,
            "status": cond["status"],
            "reason": cond["reason"],
            "message": cond["message"],
            "lastTransitionTime": ts,
        }
    )
    conds.sort(key=lambda c: c["type"])


def _condition(raw: Any) -> dict[str, Any] | None:
    """A condition from event data, or None when it is malformed."""
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str) or not raw["type"]:
        return None
    status = raw.get("status")
    if isinstance(status, bool):
        status = "True" if status else "False"
    if status not in ("True", "False", "Unknown"):
        return None
    return {
        "type": raw["type"],
        "status": status,
        "reason": str(raw.get("reason") or ""),
        "message": str(raw.get("message") or ""),
    }


def ref_problem(ev: LogEvent, names: set[str]) -> str | None:
    """Why the event's ref cannot be folded, or None; a name that passes is added to `names`.

    `names` caches the names already checked (the DNS-label match is the costly part).
    """
    ref = ev.ref
    if ref is None:
        return "needs a ref {kind, name}; not folded"
    if ref.kind not in KINDS:
        return f"unknown kind {ref.kind!r} (known: {', '.join(KINDS)}); not folded"
    if ref.name not in names:
        if not _DNS_LABEL.match(ref.name):
            return f"name {ref.name!r} is not a DNS-1123 label; not folded"
        names.add(ref.name)
    return None


@dataclass
class WorldState:
    """All world documents by (kind, name), plus what changed since `take_dirty`."""

    docs: dict[ResourceKey, dict[str, Any]] = field(default_factory=dict)
    dirty: set[ResourceKey] = field(default_factory=set)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # node -> kind -> (ts, startedAt) of the newest folded full listing
    listings: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    folded: int = 0
    _names: set[str] = field(default_factory=set)
    _keys: dict[LogRef, ResourceKey] = field(default_factory=dict)  # checked refs -> docs keys

    def _doc_at(self, key: ResourceKey) -> dict[str, Any]:
        doc = self.docs.get(key)
        if doc is None:
            doc = new_world_doc(*key)
            doc["status"]["node"] = None
            doc["status"]["eventIds"] = _empty_ids()
            self.docs[key] = doc
        self.dirty.add(key)
        return doc

    def _bad(self, ev: LogEvent, message: str) -> None:
        self.diagnostics.append(Diagnostic(ev.id, f"event {ev.id} ({ev.type}): {message}"))

    def _ref_ok(self, ev: LogEvent) -> bool:
        problem = ref_problem(ev, self._names)
        if problem is not None:
            self._bad(ev, problem)
        return problem is None

    def apply(self, ev: LogEvent) -> None:
        """Fold one event; malformed or unknown events only add a diagnostic."""
        etype = ev.type
        handler = _HANDLERS.get(etype)
        if handler is None:
            if etype == "observed.listing":
                self._listing(ev)
                self.folded += 1
                return
            if not etype.startswith("action."):
                return  # not an observation (queue, supervisor, ui events): nothing to fold
            handler = WorldState._action
        ref = ev.ref
        key = self._keys.get(ref) if ref is not None else None
        if key is None:
            if not self._ref_ok(ev):
                return
            assert ref is not None
            key = self._keys[ref] = ResourceKey(ref.kind, ref.name)
        handler(self, ev, key)
        self.folded += 1

    def _touch(self, status: dict[str, Any], eid: str) -> None:
        last = status["lastEventId"]
        if last is None or eid > last:
            status["lastEventId"] = eid

    def _touched(self, key: ResourceKey, eid: str) -> dict[str, Any]:
        """The document of `key`, marked dirty, its lastEventId moved to `eid` if newer."""
        doc = self._doc_at(key)
        self._touch(doc["status"], eid)
        return doc

    def _observed_resource(self, ev: LogEvent, key: ResourceKey) -> None:
        data = ev.data
        spec = data.get("spec")
        health = data.get("health", "Unknown")
        if not isinstance(spec, dict) or not isinstance(health, str) or health not in HEALTH:
            self._bad(
                ev,
                "data needs spec (an object) and health (Healthy, Unhealthy, "
                "Starting, Stopped or Unknown); not folded",
            )
            return
        eid = ev.id
        doc = self._touched(key, eid)
        status = doc["status"]
        ids = status["eventIds"]
        if eid > ids["observed"]:
            ids["observed"] = eid
            status["exists"] = True
            status["managed"] = bool(data.get("managed", True))
            status["observed"] = spec
            status["basis"] = None  # computed when written
            status["health"] = health
            status["observedAt"] = ev.ts
            node = data.get("node", spec.get("node"))
            status["node"] = node if isinstance(node, str) else None
            labels = data.get("labels")
            if isinstance(labels, dict):
                doc["metadata"]["labels"] = labels
            # Facts that are not part of the comparable spec (the image id a container
            # runs, a stack's services, a file's size and text): shown, never diffed.
            runtime = data.get("runtime")
            if isinstance(runtime, dict):
                status["runtime"] = runtime
            else:
                status.pop("runtime", None)
        conditions = data.get("conditions")
        if isinstance(conditions, list):  # anything else carries no condition
            for raw in conditions:
                cond = _condition(raw)
                if cond is not None:
                    _upsert_condition(status, cond, eid, ev.ts)

    def _observed_missing(self, ev: LogEvent, key: ResourceKey) -> None:
        doc = self._doc_at(key)
        self._mark_missing(doc["status"], ev.id, ev.ts)

    def _mark_missing(self, status: dict[str, Any], eid: str, ts: str) -> None:
        self._touch(status, eid)
        if eid > status["eventIds"]["observed"]:
            status["eventIds"]["observed"] = eid
            status["exists"] = False
            status["observed"] = None
            status["basis"] = ""
            status["health"] = "Missing"
            status.pop("runtime", None)
            status["observedAt"] = ts

    def _listing(self, ev: LogEvent) -> None:
        data = ev.data
        kind, node, names = data.get("kind"), data.get("node"), data.get("names")
        if not (
            isinstance(kind, str) and kind in KINDS and isinstance(node, str)
        ) or not isinstance(names, list):
            self._bad(ev, "data needs kind (a known kind), node and names (a list)")
            return
        present = {n for n in names if isinstance(n, str)}  # anything else names nothing
        for ref, doc in self.docs.items():
            status = doc["status"]
            if (
                ref[0] == kind
                and status["node"] == node
                and ref[1] not in present
                and ev.id > status["eventIds"]["observed"]
            ):
                self.dirty.add(ref)
                self._mark_missing(status, ev.id, ev.ts)
        started = str(data.get("startedAt") or ev.ts)
        newest = self.listings.setdefault(node, {}).get(kind)
        if newest is None or ev.ts > newest[0]:
            self.listings[node][kind] = (ev.ts, started)

    def _node_status(self, ev: LogEvent, key: ResourceKey) -> None:
        data = ev.data
        status = self._touched(key, ev.id)["status"]
        ready = bool(data.get("ready"))
        if ev.id > status["eventIds"]["observed"]:
            status["eventIds"]["observed"] = ev.id
            status["exists"] = True
            status["health"] = "Healthy" if ready else "Unhealthy"
            status["observedAt"] = ev.ts
            status["node"] = key[1]
            info = data.get("info")
            status["info"] = info if isinstance(info, dict) else {}
        cond = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": str(data.get("reason") or ("EngineReachable" if ready else "Unknown")),
            "message": str(data.get("message") or ""),
        }
        _upsert_condition(status, cond, ev.id, ev.ts)

    def _resource_condition(self, ev: LogEvent, key: ResourceKey) -> None:
        cond = _condition(ev.data)
        if cond is None:
            self._bad(ev, "data needs type and status (True, False or Unknown)")
            return
        status = self._touched(key, ev.id)["status"]
        _upsert_condition(status, cond, ev.id, ev.ts)

    def _action(self, ev: LogEvent, key: ResourceKey) -> None:
        data = ev.data
        eid = ev.id
        status = self._touched(key, eid)["status"]
        ids = status["eventIds"]
        if eid <= ids["lastAction"]:
            return
        ids["lastAction"] = eid
        last = {
            "id": data.get("action"),
            "state": data.get("state") or ev.type[len("action.") :],
            "operation": data.get("operation"),
            "actor": data.get("actor"),
            "at": ev.ts,
        }
        for extra in ("reason", "outcome"):
            if data.get(extra) is not None:
                last[extra] = data[extra]
        status["lastAction"] = last

    def take_dirty(self) -> dict[ResourceKey, dict[str, Any]]:
        """The documents changed since the last call, with `basis` filled in."""
        out = {}
        for ref in self.dirty:
            doc = self.docs[ref]
            status = doc["status"]
            if status["basis"] is None:
                observed = status["observed"]
                status["basis"] = spec_hash(observed) if observed is not None else ""
            out[ref] = doc
        self.dirty = set()
        return out


_HANDLERS: dict[str, Callable[[WorldState, LogEvent, ResourceKey], None]] = {
    "observed.resource": WorldState._observed_resource,
    "observed.missing": WorldState._observed_missing,
    "node.status": WorldState._node_status,
    "resource.condition": WorldState._resource_condition,
}
