"""The events page's reader over real log files: every retained day, both ways.

A log of several days and producers is written the way `EventLog` writes
it (one file per producer and day, ids in time order), one day compressed
with zstandard as compaction leaves it, with a torn last line and a corrupt
line. Paging older from the newest event and then newer again must visit
exactly the events a brute-force sort gives, with and without the loose
filters and the time range; a hypothesis test varies sizes and page lengths.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.api.eventbrowse import BrowseQuery, EventBrowser, id_day, time_bound
from reconciler.events.log import new_event_id
from reconciler.runtime_root import RuntimeRoot

DAY0 = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1e9)
HOUR = 3600 * 10**9
TYPES = ["observed.resource", "action.done", "action.failed", "service.failed", "observed.missing"]


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_log(
    root: RuntimeRoot,
    count: int,
    *,
    days: int = 3,
    producers: tuple[str, ...] = ("observer", "executor", "ui"),
    compress: tuple[int, ...] = (),
    seed: int = 1,
) -> list[dict[str, Any]]:
    """`count` events spread over `days` days; returns them in id order."""
    rng = random.Random(seed)
    span = days * 24 * HOUR
    stamps = sorted(rng.sample(range(DAY0, DAY0 + span), count))
    events: list[dict[str, Any]] = []
    seqs = dict.fromkeys(producers, 0)
    files: dict[Path, list[bytes]] = {}
    for ns in stamps:
        producer = rng.choice(producers)
        seqs[producer] += 1
        name = f"Web-{rng.randrange(20)}"
        event = {
            "id": new_event_id(producer, ns, seqs[producer]),
            "ts": _iso(ns),
            "source": producer,
            "type": rng.choice(TYPES),
            "ref": {"kind": "Container", "name": name},
            "data": {"healthy": rng.random() < 0.5, "note": f"Needle{rng.randrange(5)}"},
        }
        events.append(event)
        path = root.events / event["ts"][:10] / f"{producer}.jsonl"
        files.setdefault(path, []).append(orjson.dumps(event) + b"\n")
    for path, lines in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(lines))
    for index in compress:
        day = _iso(DAY0 + index * 24 * HOUR)[:10]
        for path in sorted((root.events / day).glob("*.jsonl")):
            packed = zstandard.ZstdCompressor().compress(path.read_bytes())
            Path(f"{path}.zst").write_bytes(packed)
            path.unlink()
    return sorted(events, key=lambda e: e["id"])


def walk_older(browser: EventBrowser, q: BrowseQuery) -> list[str]:
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10_000):
        page = browser.page(BrowseQuery(**{**q.__dict__, "before": cursor, "after": None}))
        seen.extend(e["id"] for e in page.events)
        if page.older is None:
            return seen
        cursor = page.older
    raise AssertionError("paging older did not end")


def walk_newer(browser: EventBrowser, q: BrowseQuery, start: str) -> list[str]:
    seen: list[str] = []
    cursor = start
    for _ in range(10_000):
        page = browser.page(BrowseQuery(**{**q.__dict__, "after": cursor, "before": None}))
        ids = [e["id"] for e in page.events]
        assert ids == sorted(ids, reverse=True)  # a page is newest first
        seen.extend(reversed(ids))
        if page.newer is None:
            return seen
        cursor = page.newer
    raise AssertionError("paging newer did not end")


def test_pages_visit_every_event_once_both_ways_with_a_compressed_day(
    runtime_root: RuntimeRoot,
) -> None:
    events = write_log(runtime_root, 900, compress=(1,))
    assert list((runtime_root.events / "2026-03-02").glob("*.jsonl.zst"))
    assert not list((runtime_root.events / "2026-03-02").glob("*.jsonl"))
    browser = EventBrowser(runtime_root)
    ids = [e["id"] for e in events]
    older = walk_older(browser, BrowseQuery(limit=37))
    assert older == ids[::-1]
    newer = walk_newer(browser, BrowseQuery(limit=41), "0" * 19)
    assert newer == ids
    first = browser.page(BrowseQuery(limit=10))
    assert first.newer is None and first.older == ids[-10]
    assert [e["id"] for e in first.events] == ids[-10:][::-1]
    assert first.events[0] == events[-1]  # the whole event, data included


def test_loose_filters_and_time_range(runtime_root: RuntimeRoot) -> None:
    events = write_log(runtime_root, 3000, compress=(0,))
    browser = EventBrowser(runtime_root)
    since = time_bound("2026-03-01T18:00")
    until = time_bound("2026-03-02T09:30:00Z")
    assert since is not None and until is not None
    q = BrowseQuery(type="ACTION.", resource="web-1", text="needle3", since=since, until=until)

    def expected(e: dict[str, Any]) -> bool:
        return (
            "action." in e["type"]
            and "web-1" in f"container/{e['ref']['name']}".lower()
            and "needle3" in orjson.dumps(e).decode().lower()
            and since <= e["id"] < until
        )

    want = [e["id"] for e in events if expected(e)]
    assert len(want) > 3
    assert walk_older(browser, BrowseQuery(**{**q.__dict__, "limit": 2})) == want[::-1]
    assert walk_newer(browser, BrowseQuery(**{**q.__dict__, "limit": 3}), "0" * 19) == want
    # A byte budget of one day: each page reads one day at most and hands back its edge.
    daily = EventBrowser(runtime_root, byte_budget=1)
    first = daily.page(BrowseQuery(type="action.", resource="web-1", text="needle3"))
    assert first.stopped_at is not None and first.older == first.stopped_at
    assert first.stopped_at == f"{int(DAY0 + 2 * 24 * HOUR):019d}"  # the start of the last day
    assert walk_older(daily, BrowseQuery(**{**q.__dict__, "limit": 50})) == want[::-1]
    assert walk_newer(daily, BrowseQuery(**{**q.__dict__, "limit": 50}), "0" * 19) == want


def test_torn_and_corrupt_lines_are_skipped_and_a_budget_hands_back_a_cursor(
    runtime_root: RuntimeRoot,
) -> None:
    events = write_log(runtime_root, 300, days=1)
    path = runtime_root.events / "2026-03-01" / "observer.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines.insert(5, b"{not json at all")
    path.write_bytes(b"\n".join(lines) + b'{"id":"9999')  # a torn last line: not read
    browser = EventBrowser(runtime_root, scan_budget=50)
    # "observer" is in the raw lines (ids, sources) but in no resource: decoded, then refused
    page = browser.page(BrowseQuery(resource="observer", limit=10))
    assert page.events == [] and page.scanned == 50
    assert page.older is not None and page.older == page.stopped_at
    assert browser.page(BrowseQuery(resource="observer", before=page.older)).scanned == 50
    # words in no block at all: every block passed over by its bytes, the whole day in one page
    nothing = browser.page(BrowseQuery(text="no such text anywhere", limit=10))
    assert nothing.events == [] and nothing.older is None
    assert nothing.scanned == 0 and nothing.skipped_bytes == sum(
        p.stat().st_size for p in (runtime_root.events / "2026-03-01").iterdir()
    ) - len(b'{"id":"9999')
    seen = walk_older(EventBrowser(runtime_root), BrowseQuery(limit=25))
    assert seen == [e["id"] for e in events][::-1]
    assert EventBrowser(runtime_root).page(BrowseQuery(limit=500)).corrupt == 1


def test_a_cursor_finds_its_place_without_reading_the_day(
    runtime_root: RuntimeRoot, monkeypatch: Any
) -> None:
    events = write_log(runtime_root, 5000, days=1, producers=("observer",))
    browser = EventBrowser(runtime_root)
    from reconciler.api import eventbrowse

    reads: list[int] = []
    real = eventbrowse._Source.read

    def counting(self: Any, start: int, end: int) -> bytes:
        reads.append(end - start)
        return real(self, start, end)

    monkeypatch.setattr(eventbrowse._Source, "read", counting)
    middle = events[2500]["id"]
    page = browser.page(BrowseQuery(before=middle, limit=20))
    assert [e["id"] for e in page.events] == [e["id"] for e in events[2480:2500]][::-1]
    size = (runtime_root.events / "2026-03-01" / "observer.jsonl").stat().st_size
    assert sum(reads) < size / 4, (sum(reads), size)
    assert id_day(middle) == "2026-03-01"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    count=st.integers(0, 250),
    days=st.integers(1, 4),
    limit=st.integers(1, 60),
    seed=st.integers(0, 10_000),
    compressed=st.booleans(),
)
def test_paging_matches_a_full_sort(
    tmp_path_factory: Any, count: int, days: int, limit: int, seed: int, compressed: bool
) -> None:
    root = RuntimeRoot(tmp_path_factory.mktemp("log")).ensure()
    events = write_log(root, count, days=days, seed=seed, compress=(0,) if compressed else ())
    ids = [e["id"] for e in events]
    browser = EventBrowser(root)
    assert walk_older(browser, BrowseQuery(limit=limit)) == ids[::-1]
    assert walk_newer(browser, BrowseQuery(limit=limit), "0" * 19) == ids
    if ids:
        pivot = ids[len(ids) // 2]
        page = browser.page(BrowseQuery(before=pivot, limit=limit))
        assert [e["id"] for e in page.events] == [i for i in ids if i < pivot][::-1][:limit]
