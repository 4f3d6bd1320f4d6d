"""From events to messages: what is worth telling, and bursts told once.

Pure (no I/O): `Tracker.signals(event)` turns one log event into zero or
more `Signal`s, remembering what it needs to report transitions only (a
node going from ready to not ready, a condition turning True), and
`Digest` holds signals for a short window and turns each burst into
`Message`s: one per kind of news (and, for pending actions, per commit),
so 40 actions proposed by one commit make one message. Which event makes
which notification:

- `action.pending` from `action.pending` (the queue's proposal), dropped
  when the action moved on (auto-approved, superseded) before the window
  closed;
- `action.failed` from `action.failed`;
- `resource.drifted` from the supervisor's status (`state/supervisor_status.json`,
  read by the service) turning a resource `Drifted`: a change is needed
  that no action will make (a withheld delete, a rejected change); also
  from a `resource.condition` of type `Drifted`, should one be written;
- `resource.flapping` from `resource.condition` type `Flapping` turning True;
- `node.notready` from `node.status` with `ready: false` after ready (or
  when first seen);
- `source.notready` from any `source.*` event whose data says `ready:
  false` (or a `Ready` condition `status: "False"`) after ready.

Recoveries (ready again, no longer flapping, back in sync) are `info`
messages of the same notification. Every state here is plain JSON, kept in
the notifier's checkpoint. Called by the notifier service.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reconciler.events.reader import LogEvent

SEVERITY_RANK = {"info": 0, "warning": 1, "failure": 2}
MAX_LISTED = 15
MAX_TEXT = 300
ActionLookup = Callable[[str], tuple[str, str] | None]  # action id -> (commit, summary)


def _cut(text: str, limit: int = MAX_TEXT) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Signal:
    """One piece of news: `event` is the notification name, `group` what it is digested with."""

    event: str
    group: str
    severity: str
    ref: str | None  # "Kind/name"
    line: str  # one line about this resource
    path: str  # the UI page about it, relative to the UI's base URL
    source_id: str  # the log event it came from
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.event,
            "group": self.group,
            "severity": self.severity,
            "ref": self.ref,
            "line": self.line,
            "path": self.path,
            "sourceId": self.source_id,
            "extra": self.extra,
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> Signal:
        return Signal(
            str(doc["event"]),
            str(doc["group"]),
            str(doc["severity"]),
            doc.get("ref"),
            str(doc["line"]),
            str(doc["path"]),
            str(doc["sourceId"]),
            dict(doc.get("extra") or {}),
        )


@dataclass(frozen=True)
class Message:
    """What a target receives: one burst of one kind of news."""

    id: str
    event: str
    severity: str
    title: str
    body: str
    refs: tuple[str, ...]
    sources: tuple[str, ...]  # the log events it tells about

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "event": self.event,
            "severity": self.severity,
            "title": self.title,
            "body": self.body,
            "refs": list(self.refs),
            "sources": list(self.sources),
        }

    @staticmethod
    def from_json(doc: dict[str, Any]) -> Message:
        return Message(
            str(doc["id"]),
            str(doc["event"]),
            str(doc["severity"]),
            str(doc["title"]),
            str(doc["body"]),
            tuple(doc.get("refs") or ()),
            tuple(doc.get("sources") or ()),
        )


def _ref(ev: LogEvent) -> str | None:
    return None if ev.ref is None else f"{ev.ref.kind}/{ev.ref.name}"


def _page(ref: str | None) -> str:
    return f"/resources/{ref}" if ref else "/"


class Tracker:
    """Turns events into signals; remembers the last state of nodes, conditions, sources."""

    def __init__(self, state: dict[str, Any] | None = None) -> None:
        state = state or {}
        self.nodes: dict[str, bool] = dict(state.get("nodes") or {})
        self.conditions: dict[str, bool] = dict(state.get("conditions") or {})
        self.sources: dict[str, bool] = dict(state.get("sources") or {})
        self.drifted: dict[str, bool] = dict(state.get("drifted") or {})

    def to_json(self) -> dict[str, Any]:
        return {
            "nodes": self.nodes,
            "conditions": self.conditions,
            "sources": self.sources,
            "drifted": self.drifted,
        }

    def supervisor_status(self, doc: dict[str, Any], *, quiet: bool = False) -> list[Signal]:
        """Resources the supervisor's status newly calls `Drifted` (and those no longer)."""
        resources = doc.get("resources")
        if not isinstance(resources, dict):
            return []
        stamp = str(doc.get("updatedAt") or "")
        out = []
        for ref, entry in sorted(resources.items()):
            if not isinstance(entry, dict):
                continue
            went = self._transition(self.drifted, ref, entry.get("status") == "Drifted")
            if went is None or quiet:
                continue
            errors = entry.get("errors") if isinstance(entry.get("errors"), list) else []
            why = _cut("; ".join(str(e) for e in errors or []))
            line = (
                f"{ref} drifted" + (f": {why}" if why else "")
                if went
                else f"{ref} is no longer drifted"
            )
            out.append(
                Signal(
                    "resource.drifted",
                    "resource.drifted" if went else "resource.drifted:ok",
                    "warning" if went else "info",
                    ref,
                    line,
                    _page(ref),
                    f"supervisor-status:{stamp}:{ref}",
                )
            )
        for ref in [r for r in self.drifted if r not in resources]:
            del self.drifted[ref]  # gone from the desired state and the world
        return out

    def signals(self, ev: LogEvent, lookup: ActionLookup) -> list[Signal]:
        etype = ev.type
        if etype == "action.pending":
            return [self._pending(ev, lookup)]
        if etype == "action.failed":
            return [self._failed(ev)]
        if etype == "resource.condition":
            return self._condition(ev)
        if etype == "node.status":
            return self._node(ev)
        if etype.startswith("source."):
            return self._source(ev)
        return []

    @staticmethod
    def _pending(ev: LogEvent, lookup: ActionLookup) -> Signal:
        action = str(ev.data.get("action") or "")
        operation = str(ev.data.get("operation") or "change")
        found = lookup(action) if action else None
        commit, summary = found if found is not None else ("", "")
        return Signal(
            "action.pending",
            f"action.pending:{commit[:12]}",
            "info",
            _ref(ev),
            f"{operation} {_ref(ev)}",
            f"/actions/{action}" if action else "/queue",
            ev.id,
            {"action": action, "operation": operation, "commit": commit, "summary": summary},
        )

    @staticmethod
    def _failed(ev: LogEvent) -> Signal:
        action = str(ev.data.get("action") or "")
        operation = str(ev.data.get("operation") or "change")
        outcome = ev.data.get("outcome") if isinstance(ev.data.get("outcome"), dict) else {}
        error = (outcome or {}).get("error") or ev.data.get("reason") or "no error recorded"
        return Signal(
            "action.failed",
            "action.failed",
            "failure",
            _ref(ev),
            f"{_ref(ev)}: {operation} failed: {_cut(error)}",
            f"/actions/{action}" if action else "/queue",
            ev.id,
            {"action": action, "operation": operation},
        )

    def _transition(self, table: dict[str, bool], key: str, bad: bool) -> bool | None:
        """True: it went bad; False: it recovered; None: no change worth telling."""
        before = table.get(key)
        table[key] = bad
        if bad and before is not True:
            return True
        if not bad and before is True:
            return False
        return None

    def _condition(self, ev: LogEvent) -> list[Signal]:
        ctype = ev.data.get("type")
        names = {"Flapping": "resource.flapping", "Drifted": "resource.drifted"}
        if ctype not in names or ev.ref is None:
            return []
        event, ref = names[ctype], _ref(ev)
        went = self._transition(
            self.conditions, f"{ref}|{ctype}", str(ev.data.get("status")) == "True"
        )
        if went is None:
            return []
        message = _cut(ev.data.get("message") or ev.data.get("reason") or "")
        if event == "resource.flapping":
            line = f"{ref} is flapping: {message}" if went else f"{ref} is no longer flapping"
        else:
            line = f"{ref} drifted: {message}" if went else f"{ref} is no longer drifted"
        return [
            Signal(
                event,
                event if went else f"{event}:ok",
                "warning" if went else "info",
                ref,
                line,
                _page(ref),
                ev.id,
            )
        ]

    def _node(self, ev: LogEvent) -> list[Signal]:
        if ev.ref is None or not isinstance(ev.data.get("ready"), bool):
            return []
        went = self._transition(self.nodes, ev.ref.name, not ev.data["ready"])
        if went is None:
            return []
        why = _cut(": ".join(str(x) for x in (ev.data.get("reason"), ev.data.get("message")) if x))
        line = (
            f"Node {ev.ref.name} is not ready" + (f" ({why})" if why else "")
            if went
            else f"Node {ev.ref.name} is ready again"
        )
        return [
            Signal(
                "node.notready",
                "node.notready" if went else "node.notready:ok",
                "failure" if went else "info",
                _ref(ev),
                line,
                _page(_ref(ev)),
                ev.id,
            )
        ]

    def _source(self, ev: LogEvent) -> list[Signal]:
        data = ev.data
        if isinstance(data.get("ready"), bool):
            bad = not data["ready"]
        elif data.get("status") in ("True", "False"):
            # A condition: a `Ready`-like type reports trouble with False, others with True.
            ctype = str(data.get("type") or "Ready")
            bad = (data["status"] == "False") == (ctype in ("Ready", "Available", "Synced"))
        else:
            return []
        name = _ref(ev) or str(data.get("source") or data.get("name") or ev.source)
        went = self._transition(self.sources, name, bad)
        if went is None:
            return []
        why = _cut(data.get("message") or data.get("reason") or "")
        line = (
            f"Source {name} is not ready" + (f": {why}" if why else "")
            if went
            else f"Source {name} is ready again"
        )
        return [
            Signal(
                "source.notready",
                "source.notready" if went else "source.notready:ok",
                "warning" if went else "info",
                _ref(ev),
                line,
                _page(_ref(ev)),
                ev.id,
            )
        ]


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _listed(lines: list[str]) -> str:
    shown = lines[:MAX_LISTED]
    more = len(lines) - len(shown)
    return "\n".join(shown) + (f"\n… and {more} more" if more else "")


def _pending_text(signals: list[Signal]) -> tuple[str, str, str]:
    commit = str(signals[0].extra.get("commit") or "")
    at = f" at commit {commit[:7]}" if commit else ""
    if len(signals) == 1:
        s = signals[0]
        summary = str(s.extra.get("summary") or "")
        title = f"{s.ref}: {s.extra.get('operation')} awaits approval{at}"
        return title, _cut(summary, 1500) if summary else s.line, s.path
    ops: dict[str, int] = {}
    for s in signals:
        op = str(s.extra.get("operation"))
        ops[op] = ops.get(op, 0) + 1
    split = ", ".join(f"{n} {op}" for op, n in sorted(ops.items(), key=lambda p: (-p[1], p[0])))
    title = f"{len(signals)} actions await approval{at}: {split}"
    return title, _listed([s.line for s in signals]), "/queue"


_TITLES = {
    "action.failed": ("action failed", "actions failed"),
    "resource.flapping": ("resource is flapping", "resources are flapping"),
    "resource.flapping:ok": ("resource stopped flapping", "resources stopped flapping"),
    "resource.drifted": ("resource drifted", "resources drifted"),
    "resource.drifted:ok": ("resource is no longer drifted", "resources are no longer drifted"),
    "node.notready": ("node is not ready", "nodes are not ready"),
    "node.notready:ok": ("node is ready again", "nodes are ready again"),
    "source.notready": ("source is not ready", "sources are not ready"),
    "source.notready:ok": ("source is ready again", "sources are ready again"),
}
_LISTS = {
    "action.failed": "/queue",
    "resource.flapping": "/resources?status=Flapping",
    "resource.drifted": "/resources?status=Drifted",
}


def compose(signals: list[Signal], ui_url: str) -> Message:
    """One message for signals of one group; the link is absolute under `ui_url`."""
    first = signals[0]
    if first.event == "action.pending":
        title, body, path = _pending_text(signals)
    elif len(signals) == 1:
        title, body, path = first.line, first.line, first.path
    else:
        one, many = _TITLES.get(first.group, ("event", "events"))
        title = _count(len(signals), one, many)
        body = _listed([s.line for s in signals])
        path = _LISTS.get(first.group, "/")
    link = ui_url.rstrip("/") + path
    severity = max((s.severity for s in signals), key=lambda v: SEVERITY_RANK.get(v, 0))
    sources = tuple(s.source_id for s in signals)
    digest = hashlib.sha256(("\0".join((first.group, *sorted(sources)))).encode()).hexdigest()
    refs = tuple(dict.fromkeys(s.ref for s in signals if s.ref))
    return Message(
        id=f"msg-{digest[:20]}",
        event=first.event,
        severity=severity,
        title=title,
        body=f"{body}\n\n{link}",
        refs=refs,
        sources=sources,
    )


class Digest:
    """Signals waiting for their burst to end: `quiet` s without news, or `max_wait` s."""

    def __init__(self, quiet: float, max_wait: float, state: dict[str, Any] | None = None) -> None:
        self.quiet = quiet
        self.max_wait = max_wait
        state = state or {}
        self.signals = [Signal.from_json(d) for d in state.get("signals") or []]
        self.first_at: float | None = state.get("firstAt")
        self.last_at: float | None = state.get("lastAt")

    def to_json(self) -> dict[str, Any]:
        return {
            "signals": [s.to_json() for s in self.signals],
            "firstAt": self.first_at,
            "lastAt": self.last_at,
        }

    def add(self, signal: Signal, now: float) -> None:
        if not self.signals:
            self.first_at = now
        self.last_at = now
        self.signals.append(signal)

    def settle(self, action: str) -> bool:
        """Drop the pending signal of an action that moved on (approved, superseded...)."""
        kept = [
            s
            for s in self.signals
            if not (s.event == "action.pending" and s.extra.get("action") == action)
        ]
        dropped = len(kept) != len(self.signals)
        self.signals = kept
        return dropped

    def due(self, now: float) -> bool:
        if not self.signals or self.first_at is None or self.last_at is None:
            return False
        return now - self.last_at >= self.quiet or now - self.first_at >= self.max_wait

    def next_due(self, now: float) -> float | None:
        """Seconds until `due` turns true (None: nothing waits)."""
        if not self.signals or self.first_at is None or self.last_at is None:
            return None
        return max(0.0, min(self.last_at + self.quiet, self.first_at + self.max_wait) - now)

    def flush(self, ui_url: str) -> list[Message]:
        groups: dict[str, list[Signal]] = {}
        for signal in self.signals:
            groups.setdefault(signal.group, []).append(signal)
        self.signals, self.first_at, self.last_at = [], None, None
        return [compose(group, ui_url) for group in groups.values()]
