"""Which Docker engine events are worth an inspection, and each one only once.

A healthcheck runs as an exec in the container: every probe is an
`exec_create`, `exec_start` and `exec_die` event, which change nothing the
collector reports; only the `health_status` events that follow a transition
do. `INSPECT_ACTIONS` are the container actions that can change an
observation (`EVENT_FILTERS` asks the engine for those alone, and
`triggers_inspection` checks again on our side). The collector opens the
stream again (after a resync) from the second of the last event it read,
so `SeenEvents` drops an event already handled, keyed by its (timeNano, id,
Action). Used by the Docker
collector.
"""

from __future__ import annotations

from typing import Any

INSPECT_ACTIONS = frozenset(
    {
        "create",
        "start",
        "restart",
        "stop",
        "die",
        "oom",
        "destroy",
        "update",
        "rename",
        "pause",
        "unpause",
        "health_status",
    }
)
# Networks and volumes (observer/collectors/netvol.py): created, removed, a container
# connected or disconnected (never a volume's mount/unmount, which every start makes).
NETVOL_ACTIONS = frozenset({"create", "destroy", "connect", "disconnect"})
# The engine matches `health_status` against "health_status: healthy" and the like.
EVENT_FILTERS: dict[str, Any] = {
    "type": ["container", "network", "volume"],
    "event": sorted(INSPECT_ACTIONS | NETVOL_ACTIONS),
}


def action_of(event: dict[str, Any]) -> str:
    """The event's action without its detail ("health_status: healthy" -> "health_status")."""
    return str(event.get("Action") or event.get("status") or "").split(":", 1)[0].strip()


def triggers_inspection(event: dict[str, Any]) -> bool:
    return event.get("Type") == "container" and action_of(event) in INSPECT_ACTIONS


def event_key(event: dict[str, Any]) -> tuple[int, str, str]:
    time_nano = event.get("timeNano")
    if not isinstance(time_nano, int):
        time_nano = int(event.get("time") or 0) * 1_000_000_000
    ident = event.get("id") or (event.get("Actor") or {}).get("ID") or ""
    return time_nano, str(ident), str(event.get("Action") or "")


class SeenEvents:
    """Events handled since the second the current stream started from."""

    def __init__(self) -> None:
        self._seen: set[tuple[int, str, str]] = set()

    def first_time(self, event: dict[str, Any]) -> bool:
        """True the first time an event is offered; False for its repeats."""
        key = event_key(event)
        if key in self._seen:
            return False
        self._seen.add(key)
        return True

    def forget_before(self, seconds: int) -> None:
        """Drop what a stream starting at `seconds` (epoch) can no longer repeat."""
        floor = seconds * 1_000_000_000
        self._seen = {key for key in self._seen if key[0] >= floor}
