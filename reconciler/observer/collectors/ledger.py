"""What a collector last wrote, so that it writes an observation only when it changed.

`ObservationLedger.write(type, key, data)` appends the event through the
collector's `Emit` only when it differs from the last one this collector
wrote for that resource (a digest of the type and the data: the data a
collector builds holds no volatile field such as a timestamp, so the whole
of it is hashed). Before it has written anything for a resource (after a
start or a restart) and on every full listing (`resync=True`) it compares
with the world document on disk instead: an observation the world already
holds is not written again, and one the world contradicts (another producer,
e.g. the executor, reported something else since) is written even if this
collector wrote it before. The world is the memory across restarts: it is
what must be right, it survives a restart by construction, and it needs no
second state file that could disagree with it. Used by the Docker collector.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson

from reconciler.observer.collectors import Emit
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import read_world_doc, world_path
from reconciler.world.doc import InvalidWorldDoc, WorldDoc

# A write this recent may not be folded into the world document yet: a full
# listing does not take the world's older view for a contradiction.
FOLD_GRACE = 10.0


def digest(etype: str, data: dict[str, Any]) -> bytes:
    return hashlib.blake2b(
        orjson.dumps([etype, data], option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()


def _conditions_agree(doc: WorldDoc, conditions: Any) -> bool:
    for raw in conditions if isinstance(conditions, list) else []:
        if not isinstance(raw, dict):
            continue
        held = doc.status.condition(str(raw.get("type")))
        if held is None or (held.status, held.reason, held.message) != (
            raw.get("status"),
            str(raw.get("reason") or ""),
            str(raw.get("message") or ""),
        ):
            return False
    return True


def agrees(doc: WorldDoc | None, etype: str, data: dict[str, Any]) -> bool:
    """True when folding this event would change nothing the world document holds."""
    status = doc.status if doc is not None else None
    if etype == "observed.missing":
        return status is None or not status.exists
    if doc is None or status is None or not status.exists:
        return False
    if etype == "node.status":
        ready = bool(data.get("ready"))
        info = data.get("info")
        ready_cond = {
            "type": "Ready",
            "status": "True" if ready else "False",
            "reason": str(data.get("reason") or ("EngineReachable" if ready else "Unknown")),
            "message": str(data.get("message") or ""),
        }
        return (
            status.health == ("Healthy" if ready else "Unhealthy")
            and status.info == (info if isinstance(info, dict) else {})
            and _conditions_agree(doc, [ready_cond])
        )
    spec = data.get("spec")
    if not isinstance(spec, dict):
        return False
    runtime = data.get("runtime")  # the fold keeps an object, drops anything else
    held = status.runtime if isinstance(status.runtime, dict) else None
    return (
        held == (runtime if isinstance(runtime, dict) else None)
        and status.observed == spec
        and status.health == data.get("health", "Unknown")
        and status.managed == bool(data.get("managed", True))
        and status.node == data.get("node", spec.get("node"))
        and _conditions_agree(doc, data.get("conditions"))
    )


@dataclass
class _Written:
    digest: bytes
    at: float  # time.monotonic() of the write


class ObservationLedger:
    """One collector's last write per resource; `write` drops what would repeat it."""

    def __init__(self, root: RuntimeRoot, emit: Emit) -> None:
        self.root = root
        self.emit = emit
        self._last: dict[ResourceKey, _Written] = {}

    def _world(self, key: ResourceKey) -> WorldDoc | None:
        try:
            return read_world_doc(world_path(self.root, key.kind, key.name))
        except (OSError, InvalidWorldDoc):
            return None  # absent or unreadable: nothing to agree with

    def _needed(self, etype: str, key: ResourceKey, data: dict[str, Any], resync: bool) -> bool:
        new = digest(etype, data)
        last = self._last.get(key)
        if last is not None and last.digest == new:
            if not resync or time.monotonic() - last.at < FOLD_GRACE:
                return False
            return not agrees(self._world(key), etype, data)
        if (last is None or resync) and agrees(self._world(key), etype, data):
            self._last[key] = _Written(new, time.monotonic())
            return False
        return True

    def write(
        self, etype: str, key: ResourceKey, data: dict[str, Any], *, resync: bool = False
    ) -> bool:
        """Emit the event unless it repeats what was written; True when it was emitted."""
        if not self._needed(etype, key, data, resync):
            return False
        self.emit(etype, key, data)
        self._last[key] = _Written(digest(etype, data), time.monotonic())
        return True
