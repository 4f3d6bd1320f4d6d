"""Compaction benchmark: a 30-day event log, its size before and after, and the seconds.

Generates N events (default 1,500,000, about 200 bytes each: the mix of
`observer_bench.py`, observations, conditions, missing resources and the
audit trail) over 30 UTC days and 3 producers, folds it once with the
observer's `WorldBuilder` (so a durable record covers it), then, `--runs`
times on a fresh hard-linked copy of the log: runs `compact` with the
default policy (every generated day is past 90 days), and prints the log's
size before and after, the seconds the compaction took, and how fast a
reader from scratch (`LogReader`, as a rebuild reads) gets through the
plain and the compressed log. `--levels` also compresses one day at other
zstd levels (ratio and MB/s), which is how `compaction.LEVEL` was chosen.

Usage: .venv/bin/python hack/bench/compaction.py [--events N] [--runs R]
       [--levels 3,9,19] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from observer_bench import generate

from reconciler.events.reader import LogReader
from reconciler.observer import compaction
from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot

DAYS = 30
MB = 1024 * 1024


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _read_all(root: RuntimeRoot) -> tuple[int, float]:
    t0 = time.perf_counter()
    events = sum(len(b.events) for b in LogReader(root).batches())
    return events, time.perf_counter() - t0


def _copy(template: Path, target: Path) -> None:
    """Events hard-linked (compaction unlinks, never writes, a .jsonl); state copied."""
    target.mkdir(parents=True)
    subprocess.run(["cp", "-al", str(template / "events"), str(target / "events")], check=True)
    shutil.copytree(template / "state", target / "state")


def _levels(template: Path, levels: list[int]) -> None:
    day = sorted((template / "events").iterdir())[0]
    data = b"".join(p.read_bytes() for p in sorted(day.glob("*.jsonl")))
    print(f"\none day ({len(data) / MB:.1f} MB), zstd level: ratio, compress MB/s")
    for level in levels:
        t0 = time.perf_counter()
        packed = zstandard.ZstdCompressor(level=level, write_checksum=True).compress(data)
        took = time.perf_counter() - t0
        print(f"  level {level:2d}: {len(data) / len(packed):5.1f}x  {len(data) / MB / took:6.1f}")


class _Stalls:
    """A thread that sleeps 1 ms at a time and records the longest wake-up delay:
    how long compaction (in another thread, as in the observer) holds the GIL."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            time.sleep(0.001)
            self.worst = max(self.worst, time.perf_counter() - t0 - 0.001)

    def __enter__(self) -> _Stalls:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _range(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    return f"median {med:{fmt}} (range {min(values):{fmt}}-{max(values):{fmt}})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_500_000)
    parser.add_argument("--resources", type=int, default=25_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--levels", default="3,6,9,19")
    parser.add_argument("--level", type=int, default=compaction.LEVEL)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    compaction.LEVEL = args.level
    base = Path(tempfile.mkdtemp(prefix="compaction-bench-", dir=args.dir))
    try:
        template = RuntimeRoot(base / "template").ensure()
        t0 = time.perf_counter()
        size = generate(template.path, args.events, args.resources, days=DAYS)
        print(
            f"log: {args.events:,} events over {DAYS} days, {size / MB:.1f} MB "
            f"({size / MB / DAYS:.1f} MB a day), generated in {time.perf_counter() - t0:.1f} s"
        )
        builder = WorldBuilder(template)
        t0 = time.perf_counter()
        builder.open()
        builder.sync()
        print(
            f"folded once (the durable record compaction needs) in {time.perf_counter() - t0:.1f} s"
        )
        plain_events, plain_s = _read_all(template)
        with _Stalls() as idle:
            time.sleep(3.0)  # the same measure with nothing running: the machine's own noise
        seconds, after, read_s, stalls = [], [], [], []
        before = _du(template.events)
        for run in range(args.runs):
            root = RuntimeRoot(base / f"run-{run}")
            _copy(template.path, root.path)
            with _Stalls() as stall:
                t0 = time.perf_counter()
                report = compaction.compact(root, compaction.RetentionPolicy())
                seconds.append(time.perf_counter() - t0)
            stalls.append(stall.worst * 1000)
            assert len(report.days) == DAYS and not report.skipped, report.lines()[-3:]
            after.append(_du(root.events))
            events, took = _read_all(root)
            assert events == plain_events, (events, plain_events)
            read_s.append(took)
            shutil.rmtree(root.path)
        print(f"\ncompaction of {DAYS} days at zstd level {compaction.LEVEL}, {args.runs} runs:")
        print(
            f"  log size: {before / MB:.1f} MB -> {statistics.median(after) / MB:.1f} MB "
            f"({before / statistics.median(after):.1f}x smaller)"
        )
        rate = before / MB / statistics.median(seconds)
        print(f"  seconds: {_range(seconds, '.1f')}; {rate:.0f} MB/s")
        print(
            f"  longest stall of another thread meanwhile: {_range(stalls, '.1f')} ms "
            f"(3 s with nothing running: {idle.worst * 1000:.1f} ms)"
        )
        print(
            f"  read back from scratch (LogReader): plain {plain_events / plain_s:,.0f} events/s, "
            f"compressed {_range([plain_events / s for s in read_s], ',.0f')} events/s"
        )
        if args.levels:
            _levels(template.path, [int(x) for x in args.levels.split(",")])
    finally:
        shutil.rmtree(base, ignore_errors=True)
        os.sync()


if __name__ == "__main__":
    main()
