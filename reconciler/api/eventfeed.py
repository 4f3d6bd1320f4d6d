"""The UI's event feed: an in-memory tail of the event log, read incrementally.

Tails every `ROOT/events/YYYY-MM-DD/<producer>.jsonl` file from the offset it
last reached, takes complete lines only (a torn last line waits for its
writer), skips corrupt lines (the observer quarantines them) and keeps the
newest `capacity` events sorted by id. At start it reads the newest days
first and stops once the tail is full, so a large log does not delay the
UI. Called by `reconciler.api.views.RuntimeViews` on every refresh; the
filtered, cursor-paginated queries serve `GET /api/events`, the dashboard's
recent events and the resource and action pages. The events page reads
the whole retained log instead (reconciler/api/eventbrowse.py).
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass, field
from typing import Any

import orjson

from reconciler.runtime_root import RuntimeRoot

START_WINDOW = 16 * 1024 * 1024  # at start, read at most this much of each file's end


@dataclass(frozen=True)
class EventQuery:
    """Filters of `GET /api/events`; `before`/`after` are event-id cursors."""

    type: str | None = None
    kind: str | None = None
    name: str | None = None
    source: str | None = None
    action: str | None = None
    before: str | None = None
    after: str | None = None
    limit: int = 100

    def matches(self, event: dict[str, Any]) -> bool:
        if self.type and not str(event.get("type", "")).startswith(self.type):
            return False
        if self.source and event.get("source") != self.source:
            return False
        ref = event.get("ref") or {}
        if self.kind and ref.get("kind") != self.kind:
            return False
        if self.name and ref.get("name") != self.name:
            return False
        data = event.get("data") or {}
        return not (self.action and data.get("action") != self.action)


@dataclass
class EventFeed:
    """The newest `capacity` events of the log, oldest first."""

    root: RuntimeRoot
    capacity: int = 20000
    _snapshot: tuple[list[dict[str, Any]], list[str]] = field(default_factory=lambda: ([], []))
    total_read: int = 0
    corrupt: int = 0
    _offsets: dict[str, int] = field(default_factory=dict)

    def _files(self) -> list[str]:
        try:
            days = sorted(
                (d for d in os.listdir(self.root.events) if not d.startswith(".")), reverse=True
            )
        except FileNotFoundError:
            return []
        out: list[str] = []
        for day in days:
            folder = os.path.join(self.root.events, day)
            try:
                names = os.listdir(folder)
            except (FileNotFoundError, NotADirectoryError):
                continue
            out.extend(os.path.join(folder, n) for n in sorted(names) if n.endswith(".jsonl"))
        return out

    def _read_new(self, path: str, first_time: bool) -> list[dict[str, Any]]:
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            return []
        start = self._offsets.get(path)
        if start is None:
            start = max(0, size - START_WINDOW) if first_time else 0
        if size <= start:
            return []
        with open(path, "rb") as fh:
            fh.seek(start)
            chunk = fh.read(size - start)
        end = chunk.rfind(b"\n")
        if end < 0:
            return []  # only a torn line so far
        skip_partial = start > 0 and path not in self._offsets
        self._offsets[path] = start + end + 1
        lines = chunk[: end + 1].split(b"\n")
        if skip_partial:
            lines = lines[1:]
        out = []
        for line in lines:
            if not line.strip():
                continue
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                self.corrupt += 1
                continue
            if isinstance(event, dict) and isinstance(event.get("id"), str):
                out.append(event)
            else:
                self.corrupt += 1
        return out

    def poll(self) -> int:
        """Read what was appended since the last call; return how many new events."""
        first_time = not self._offsets
        fresh: list[dict[str, Any]] = []
        for path in self._files():
            if first_time and len(fresh) >= self.capacity and path not in self._offsets:
                # older days at start: remember where they end, do not load them
                self._offsets[path] = os.stat(path).st_size
                continue
            fresh.extend(self._read_new(path, first_time))
        if not fresh:
            return 0
        self.total_read += len(fresh)
        fresh.sort(key=lambda e: e["id"])
        # Copy on write: queries running in other threads keep their snapshot.
        if not self.ids or fresh[0]["id"] > self.ids[-1]:
            events = [*self.events, *fresh]
        else:  # another producer's events landed between ours: merge
            events = sorted([*self.events, *fresh], key=lambda e: e["id"])
        events = events[-self.capacity :]
        self._snapshot = (events, [e["id"] for e in events])
        return len(fresh)

    @property
    def events(self) -> list[dict[str, Any]]:
        return self._snapshot[0]

    @property
    def ids(self) -> list[str]:
        return self._snapshot[1]

    def query(self, q: EventQuery) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first; returns the page and the `before` cursor of the next page."""
        events, ids = self._snapshot
        hi = bisect.bisect_left(ids, q.before) if q.before else len(ids)
        lo = bisect.bisect_right(ids, q.after) if q.after else 0
        page: list[dict[str, Any]] = []
        i = hi - 1
        while i >= lo and len(page) <= q.limit:
            if q.matches(events[i]):
                page.append(events[i])
            i -= 1
        if len(page) > q.limit:
            del page[q.limit :]
            return page, page[-1]["id"]
        return page, None

    def for_ref(self, kind: str, name: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.query(EventQuery(kind=kind, name=name, limit=limit))[0]

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.events[-limit:][::-1]
