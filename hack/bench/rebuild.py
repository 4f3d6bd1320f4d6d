"""From-scratch rebuild benchmark: `WorldBuilder.rebuild` on 1,000,000 events over 25,000 resources.

Generates the log once with `observer_bench.generate` (10 UTC days, 3
producers), then, run after run, times two rebuilds in a fresh process:
"empty world" (the world folder and the checkpoint gone first: every
document is created) and "world on disk" (only the checkpoint deleted: every
document is compared, none rewritten). The "writes" figure of an empty
world is mostly the kernel's: on this project's VM, a plain loop creating
25,000 small files takes 0.5-13 s of system time from one run to the next,
and longest right after 25,000 files were deleted (see the README, "Rebuild
from scratch"), so the empty world's case moves the world folder aside
(deleted when the benchmark ends) instead of deleting it before the run.
With `--tree` (repeatable) each run goes through the trees in turn,
alternating, so a before/after comparison on a loaded machine sees the same
load; every rebuild must leave the world
byte-identical to the first one. Wall time and CPU time (user + system of the
rebuilding process and of any helper process it waited for) are printed per
rebuild; CPU time is the steadier figure when other processes compete for
the cores. Ends with one line per tree and case: `SUMMARY <tree> <case>:`
median events/s by wall and by CPU, with ranges. `--tree PATH:alone` times
that tree with no helper process (`WorldBuilder.helpers = False`),
`PATH:two` with both (the second folding process too: the earlier days
folded by a helper, `observer/replay_split.py`) whatever the load,
`PATH:split` with only the second folding process, `PATH:fresh` with only
the empty world's file-creating one; plain `PATH`
lets the rebuild decide (its defaults: both helpers when a core is idle).

Usage: .venv/bin/python hack/bench/rebuild.py [--events N] [--resources R] [--runs K]
       [--tree PATH[:alone|:two|:split|:fresh] ...] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CASES = ("empty world", "world on disk")


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _measure(root: str, mode: str) -> None:
    """Subprocess body (run with the tree under test first on sys.path): one rebuild."""
    import reconciler
    from reconciler.observer.world_builder import WorldBuilder
    from reconciler.runtime_root import RuntimeRoot

    folder = WorldBuilder(RuntimeRoot(Path(root)))
    if mode == "alone":  # no helper process, whatever the load (trees that have them)
        folder.helpers = False
    elif mode == "two":  # both helper processes, whatever the load
        folder.helpers = True
        if hasattr(folder, "split_fold"):
            folder.split_fold = True
        else:  # trees before the split by days had a second folding process by resource
            folder.shard_fold = True
    elif mode == "split":  # only the second folding process, whatever the load
        folder.helpers, folder.fresh_helper = True, False
    elif mode == "fresh":  # only the empty world's file-creating helper, whatever the load
        folder.helpers = True
        if hasattr(folder, "split_fold"):
            folder.split_fold = False
        else:
            folder.shard_fold = False
    c0 = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = folder.rebuild()
    seconds = time.perf_counter() - t0
    cpu = _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN) - c0
    figures = {
        "seconds": seconds,
        "cpu": cpu,
        "events": result.events,
        "written": result.written,
        "fold": result.fold_seconds,
        "write": result.write_seconds,
        "documents": len(folder.state.docs),
        "module": reconciler.__file__,
    }
    print(json.dumps(figures))


def _world_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / "world").rglob("*.json")):
        if not path.name.startswith("."):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _rebuild(tree: Path, root: Path, mode: str) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONHASHSEED="0")
    out = subprocess.run(
        [sys.executable, __file__, "--measure", str(root), "--mode", mode],
        check=True,
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
    )
    figures = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    assert str(figures["module"]).startswith(str(tree)), (figures["module"], tree)
    return figures


def _range(values: list[float], fmt: str) -> str:
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return f"median {fmt.format(statistics.median(values))} ({low}-{high})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--resources", type=int, default=25_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--tree",
        action="append",
        default=None,
        help="source tree to time; PATH:alone, PATH:two, PATH:split or PATH:fresh (helpers)",
    )
    parser.add_argument("--mode", default="", help=argparse.SUPPRESS)
    parser.add_argument("--dir", default=None)
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        _measure(args.measure, args.mode)
        return
    sys.path.insert(0, str(HERE))
    from observer_bench import DAYS, generate

    specs = args.tree or [str(HERE.parents[1])]
    trees = [(Path(t.partition(":")[0]).resolve(), t.partition(":")[2]) for t in specs]
    names = {t: t[0].name + (f":{t[1]}" if t[1] else "") for t in trees}
    base = Path(tempfile.mkdtemp(prefix="rebuild-bench-", dir=args.dir))
    figures: dict[tuple[tuple[Path, str], str], list[dict[str, Any]]] = {}
    try:
        t0 = time.perf_counter()
        size = generate(base, args.events, args.resources)
        print(
            f"generated {args.events:,} events ({size / 1e6:.0f} MB, {DAYS} days) over "
            f"{args.resources:,} resources in {time.perf_counter() - t0:.1f} s ({base}); "
            f"load average {os.getloadavg()[0]:.1f}",
            flush=True,
        )
        digest = None
        for run in range(args.runs):
            for tree in trees:
                for case in CASES:
                    (base / "state" / "observer_checkpoint.json").unlink(missing_ok=True)
                    if case == "empty world":  # set aside, deleted at the end (see above)
                        trash = base / "trash"
                        trash.mkdir(exist_ok=True)
                        if (base / "world").exists():
                            (base / "world").rename(trash / str(len(list(trash.iterdir()))))
                    got = _rebuild(tree[0], base, tree[1])
                    found = _world_digest(base)
                    digest = digest or found
                    assert found == digest, f"{names[tree]} {case}: the world differs"
                    figures.setdefault((tree, case), []).append(got)
                    print(
                        f"run {run + 1} {names[tree]} {case}: {got['seconds']:.2f} s wall "
                        f"({got['events'] / got['seconds']:,.0f} events/s), CPU {got['cpu']:.2f} s "
                        f"({got['events'] / got['cpu']:,.0f} events/s); fold {got['fold']:.2f} s, "
                        f"writes {got['write']:.2f} s, {got['written']:,} of "
                        f"{got['documents']:,} documents written; load average "
                        f"{os.getloadavg()[0]:.1f}",
                        flush=True,
                    )
        for (tree, case), runs in figures.items():
            events = runs[0]["events"]
            wall = [events / r["seconds"] for r in runs]
            cpu = [events / r["cpu"] for r in runs]
            print(
                f"SUMMARY {names[tree]} {case}: {_range(wall, '{:,.0f}')} events/s wall, "
                f"{_range(cpu, '{:,.0f}')} events/s CPU; seconds wall "
                f"{_range([r['seconds'] for r in runs], '{:.2f}')}, CPU "
                f"{_range([r['cpu'] for r in runs], '{:.2f}')}; {len(runs)} runs, "
                f"{events:,} events, world byte-identical"
            )
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    if "--measure" not in sys.argv:  # a measured rebuild imports the tree on PYTHONPATH
        sys.path.insert(0, str(HERE.parents[1]))
    main()
