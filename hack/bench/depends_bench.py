"""Benchmark: what `dependsOn` costs a plan and an executor decision (prints figures only).

For each size it generates a git repository of File manifests (cheap to
parse, so the dependency work shows), each depending on up to three earlier
ones, and an empty world (every resource is a create), then measures in
this process, over several runs (median, min-max):
  plan      `compute_plan` of the commit with dependsOn (checks, ordering)
  baseline  the same manifests without dependsOn
  check     `dependency_problems` alone (a warm source: cached parse)
  order     `order_changes` alone on the plan's changes
  gate      one executor decision round: the board of live actions read from
            the queue (every change proposed and approved) and a verdict for each
Run: .venv/bin/python hack/bench/depends_bench.py [--sizes 1000,5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reconciler.events.log import EventLog
from reconciler.executor.dependencies import DependencyGate
from reconciler.planning import compute_plan
from reconciler.planning.dependencies import dependency_problems, order_changes
from reconciler.queue import ActionQueue, new_action
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.blobcache import BlobCache
from reconciler.sources.git import GitSource

FILE = """\
---
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: f{i:05d}
spec:
  path: /srv/homelab/f{i:05d}
  content: "{i}"
{deps}"""


def write_repo(path: Path, size: int, with_deps: bool) -> None:
    (path / "manifests").mkdir(parents=True)
    for chunk in range(0, size, 100):
        docs = []
        for i in range(chunk, min(size, chunk + 100)):
            targets = [f"File/f{j:05d}" for j in (i - 1, i - 7, i - 31) if j >= 0]
            deps = f"  dependsOn: [{', '.join(targets)}]\n" if with_deps and targets else ""
            docs.append(FILE.format(i=i, deps=deps))
        (path / "manifests" / f"part-{chunk:05d}.yaml").write_text("".join(docs))
    env = ["-c", "user.email=bench@example.org", "-c", "user.name=bench"]
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True)
    subprocess.run(["git", *env, "-C", str(path), "commit", "-qm", "bench"], check=True)


def timed(fn: Callable[[], object], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def show(label: str, values: list[float]) -> str:
    med = statistics.median(values)
    return f"{label} {med * 1000:.1f} ms ({min(values) * 1000:.1f}-{max(values) * 1000:.1f})"


def setup(size: int, tmp: Path, with_deps: bool) -> tuple[GitSource, RuntimeRoot]:
    repo = tmp / f"repo-{size}-{with_deps}"
    write_repo(repo, size, with_deps)
    root = RuntimeRoot(tmp / f"root-{size}-{with_deps}").ensure()
    source = GitSource(repo, None, BlobCache(None))
    result = compute_plan(source, root)  # warm the parse cache
    assert not result.errors, result.errors[:3]
    return source, root


def plan_times(source: GitSource, root: RuntimeRoot, runs: int) -> list[float]:
    def plan() -> object:
        source.derived.clear()  # re-derive specs and dependency checks, as a new commit would
        return compute_plan(source, root)

    return timed(plan, runs)


def parts(source: GitSource, root: RuntimeRoot, runs: int) -> list[str]:
    state = source.load(None)
    changes = compute_plan(source, root).plan.changes

    def check() -> object:
        source.derived.pop("dependencies", None)
        return dependency_problems(source, state)

    out = [show("check", timed(check, runs))]
    out.append(show("order", timed(lambda: order_changes(changes, state.manifests), runs)))
    queue = ActionQueue(root, EventLog(root, "bench"))
    actions = []
    for change in changes:
        manifest = state.manifests[change.ref].doc
        action = new_action(change, commit=state.commit, basis="", manifest=manifest)
        queue.propose(action)
        actions.append(queue.move(action.id, "pending", "approved", actor="bench"))
    gate = DependencyGate(root, queue)

    def decide() -> object:
        board = gate.board()
        return [gate.verdict(a, board) for a in actions]

    out.append(show("gate (first round)", timed(decide, 1)))
    out.append(show("gate (next rounds)", timed(decide, runs)))
    return out


def bench(size: int, runs: int, tmp: Path) -> None:
    source, root = setup(size, tmp, True)
    figures = [show("plan", plan_times(source, root, runs))]
    figures += parts(source, root, runs)
    base_source, base_root = setup(size, tmp, False)
    figures.append(show("baseline plan", plan_times(base_source, base_root, runs)))
    print(f"{size} Files, up to 3 dependsOn each: " + "; ".join(figures), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            bench(size, args.runs, Path(tmp))


if __name__ == "__main__":
    main()
