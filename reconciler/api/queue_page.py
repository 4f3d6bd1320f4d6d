"""The queue page's data: pending actions filtered and paged on the server.

The pending list (sorted newest first, with each action's node and a
lower-cased search text) and the recent decisions are built once per views
version (`RuntimeViews.cached`), so a page of 50 out of thousands costs a
filter and a slice. `QueueFilter` reads the query string (`op`, `kind`,
`node`, `q`, `page`), bounded and never trusted beyond string comparison.
Each row carries a `stamp` (state and history length) the page's script
compares to patch only rows that changed (`ui/static/queue.js`). Called by
the queue page in `reconciler.api.controllers.pages`.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import msgspec

from reconciler.api import schemas as s
from reconciler.api.diff_text import change_text
from reconciler.api.services import action_row
from reconciler.api.views import RuntimeViews
from reconciler.queue.action import Action

PAGE_SIZE = 50
RECENT = 30
_MAX_TEXT = 100


@dataclass(frozen=True)
class QueueFilter:
    """What the operator narrowed the pending list to; empty strings mean "any"."""

    operation: str = ""
    kind: str = ""
    node: str = ""
    text: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, params: Mapping[str, Any]) -> QueueFilter:
        def text(key: str) -> str:
            return str(params.get(key) or "").strip()[:_MAX_TEXT]

        raw = text("page")
        page = int(raw) if raw.isdigit() else 1
        return cls(text("op"), text("kind"), text("node"), text("q"), max(1, min(page, 100000)))

    @property
    def active(self) -> bool:
        return bool(self.operation or self.kind or self.node or self.text)

    def url(self, page: int | None = None) -> str:
        """The query string of this filter (on `page`), '' when it is the default."""
        pairs = [("op", self.operation), ("kind", self.kind), ("node", self.node)]
        pairs += [("q", self.text), ("page", str(page or self.page))]
        kept = [(k, v) for k, v in pairs if v and (k, v) != ("page", "1")]
        query = urlencode(kept, quote_via=quote, safe="")
        return f"?{query}" if query else ""


@dataclass(frozen=True)
class PendingRow:
    action: s.ActionRow
    node: str
    lines: int  # of the diff, shown on its collapsed summary
    forces: bool  # the change replaces the resource
    stamp: str
    search: str = field(repr=False)


@dataclass(frozen=True)
class QueuePage:
    rows: list[PendingRow]
    total: int  # pending, before filtering
    matched: int
    page: int
    pages: int
    first: int  # 1-based position of the first row shown (0 when none)
    last: int
    operations: list[str]
    kinds: list[str]
    nodes: list[str]
    recent: list[s.ActionRow]
    filter: QueueFilter


def node_of(action: Action) -> str:
    """The node an action runs on, from its desired spec (its observed one for a delete)."""
    for spec in (action.desired, action.observed):
        if isinstance(spec, dict) and isinstance(spec.get("node"), str):
            return str(spec["node"])
    return ""


def _pending(views: RuntimeViews) -> list[PendingRow]:
    def build() -> list[PendingRow]:
        actions = sorted(
            views.queue["pending"].values(), key=lambda a: (a.created_at or "", a.id), reverse=True
        )
        rows = []
        for a in actions:
            row = action_row("pending", a)
            rows.append(
                PendingRow(
                    action=row,
                    node=node_of(a),
                    lines=a.summary.count("\n") + 1 if a.summary else 0,
                    forces=bool(a.forces_replacement),
                    stamp=f"pending:{len(a.moves)}",
                    search=f"{a.kind}/{a.name} {a.id}".lower(),
                )
            )
        return rows

    rows: list[PendingRow] = views.cached("queue:pending", build)
    return rows


def _rendered(views: RuntimeViews, row: PendingRow) -> PendingRow:
    """A shown row with its diff rendered now (`change_text`), like `homelab actions show`."""
    action = views.queue["pending"].get(row.action.id)
    if action is None:
        return row
    text = change_text(action)
    return dataclasses.replace(
        row,
        action=msgspec.structs.replace(row.action, summary=text),
        lines=text.count("\n") + 1 if text else 0,
    )


def _recent(views: RuntimeViews) -> list[s.ActionRow]:
    def build() -> list[s.ActionRow]:
        decided = (
            (a.created_at or "", a.id, state, a)
            for state, docs in views.queue.items()
            if state != "pending"
            for a in docs.values()
        )
        newest = heapq.nlargest(RECENT, decided, key=lambda t: (t[0], t[1]))
        return [action_row(state, a) for _, _, state, a in newest]

    recent: list[s.ActionRow] = views.cached("queue:recent", build)
    return recent


def _choices(rows: list[PendingRow]) -> tuple[list[str], list[str], list[str]]:
    return (
        sorted({r.action.operation for r in rows}),
        sorted({r.action.kind for r in rows}),
        sorted({r.node for r in rows if r.node}),
    )


def queue_page(views: RuntimeViews, wanted: QueueFilter) -> QueuePage:
    rows = _pending(views)
    operations, kinds, nodes = views.cached("queue:choices", lambda: _choices(rows))
    needle = wanted.text.lower()
    matched = [
        r
        for r in rows
        if (not wanted.operation or r.action.operation == wanted.operation)
        and (not wanted.kind or r.action.kind == wanted.kind)
        and (not wanted.node or r.node == wanted.node)
        and (not needle or needle in r.search)
    ]
    pages = max(1, -(-len(matched) // PAGE_SIZE))
    page = min(wanted.page, pages)
    start = (page - 1) * PAGE_SIZE
    shown = [_rendered(views, r) for r in matched[start : start + PAGE_SIZE]]
    return QueuePage(
        rows=shown,
        total=len(rows),
        matched=len(matched),
        page=page,
        pages=pages,
        first=start + 1 if shown else 0,
        last=start + len(shown),
        operations=operations,
        kinds=kinds,
        nodes=nodes,
        recent=_recent(views),
        filter=wanted,
    )
