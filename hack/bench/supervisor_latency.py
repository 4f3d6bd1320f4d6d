"""Benchmark: commit -> pending action file latency, and idle CPU, of a running supervisor.

Generates a git repository of 1,000 Container manifests and a runtime root
whose world is in sync with them (the generator of plan_bench.py), starts
`homelab run supervisor` (resync 60 s, so every measured pass is woken by
the commit itself), waits until it is warm, then repeatedly edits one
manifest, commits, and times until the new `queue/pending/<id>.json`
appears. Then it leaves the supervisor alone and measures its CPU use.
Prints figures, asserts nothing.
Run: .venv/bin/python hack/bench/supervisor_latency.py [--count 1000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from plan_bench import generate, git  # noqa: E402

HOMELAB = str(Path(sys.executable).parent / "homelab")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def wait_for(check: object, timeout: float = 60.0) -> float:
    deadline = time.perf_counter() + timeout
    while True:
        now = time.perf_counter()
        if check():  # type: ignore[operator]
            return now
        if now > deadline:
            raise SystemExit("benchmark: timed out waiting for the supervisor")
        time.sleep(0.002)


def commit_one(repo: Path, i: int) -> None:
    victim = repo / "manifests" / f"svc-{i:05d}.yaml"
    victim.write_text(victim.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    git(repo, "-c", "user.email=b@b", "-c", "user.name=bench", "commit", "-qam", f"edit {i}")


def bench(count: int, rounds: int, idle: float) -> None:
    base = Path(tempfile.mkdtemp(prefix="supervisor-bench-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        repo, root = generate(base, count)
        pending = root / "queue" / "pending"
        status = root / "state" / "supervisor_status.json"
        args = ["run", "supervisor", "--repo", str(repo), "--root", str(root), "--resync", "60"]
        started = time.perf_counter()
        proc = subprocess.Popen([HOMELAB, *args], stderr=subprocess.DEVNULL)
        first = wait_for(status.exists, 120)
        print(f"{count} resources; first pass done {first - started:.2f} s after start")
        for i in range(3):  # warm-up commits: caches filled, code paths hot
            commit_one(repo, count - 1 - i)
            wait_for(lambda n=i + 1: len(os.listdir(pending)) >= n)
        latencies, after_ref = [], []
        for i in range(rounds):
            time.sleep(0.5)
            before = len(os.listdir(pending))
            t0 = time.perf_counter()
            commit_one(repo, i)
            t1 = time.perf_counter()
            t2 = wait_for(lambda b=before: len(os.listdir(pending)) > b)
            latencies.append(t2 - t0)
            after_ref.append(t2 - t1)
        ordered = sorted(latencies)
        print(f"commit -> pending action file, {rounds} commits (from `git commit` start):")
        print(
            f"  median {statistics.median(latencies) * 1000:.0f} ms, "
            f"p90 {ordered[int(0.9 * (len(ordered) - 1))] * 1000:.0f} ms, "
            f"max {ordered[-1] * 1000:.0f} ms"
        )
        print(f"  after the ref update: median {statistics.median(after_ref) * 1000:.0f} ms")
        time.sleep(2.0)
        cpu0, w0 = cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(idle)
        cpu1, w1 = cpu_seconds(proc.pid), time.perf_counter()
        share = 100 * (cpu1 - cpu0) / (w1 - w0)
        print(f"idle CPU over {w1 - w0:.0f} s: {cpu1 - cpu0:.2f} s = {share:.2f} % of one core")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--idle", type=float, default=20.0, help="Seconds of idle CPU sampling.")
    args = parser.parse_args()
    bench(args.count, args.rounds, args.idle)


if __name__ == "__main__":
    main()
