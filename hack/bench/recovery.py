"""Recovery benchmark: 1,000,000 events over 25,000 resources, checkpoint deleted.

Generates the log with `observer_bench.generate` (the same events): about
960,000 events over 10 days, folded by a full rebuild, then a snapshot (every
document encoded); then three more days of 10,000 events, each folded by one
tick that takes a snapshot as the running observer does (`WorldBuilder.snapshot`:
the changed documents encoded on the folding thread, compressed and written
durably on a background one); then 9,999 more events folded by a tick, so the
last snapshot is as far behind as the default policy (every 10,000 events)
lets it be. Each run deletes the
checkpoint and times `WorldBuilder.open` in a fresh process (it must say
`recovered`; the world on disk must end byte-identical to the incrementally
built one, so 0 documents are rewritten). Prints the snapshot's encode time
(how long the tick is held), write time and size, and the recovery time of
each run (wall clock, and the CPU time of all its threads, which a loaded
machine does not inflate) with their median.

Usage: .venv/bin/python hack/bench/recovery.py [--events N] [--resources R]
       [--runs K] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STEADY = 3  # snapshots taken by ticks (10,000 events each) before the tail


def _tail() -> int:
    """One short of the default `SnapshotPolicy.every_events`: the longest tail a recovery sees."""
    from reconciler.observer.recovery import SnapshotPolicy

    return SnapshotPolicy.every_events - 1


def _world_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / "world").rglob("*.json")):
        if not path.name.startswith("."):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _prepare(root: str, events: int, resources: int) -> None:
    """Subprocess body: rebuild, snapshot as the observer would, append the tail, tick."""
    sys.path.insert(0, str(HERE))
    from observer_bench import DAYS, generate

    from reconciler.observer.recovery import SnapshotPolicy
    from reconciler.observer.world_builder import WorldBuilder
    from reconciler.runtime_root import RuntimeRoot

    base = Path(root)
    tail = _tail()
    every = tail + 1
    generate(base, events - tail - STEADY * every, resources)
    folder = WorldBuilder(RuntimeRoot(base), snapshots=SnapshotPolicy())
    folder.rebuild()
    t0 = time.perf_counter()
    folder.snapshot()  # after a rebuild: every document is encoded
    first = time.perf_counter() - t0
    folder.wait_snapshot()
    assert folder.last_snapshot is not None, folder.snapshot_error
    first_write = folder.last_snapshot[3]
    held, writes = [], []
    for day in range(STEADY):  # as a running observer: a tick passes the policy's count
        generate(base, every, resources, start_day=DAYS + day, days=1)
        before = folder.last_snapshot
        folder.tick()
        folder.wait_snapshot()
        assert folder.last_snapshot is not before, folder.snapshot_error
        held.append(folder.last_snapshot[2])
        writes.append(folder.last_snapshot[3])
    meta, size, _, _ = folder.last_snapshot
    generate(base, tail, resources, start_day=DAYS + STEADY, days=1)
    tick = folder.tick()
    folder.sync()
    assert folder.last_snapshot[0] == meta, "the tail must not trigger a new snapshot"
    figures = {
        "first": first,
        "first_write": first_write,
        "held": sorted(held),
        "write": sorted(writes),
        "size": size,
        "documents": meta.documents,
        "covered": meta.events,
        "tail": tick.events,
    }
    print(json.dumps(figures))


def _recover(root: str) -> None:
    """Subprocess body: open without a checkpoint; print the time and what it said."""
    from reconciler.observer.world_builder import WorldBuilder
    from reconciler.runtime_root import RuntimeRoot

    t0, c0 = time.perf_counter(), time.process_time()
    folder = WorldBuilder(RuntimeRoot(Path(root)))
    how = folder.open()
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": seconds, "cpu": cpu, "how": how}))


def _ms(values: list[float]) -> str:
    """`median ms (min-max)` of a sorted list of seconds."""
    return (
        f"median {statistics.median(values) * 1000:.0f} ms "
        f"({values[0] * 1000:.0f}-{values[-1] * 1000:.0f})"
    )


def _child(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--resources", type=int, default=25_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "prepare":
            _prepare(args.child[1], int(args.child[2]), int(args.child[3]))
        else:
            _recover(args.child[1])
        return
    base = Path(tempfile.mkdtemp(prefix="recovery-bench-", dir=args.dir))
    try:
        t0 = time.perf_counter()
        prep = _child("prepare", str(base), str(args.events), str(args.resources))
        print(
            f"prepared {args.events:,} events over {args.resources:,} resources "
            f"in {time.perf_counter() - t0:.1f} s ({base})"
        )
        print(
            f"snapshot of {prep['documents']:,} documents covering {prep['covered']:,} events: "
            f"{prep['size'] / 1e6:.1f} MB (zstd). First one (after the rebuild, every document "
            f"encoded): tick held {prep['first'] * 1000:.0f} ms, background write "
            f"{prep['first_write'] * 1000:.0f} ms. {STEADY} taken by ticks every 10,000 events: "
            f"tick held (encoding the changed documents) {_ms(prep['held'])}, background write "
            f"(compress, fsync, rename) {_ms(prep['write'])}; {prep['tail']:,} events folded "
            "after the last"
        )
        before = _world_digest(base)
        times, cpus = [], []
        for run in range(args.runs):
            (base / "state" / "observer_checkpoint.json").unlink()
            result = _child("recover", str(base))
            how = str(result["how"])
            assert how.startswith("recovered"), how
            assert _world_digest(base) == before, "the recovered world differs"
            times.append(float(result["seconds"]))
            cpus.append(float(result["cpu"]))
            print(f"run {run + 1}: recovery {times[-1]:.2f} s (CPU {cpus[-1]:.2f} s): {how}")
        print(
            f"recovery after deleting the checkpoint: median {statistics.median(times):.2f} s "
            f"(range {min(times):.2f}-{max(times):.2f} s, {len(times)} runs; CPU median "
            f"{statistics.median(cpus):.2f} s); world byte-identical to the incrementally built one"
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.path.insert(0, str(HERE.parents[1]))
    main()
