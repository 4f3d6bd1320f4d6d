"""Ingest: external events (agents, scripts, webhooks) validated and appended to the log.

`ingest(root, producer, events)` checks every event before writing any:
`type` is dotted lower-case (`backup.finished`) and outside the project's own
namespaces (`RESERVED_NAMESPACES`: `observed.*`, `node.*`, `resource.*`,
`action.*` and the services' and audit types are what the observer folds or
the audit trail holds; an agent may only add to the log, never speak for a
collector, the executor or an operator), `ref` is null or a known kind with a
DNS-1123 name, `data` is an object, and the encoded event stays under a size
cap. A reserved type raises `ForbiddenEvent` (the API answers 403 and audits
it), anything else malformed `InvalidEvent` (400). Valid batches are
appended under the producer `ingest-<agent>`, one writer per producer for
the process. Called by the UI's HTTP API (`POST /api/events`) and tests.
"""

from __future__ import annotations

import re
import threading
from typing import Any

import orjson

from reconciler.errors import HomelabError
from reconciler.events.log import Event, EventLog, check_producer
from reconciler.resources.key import ResourceKey
from reconciler.resources.kinds import KINDS
from reconciler.resources.meta import check_dns_label
from reconciler.runtime_root import RuntimeRoot

MAX_EVENT_BYTES = 64 * 1024
MAX_BATCH = 1000
_TYPE = re.compile(r"^[a-z][a-z0-9_-]{0,62}(\.[a-z0-9_-]{1,63}){1,4}$")
# First segments of types the project's services write or the observer folds.
RESERVED_NAMESPACES = frozenset(
    {
        "action",
        "observed",
        "node",
        "resource",
        "supervisor",
        "executor",
        "observer",
        "ui",
        "cli",
        "ingest",
        "auth",
        "token",
        "notify",
        "notification",
        "notifier",
        "source",
    }
)
_writers: dict[tuple[str, str], EventLog] = {}
_writers_lock = threading.Lock()


class InvalidEvent(HomelabError):
    """An external event was refused; the message says which one and why."""


class ForbiddenEvent(InvalidEvent):
    """An external event of a type only the project's own services may write."""


def _check(index: int, raw: Any) -> tuple[str, ResourceKey | None, dict[str, Any]]:
    where = f"event {index}"
    if not isinstance(raw, dict):
        raise InvalidEvent(f"{where}: expected an object with type, ref and data")
    unknown = set(raw) - {"type", "ref", "data"}
    if unknown:
        raise InvalidEvent(f"{where}: unknown fields {sorted(unknown)} (allowed: type, ref, data)")
    etype = raw.get("type")
    if not isinstance(etype, str) or not _TYPE.match(etype):
        raise InvalidEvent(f"{where}: type {etype!r} must look like 'backup.finished'")
    namespace = etype.partition(".")[0]
    if namespace in RESERVED_NAMESPACES:
        raise ForbiddenEvent(
            f"{where}: type {etype!r} is reserved: {namespace}.* events are written only by "
            "the project's own services (collectors, executor, supervisor, operators); "
            "send your own type, e.g. 'backup.finished' (docs/internals.md, Ingest)"
        )
    ref = raw.get("ref")
    pair: ResourceKey | None = None
    if ref is not None:
        if not isinstance(ref, dict) or set(ref) != {"kind", "name"}:
            raise InvalidEvent(f"{where}: ref must be null or {{kind, name}}")
        if ref["kind"] not in KINDS:
            raise InvalidEvent(f"{where}: ref.kind {ref['kind']!r} is not one of {sorted(KINDS)}")
        try:
            check_dns_label(str(ref["name"]))
        except ValueError as exc:
            raise InvalidEvent(f"{where}: ref.name: {exc}") from exc
        pair = ResourceKey(ref["kind"], ref["name"])
    data = raw.get("data", {})
    if not isinstance(data, dict):
        raise InvalidEvent(f"{where}: data must be an object")
    try:
        size = len(orjson.dumps(raw))
    except TypeError as exc:
        raise InvalidEvent(
            f"{where}: not storable as JSON ({exc}); integers must fit in 64 bits"
        ) from exc
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent(f"{where}: {size} bytes, at most {MAX_EVENT_BYTES}")
    return etype, pair, data


def producer_for(agent: str) -> str:
    """`ingest-<agent>`, checked against the producer name pattern."""
    name = agent if agent.startswith("ingest-") else f"ingest-{agent}"
    try:
        return check_producer(name)
    except HomelabError as exc:
        raise InvalidEvent(str(exc)) from exc


def _writer(root: RuntimeRoot, producer: str) -> EventLog:
    key = (str(root.path), producer)
    with _writers_lock:
        log = _writers.get(key)
        if log is None:
            log = _writers[key] = EventLog(root, producer)
        return log


def ingest(root: RuntimeRoot, producer: str, events: list[Any]) -> list[Event]:
    """Validate every event, then append them all; returns the events as written."""
    if not isinstance(events, list) or not events:
        raise InvalidEvent("expected a non-empty list of events")
    if len(events) > MAX_BATCH:
        raise InvalidEvent(f"{len(events)} events in one batch, at most {MAX_BATCH}")
    name = producer_for(producer)
    checked = [_check(i, raw) for i, raw in enumerate(events)]
    log = _writer(root, name)
    return [log.append(etype, ref, data, sync=True) for etype, ref, data in checked]
