"""Observer benchmark: full rebuild and incremental tick on a 1,000,000-event log.

Generates N events (default 1,000,000, ~200 bytes each) across 10 UTC days
and 3 producers over 25,000 resources, then prints: full-rebuild time and
events/s (world documents written included), the cost of one incremental
tick with 1,000 new events on top of that log, the world folder's size, and
the peak memory of the rebuild and of an observer holding the whole world.
Each measurement runs in a fresh subprocess so peak RSS is its own. The
rebuild lines also give the process's CPU time: on a loaded machine the wall
time says more about the other processes than about the fold.

Usage: .venv/bin/python hack/bench/observer_bench.py [--events N] [--resources R]
       [--dir DIR]   (default: a temporary folder on the same disk as /tmp)
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

DAYS = 10
PRODUCERS = ("observer", "executor", "supervisor")
DAY0 = 1_714_521_600 * 10**9  # 2024-05-01T00:00:00Z in ns


def _event(ns: int, producer: str, seq: int, rng: random.Random, resources: int) -> bytes:
    from reconciler.events.log import _iso, new_event_id

    name = f"app-{rng.randrange(resources):05d}"
    roll = rng.random()
    ref: dict[str, str] | None = {"kind": "Container", "name": name}
    if producer == "executor" or roll < 0.05:
        etype = "action.succeeded" if roll < 0.5 else "action.started"
        data = {"action": f"a{seq:010d}", "operation": "update", "actor": "ops", "state": "x"}
    elif roll < 0.10:
        etype, data = "observed.missing", {"reason": "gone"}
    elif roll < 0.12:
        etype = "resource.condition"
        data = {"type": "Flapping", "status": "False", "reason": "Stable", "message": ""}
    else:
        etype = "observed.resource"
        data = {
            "spec": {
                "node": "local",
                "image": f"local/busybox:{seq % 7}",
                "restartPolicy": "always",
            },
            "health": "Healthy",
        }
    event = {
        "id": new_event_id(producer, ns, seq),
        "ts": _iso(ns),
        "source": producer,
        "type": etype,
        "ref": ref,
        "data": data,
    }
    return orjson.dumps(event) + b"\n"


def generate(root: Path, total: int, resources: int, start_day: int = 0, days: int = DAYS) -> int:
    """Write `total` events, spread over `days` days and the producers; return bytes."""
    rng = random.Random(42 + start_day + total)
    per_day = total // days
    size = 0
    for d in range(start_day, start_day + days):
        day_ns = DAY0 + d * 86_400 * 10**9
        folder = root / "events" / time.strftime("%Y-%m-%d", time.gmtime(day_ns / 1e9))
        folder.mkdir(parents=True, exist_ok=True)
        handles = {p: open(folder / f"{p}.jsonl", "ab") for p in PRODUCERS}  # noqa: SIM115
        step = 86_000 * 10**9 // max(per_day, 1)
        for i in range(per_day):
            producer = PRODUCERS[i % len(PRODUCERS)]
            line = _event(day_ns + i * step, producer, d * per_day + i, rng, resources)
            handles[producer].write(line)
            size += len(line)
        for fh in handles.values():
            fh.close()
    return size


def _timed_tick(folder: Any, root: str, events: int, resources: int, day: int) -> tuple[float, Any]:
    """Append `events` over `resources` as day `day`, then time one tick."""
    generate(Path(root), events, resources, start_day=day, days=1)
    t0 = time.perf_counter()
    result = folder.tick()
    return time.perf_counter() - t0, result


def _measure(mode: str, root: str) -> None:
    """Subprocess body: one rebuild or one tick, printing JSON figures."""
    from reconciler.observer.world_builder import WorldBuilder
    from reconciler.runtime_root import RuntimeRoot

    folder = WorldBuilder(RuntimeRoot(Path(root)))
    figures: dict[str, float] = {}
    if mode == "rebuild":
        t0, c0 = time.perf_counter(), time.process_time()
        result = folder.rebuild()
        figures["seconds"] = time.perf_counter() - t0
        figures["cpu"] = time.process_time() - c0
        figures["events"] = result.events
        figures["written"] = result.written
        figures["fold"] = result.fold_seconds
        figures["write"] = result.write_seconds
        figures["documents"] = len(folder.state.docs)
    else:
        t0 = time.perf_counter()
        how = folder.open()
        figures["open_seconds"] = time.perf_counter() - t0
        assert how.startswith("resumed"), how
        # 1,000 events over all 25,000 resources: nearly every document is
        # rewritten for the first time since the rebuild, so its twin is created.
        seconds, result = _timed_tick(folder, root, 1000, 25_000, DAYS)
        figures["seconds"] = seconds
        figures["events"] = result.events
        figures["written"] = result.written
        figures["fold"] = result.fold_seconds
        # Steady state: 1,000 events over 1,000 resources whose twins exist
        # (5,000 events first give nearly all of those 1,000 a twin).
        _timed_tick(folder, root, 5000, 1000, DAYS + 1)
        steady = []
        for k in range(5):
            seconds, result = _timed_tick(folder, root, 1000, 1000, DAYS + 2 + k)
            steady.append((seconds, result.written, result.fold_seconds))
        steady.sort()
        figures["steady_seconds"], figures["steady_written"], figures["steady_fold"] = steady[2]
        figures["steady_max"] = steady[-1][0]
        t0 = time.perf_counter()
        folder.sync()
        figures["sync_seconds"] = time.perf_counter() - t0
        seconds, result = _timed_tick(folder, root, 1000, 50, DAYS + 7)
        figures["hot_seconds"] = seconds
        figures["hot_written"] = result.written
        figures["documents"] = len(folder.state.docs)
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def _run(mode: str, root: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", mode, str(root)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--resources", type=int, default=25_000)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--measure", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(*args.measure)
        return
    base = Path(tempfile.mkdtemp(prefix="observer-bench-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        size = generate(base, args.events, args.resources)
        print(
            f"generated {args.events:,} events ({size / 1e6:.0f} MB) in {DAYS * 3} files "
            f"over {args.resources:,} resources in {time.perf_counter() - t0:.1f} s ({base})"
        )
        fresh = _run("rebuild", base)
        print(
            f"full rebuild, empty world:      {fresh['seconds']:.2f} s "
            f"({fresh['events'] / fresh['seconds']:,.0f} events/s, "
            f"{fresh['written']:,.0f} documents written; fold {fresh['fold']:.2f} s, "
            f"writes {fresh['write']:.2f} s; CPU {fresh['cpu']:.2f} s), "
            f"peak RSS {fresh['peak_rss_mb']:.0f} MB"
        )
        again = _run("rebuild", base)
        print(
            f"full rebuild, world on disk:    {again['seconds']:.2f} s "
            f"({again['events'] / again['seconds']:,.0f} events/s, "
            f"{again['written']:,.0f} documents rewritten; fold {again['fold']:.2f} s, "
            f"compare {again['write']:.2f} s; CPU {again['cpu']:.2f} s), "
            f"peak RSS {again['peak_rss_mb']:.0f} MB"
        )
        tick = _run("tick", base)
        print(
            f"incremental tick, 1,000 events over 25,000 resources (first rewrite since the "
            f"rebuild, twins created): {tick['seconds'] * 1000:.1f} ms "
            f"({tick['written']:,.0f} documents written, fold {tick['fold'] * 1000:.1f} ms; "
            f"resume took {tick['open_seconds']:.2f} s)"
        )
        print(
            f"incremental tick, 1,000 events over 1,000 resources (steady state, median of 5): "
            f"{tick['steady_seconds'] * 1000:.1f} ms, max {tick['steady_max'] * 1000:.1f} ms "
            f"({tick['steady_written']:,.0f} documents "
            f"written, fold {tick['steady_fold'] * 1000:.1f} ms); then sync (syncfs + checkpoint) "
            f"{tick['sync_seconds'] * 1000:.1f} ms"
        )
        print(
            f"incremental tick, 1,000 events on 50 resources: {tick['hot_seconds'] * 1000:.1f} ms "
            f"({tick['hot_written']:,.0f} documents written)"
        )
        print(
            f"observer holding {tick['documents']:,.0f} resources: peak RSS "
            f"{tick['peak_rss_mb']:.0f} MB"
        )
        print(
            f"world folder: {_du(base / 'world') / 1e6:.1f} MB, "
            f"{sum(1 for _ in (base / 'world').rglob('*.json')):,} documents"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
