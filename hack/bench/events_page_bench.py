"""Events page benchmark: pages of a 1,000,000-event log, by day and cursor.

Generates N events (default 1,000,000) over 10 UTC days, 3 producers and
25,000 resources (one day compressed with zstandard, as compaction leaves
it), then times `EventBrowser.page` (what `GET /events` runs, minus the
template): the newest page, pages older and newer from random cursors,
a type filter, a rare free-text filter (which stops at the scan budget),
a time range inside a day, and the first and later pages inside the
compressed day; and `DiskUsage.state()` (what /summary and every page pay
for the disk figures). Each figure is the median and range of `--runs`
runs (distinct random cursors for the cursor cases).

Usage: .venv/bin/python hack/bench/events_page_bench.py [--events N] [--runs R] [--dir DIR]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import orjson
import zstandard

from reconciler.api.disk import DiskUsage
from reconciler.api.eventbrowse import BrowseQuery, EventBrowser, time_bound
from reconciler.events.log import _iso, new_event_id
from reconciler.runtime_root import RuntimeRoot

DAYS = 10
PRODUCERS = ("observer", "executor", "supervisor")
DAY0 = 1_714_521_600 * 10**9  # 2024-05-01T00:00:00Z in ns
TYPES = ("observed.resource", "observed.listing", "action.done", "action.failed", "service.failed")


def generate(root: RuntimeRoot, count: int, resources: int) -> list[str]:
    rng = random.Random(7)
    step = DAYS * 86400 * 10**9 // count
    ids: list[str] = []
    out: dict[Path, list[bytes]] = {}
    seqs = dict.fromkeys(PRODUCERS, 0)
    for i in range(count):
        ns = DAY0 + i * step + rng.randrange(step)
        producer = PRODUCERS[i % 3]
        seqs[producer] += 1
        event_id = new_event_id(producer, ns, seqs[producer])
        ids.append(event_id)
        ts = _iso(ns)
        event = {
            "id": event_id,
            "ts": ts,
            "source": producer,
            "type": TYPES[rng.randrange(len(TYPES))],
            "ref": {"kind": "Container", "name": f"app-{rng.randrange(resources):05d}"},
            "data": {"healthy": rng.random() < 0.9, "restarts": rng.randrange(5), "image": "x:1"},
        }
        out.setdefault(root.events / ts[:10] / f"{producer}.jsonl", []).append(
            orjson.dumps(event) + b"\n"
        )
    for path, lines in out.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(lines))
    return ids


def compress_day(root: RuntimeRoot, day: str) -> None:
    for path in sorted((root.events / day).glob("*.jsonl")):
        Path(f"{path}.zst").write_bytes(zstandard.ZstdCompressor().compress(path.read_bytes()))
        path.unlink()


def measure(label: str, runs: int, make: Callable[[int], Callable[[], object]]) -> None:
    times = []
    for run in range(runs):
        call = make(run)
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    print(
        f"{label:<48} median {statistics.median(times):8.1f} ms"
        f"   range {min(times):7.1f} - {max(times):7.1f} ms   ({runs} runs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--resources", type=int, default=25_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="events-bench-", dir=args.dir))
    try:
        root = RuntimeRoot(folder / "root").ensure()
        started = time.perf_counter()
        ids = generate(root, args.events, args.resources)
        days = sorted(p.name for p in root.events.iterdir())
        size = sum(p.stat().st_size for p in root.events.rglob("*") if p.is_file())
        zday = days[3]
        compress_day(root, zday)
        print(
            f"log: {len(ids):,} events, {len(days)} days, {size / 1e6:.0f} MB "
            f"({zday} compressed), generated in {time.perf_counter() - started:.1f} s"
        )
        rng = random.Random(11)
        browser = EventBrowser(root)
        in_zday = [i for i in ids if _iso(int(i[:19]))[:10] == zday]
        plain = [i for i in ids if _iso(int(i[:19]))[:10] != zday]

        def cursor(
            pool: list[str], query: Callable[[str], BrowseQuery], reader: EventBrowser = browser
        ) -> Callable[[int], Callable[[], object]]:
            return lambda _: partial(reader.page, query(rng.choice(pool)))

        measure("newest page (100)", args.runs, lambda _: partial(browser.page, BrowseQuery()))
        measure(
            "older page from a random cursor",
            args.runs,
            cursor(plain, lambda c: BrowseQuery(before=c)),
        )
        measure(
            "newer page from a random cursor",
            args.runs,
            cursor(plain, lambda c: BrowseQuery(after=c)),
        )
        measure(
            "type filter 'ACTION.FAIL' from a random cursor",
            args.runs,
            cursor(plain, lambda c: BrowseQuery(type="ACTION.FAIL", before=c)),
        )
        measure(
            "resource filter 'app-00042' (rare)",
            args.runs,
            lambda _: partial(browser.page, BrowseQuery(resource="app-00042")),
        )
        measure(
            "text filter matching nothing (whole log)",
            args.runs,
            lambda _: partial(browser.page, BrowseQuery(text="no-such-text")),
        )
        since, until = time_bound(f"{days[6]}T10:00"), time_bound(f"{days[6]}T11:00")
        measure(
            "time range: one hour of day 7",
            args.runs,
            lambda _: partial(browser.page, BrowseQuery(since=since, until=until)),
        )

        def first_zst(run: int) -> Callable[[], object]:
            fresh = EventBrowser(root)  # an empty cache: decompress the day
            return cursor(in_zday, lambda c: BrowseQuery(before=c), fresh)(run)

        measure("compressed day: first page (decompress)", args.runs, first_zst)
        measure(
            "compressed day: next pages (cached)",
            args.runs,
            cursor(in_zday, lambda c: BrowseQuery(before=c)),
        )
        disk = DiskUsage(root)
        measure("disk figures (cached log size)", args.runs, lambda _: disk.state)
        measure(
            "disk figures (log size re-listed)",
            args.runs,
            lambda _: lambda: DiskUsage(root).state(),
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
