"""The events page's reader: pages through the whole retained log, by day and cursor.

The in-memory tail (`reconciler.api.eventfeed`) holds only the newest
events; this reads the files themselves, so every retained day is
reachable. A page is found without reading the log from its start: event
ids begin with the event's time in nanoseconds and each producer's file
of a day is in id order, so a cursor (an event id, or a time bound of the
range filter) picks its day at once and its place in each file of that day
by bisecting byte offsets (a few reads per file, not a scan). From there
the day's files are read backwards (older pages) or forwards (newer
pages) in blocks and merged by id, moving to the previous or next day
when one runs out. A compressed day (`<producer>.jsonl.zst`, from
compaction) is decompressed once through `read_log_bytes` and kept in a
small cache, then read the same way. Filters are loose: type, resource
(`kind/name`) and free text match case-insensitively anywhere; a block of
the file missing one of the filter's words is passed over by its bytes,
and a scan that tests many lines without filling the page stops after a
budget and hands back a cursor to go on from. Torn last lines and corrupt lines are skipped (the
observer quarantines them). Called by the events page
(reconciler/api/controllers/pages.py).
"""

from __future__ import annotations

import heapq
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from reconciler.events.reader import read_log_bytes
from reconciler.runtime_root import RuntimeRoot

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FILE = re.compile(r"^([a-z0-9][a-z0-9.-]{0,62})\.jsonl(\.zst)?$")
_ID = re.compile(r"^\d{19}(-[a-z0-9.-]{1,70}-\d{1,12})?$")
BLOCK = 64 * 1024
FILTER_BLOCK = 512 * 1024  # a filtered scan mostly passes blocks over: take bigger ones
SCAN_BUDGET = 100_000  # lines tested per page before handing back a cursor (~0.5 s)
BYTE_BUDGET = 64 << 20  # whole days read per page before handing back a cursor (a day's end)
CACHE_DAYS = 4  # decompressed compressed files kept


def id_day(event_id: str) -> str:
    """The UTC day of an event id (its first 19 digits are nanoseconds)."""
    return datetime.fromtimestamp(int(event_id[:19]) / 1e9, UTC).strftime("%Y-%m-%d")


def day_bound(day: str, older: bool) -> str:
    """The id-shaped cursor at a day's edge: its start (going older) or its end (newer)."""
    start = int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()) * 10**9
    return f"{start:019d}" if older else f"{start + 86400 * 10**9 - 1:019d}"


def time_bound(value: str) -> str | None:
    """An id-shaped bound for a date or time ("2024-05-01", "2024-05-01T12:00"), or None."""
    value = value.strip()
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    ns = int(when.timestamp() * 1_000_000) * 1000
    return f"{max(0, ns):019d}"


def valid_cursor(value: str | None) -> str | None:
    return value if value and _ID.match(value) else None


@dataclass(frozen=True)
class BrowseQuery:
    """What the events page asks for; `before`/`after` are event-id cursors (exclusive)."""

    type: str = ""
    resource: str = ""
    text: str = ""
    source: str = ""
    since: str | None = None  # id bound: events at or after it
    until: str | None = None  # id bound: events before it
    before: str | None = None
    after: str | None = None
    limit: int = 100

    @property
    def filtered(self) -> bool:
        return bool(self.type or self.resource or self.text or self.source)

    @property
    def needles(self) -> tuple[bytes, ...]:
        """Lower-case bytes each matching line must contain (the filters' words, raw)."""
        words = [self.text, self.type, self.source, *self.resource.split("/")]
        return tuple(w.lower().encode() for w in words if w)

    def matches_raw(self, line: bytes, needles: tuple[bytes, ...]) -> bool:
        """A cheap pre-check on the raw line before it is decoded."""
        if not needles:
            return True
        lower = line.lower()
        return all(n in lower for n in needles)

    def matches(self, event: dict[str, Any]) -> bool:
        if self.type and self.type.lower() not in str(event.get("type", "")).lower():
            return False
        if self.source and self.source.lower() not in str(event.get("source", "")).lower():
            return False
        if self.resource:
            ref = event.get("ref") if isinstance(event.get("ref"), dict) else None
            shown = f"{ref.get('kind')}/{ref.get('name')}" if ref else ""
            if self.resource.lower() not in shown.lower():
                return False
        return True


@dataclass
class BrowsePage:
    """Newest first. `older`/`newer` are cursors for the next pages (None: nothing there)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    older: str | None = None
    newer: str | None = None
    scanned: int = 0  # lines decoded and tested (the budget counts these)
    skipped_bytes: int = 0  # passed over by whole blocks (a filter word missing from them)
    stopped_at: str | None = None  # the budget ran out here (the page may be short)
    corrupt: int = 0
    days: list[str] = field(default_factory=list)
    last_seen: str | None = None


class _Source:
    """One file's bytes: a plain file read with pread, or a decompressed `.zst` in memory."""

    def __init__(self, path: str, data: bytes | None) -> None:
        self.path = path
        self.data = data
        self.fd: int | None = None
        if data is None:
            self.fd = os.open(path, os.O_RDONLY)
            size = os.fstat(self.fd).st_size
        else:
            size = len(data)
        self.size = size

    def read(self, start: int, end: int) -> bytes:
        if self.data is not None:
            return self.data[start:end]
        assert self.fd is not None
        return os.pread(self.fd, end - start, start)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _has_all(line: bytes, needles: tuple[bytes, ...]) -> bool:
    lower = line.lower()
    return all(n in lower for n in needles)


def _line_id(line: bytes) -> str | None:
    if line.startswith(b'{"id":"'):
        end = line.find(b'"', 7)
        if end > 0:
            return line[7:end].decode("ascii", "replace")
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    value = event.get("id") if isinstance(event, dict) else None
    return value if isinstance(value, str) else None


class EventBrowser:
    """Reads pages of the whole retained log; safe to share between request threads."""

    def __init__(
        self,
        root: RuntimeRoot,
        *,
        scan_budget: int = SCAN_BUDGET,
        byte_budget: int = BYTE_BUDGET,
    ) -> None:
        self.root = root
        self.scan_budget = scan_budget
        self.byte_budget = byte_budget
        self._cache: OrderedDict[tuple[str, int, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    # ---- the files -----------------------------------------------------------
    def days(self) -> list[str]:
        try:
            return sorted(d for d in os.listdir(self.root.events) if _DAY.match(d))
        except FileNotFoundError:
            return []

    def _day_files(self, day: str) -> list[str]:
        """The day's files, one per producer (a plain `.jsonl` wins over a `.jsonl.zst`)."""
        folder = os.path.join(self.root.events, day)
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        chosen: dict[str, str] = {}
        for name in sorted(names, key=lambda n: n.endswith(".zst")):
            m = _FILE.match(name)
            if m and m.group(1) not in chosen:
                chosen[m.group(1)] = os.path.join(folder, name)
        return [chosen[k] for k in sorted(chosen)]

    def _open(self, path: str) -> _Source | None:
        try:
            if not path.endswith(".zst"):
                return _Source(path, None)
            st = os.stat(path)
            key = (path, st.st_ino, st.st_size)
            with self._lock:
                data = self._cache.get(key)
                if data is not None:
                    self._cache.move_to_end(key)
            if data is None:
                data = read_log_bytes(path)
                with self._lock:
                    self._cache[key] = data
                    while len(self._cache) > CACHE_DAYS:
                        self._cache.popitem(last=False)
            return _Source(path, data)
        except FileNotFoundError:
            return None  # compacted or removed meanwhile: the day is read again next page

    # ---- finding a place in a file ---------------------------------------------
    @staticmethod
    def _end(src: _Source) -> int:
        """Where the complete lines end (a torn last line is not read)."""
        pos = src.size
        while pos > 0:
            start = max(0, pos - BLOCK)
            chunk = src.read(start, pos)
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                return start + nl + 1
            pos = start
        return 0

    @staticmethod
    def _line_at(src: _Source, pos: int, end: int) -> tuple[int, int] | None:
        """The first complete line at or after `pos`: (start, stop), stop past its newline."""
        if pos > 0:
            probe = pos - 1
            while probe < end:
                chunk = src.read(probe, min(end, probe + 4096))
                nl = chunk.find(b"\n")
                if nl >= 0:
                    pos = probe + nl + 1
                    break
                probe += len(chunk)
            else:
                return None
        if pos >= end:
            return None
        stop = pos
        while stop < end:
            chunk = src.read(stop, min(end, stop + 4096))
            nl = chunk.find(b"\n")
            if nl >= 0:
                return pos, stop + nl + 1
            stop += len(chunk)
        return None

    def _bisect(self, src: _Source, bound: str, end: int) -> int:
        """The offset of the first line whose id is >= `bound` (`end` if none).

        `lo` and `hi` stay line starts: every line before `lo` is older than
        the bound, the line at `hi` (when not at the end) is not.
        """
        lo, hi = 0, end
        while lo < hi:
            found = self._line_at(src, (lo + hi) // 2, end)
            if found is None or found[0] >= hi:
                found = self._line_at(src, lo, end)  # no line starts in [mid, hi): step from lo
                if found is None:
                    return end
            start, stop = found
            line_id = _line_id(src.read(start, stop - 1))
            if line_id is None or line_id < bound:
                lo = stop
            else:
                hi = start
        return lo

    # ---- reading lines -----------------------------------------------------------
    @staticmethod
    def _skip(chunk: bytes, needles: tuple[bytes, ...], out: BrowsePage) -> bool:
        """True when no line of `chunk` can match (a needle is missing from all of it)."""
        if not needles:
            return False
        lower = chunk.lower()
        if all(n in lower for n in needles):
            return False
        out.skipped_bytes += len(chunk)
        return True

    def _backwards(
        self, src: _Source, upto: int, out: BrowsePage, needles: tuple[bytes, ...]
    ) -> Iterator[tuple[str, bytes]]:
        """(id, line) of every line ending at or before `upto`, newest first.

        A block without every filter word is passed over whole and a line
        without one is not handed on (neither can match), so a rare filter
        costs a scan of the bytes, not a decode.
        """
        pos, carry = upto, b""
        block = FILTER_BLOCK if needles else BLOCK
        while pos > 0:
            start = max(0, pos - block)
            chunk = src.read(start, pos) + carry
            if start > 0:
                nl = chunk.find(b"\n")
                carry, chunk = (chunk, b"") if nl < 0 else (chunk[:nl], chunk[nl + 1 :])
            else:
                carry = b""
            pos = start
            if not chunk or self._skip(chunk, needles, out):
                continue
            for line in reversed(chunk.split(b"\n")):
                if line.strip() and (not needles or _has_all(line, needles)):
                    line_id = _line_id(line)
                    if line_id is None:
                        out.corrupt += 1
                    else:
                        yield line_id, line

    def _forwards(
        self, src: _Source, frm: int, end: int, out: BrowsePage, needles: tuple[bytes, ...]
    ) -> Iterator[tuple[str, bytes]]:
        pos, carry = frm, b""
        block = FILTER_BLOCK if needles else BLOCK
        while pos < end:
            stop = min(end, pos + block)
            chunk = carry + src.read(pos, stop)
            nl = chunk.rfind(b"\n")
            carry, chunk = chunk[nl + 1 :], chunk[: nl + 1] if nl >= 0 else b""
            pos = stop
            if not chunk or self._skip(chunk, needles, out):
                continue
            lines = chunk.split(b"\n")
            for line in lines:
                if line.strip() and (not needles or _has_all(line, needles)):
                    line_id = _line_id(line)
                    if line_id is None:
                        out.corrupt += 1
                    else:
                        yield line_id, line
            pos = stop

    # ---- pages -----------------------------------------------------------------------
    def page(self, q: BrowseQuery) -> BrowsePage:
        if q.after is not None:
            return self._newer(q)
        return self._older(q)

    def _older(self, q: BrowseQuery) -> BrowsePage:
        """Events before the cursor (or the `until` bound, or the end), newest first."""
        upper = min((b for b in (q.before, q.until) if b), default=None)
        out = BrowsePage(days=self.days())
        days = [d for d in out.days if upper is None or d <= id_day(upper)]
        if q.since:
            days = [d for d in days if d >= id_day(q.since)]
        found = self._scan(q, days[::-1], upper, out)
        out.events = found[: q.limit]
        if len(found) > q.limit:
            out.older = found[q.limit - 1]["id"]
        elif out.stopped_at:
            out.older = out.stopped_at
        if q.before:
            out.newer = found[0]["id"] if found else q.before
        return out

    def _newer(self, q: BrowseQuery) -> BrowsePage:
        """Events after the cursor (the `after` id), read oldest first, shown newest first."""
        assert q.after is not None
        lower = max(q.after, q.since or "")
        out = BrowsePage(days=self.days())
        days = [d for d in out.days if d >= id_day(lower)]
        if q.until:
            days = [d for d in days if d <= id_day(q.until)]
        found = self._scan(q, days, lower, out)
        shown = found[: q.limit]
        out.events = shown[::-1]
        if len(found) > q.limit:
            out.newer = shown[-1]["id"]
        elif out.stopped_at:
            out.newer = out.stopped_at
        out.older = shown[0]["id"] if shown else q.after
        return out

    def _scan(
        self, q: BrowseQuery, days: list[str], bound: str | None, out: BrowsePage
    ) -> list[dict[str, Any]]:
        """Up to `limit + 1` matches, day by day from the bound's place (older: before it)."""
        found: list[dict[str, Any]] = []
        older = q.after is None
        looked = 0
        for day in days:
            sources = [s for s in map(self._open, self._day_files(day)) if s is not None]
            try:
                streams = []
                for src in sources:
                    end = self._end(src)
                    at = self._bisect(src, bound, end) if bound and day == id_day(bound) else None
                    if older:
                        upto = end if at is None else at
                        streams.append(self._backwards(src, upto, out, q.needles))
                    else:
                        streams.append(self._forwards(src, at or 0, end, out, q.needles))
                merged = heapq.merge(*streams, key=lambda p: p[0], reverse=older)
                if self._take(q, merged, found, out):
                    break
                if not (bound and day == id_day(bound)):  # the cursor's own day may be read again
                    looked += sum(src.size for src in sources)
            finally:
                for src in sources:
                    src.close()
            if looked >= self.byte_budget and day != days[-1]:
                out.stopped_at = day_bound(day, older)  # every event past it was looked at
                break
        return found

    def _take(
        self,
        q: BrowseQuery,
        merged: Iterator[tuple[str, bytes]],
        found: list[dict[str, Any]],
        out: BrowsePage,
    ) -> bool:
        """Collect matches from one day; True when the page is complete (or must stop)."""
        needles = q.needles
        for line_id, line in merged:
            if q.after is None:
                if q.since and line_id < q.since:
                    return True
            elif line_id <= q.after:
                continue
            elif q.until and line_id >= q.until:
                return True
            if out.scanned >= self.scan_budget:
                out.stopped_at = out.last_seen
                return True
            out.scanned += 1
            out.last_seen = line_id
            event = self._match(q, line, needles, out)
            if event is not None:
                found.append(event)
                if len(found) > q.limit:
                    return True
        return False

    @staticmethod
    def _match(
        q: BrowseQuery, line: bytes, needles: tuple[bytes, ...], out: BrowsePage
    ) -> dict[str, Any] | None:
        if not q.matches_raw(line, needles):
            return None
        try:
            event = orjson.loads(line)
        except orjson.JSONDecodeError:
            out.corrupt += 1
            return None
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            out.corrupt += 1
            return None
        return event if q.matches(event) else None
