"""Benchmark: approve -> claimed, and approve -> container running, of a warm executor.

Makes a git repository with a `local` Node on the test engine, starts
`homelab run executor` and, for each round, commits one new Container
(local/busybox:1, `sleep`), plans with the real planner, proposes the
action to `queue/pending/`, then approves it (the rename the UI does) and
times until the executor has claimed it (`queue/running/`) and until the
engine reports the container running. Prints median / p90 / max; asserts
nothing. Needs the private engine (`hack/dev-daemons.sh start`).
Run: .venv/bin/python hack/bench/executor_latency.py [--rounds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from reconciler.planning import compute_plan
from reconciler.queue import ActionQueue, new_action
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitSource

HOMELAB = str(Path(sys.executable).parent / "homelab")
DEFAULT_HOST = "unix:///tmp/homelab-dev/docker.sock"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def manifest(kind: str, name: str, spec: dict[str, object]) -> bytes:
    doc = {"apiVersion": "homelab.reconciler/v1alpha1", "kind": kind, "metadata": {"name": name}}
    return orjson.dumps({**doc, "spec": spec}) + b"\n"


def wait_for(check: object, timeout: float = 60.0) -> float:
    start = time.perf_counter()
    while not check():  # type: ignore[operator]
        if time.perf_counter() - start > timeout:
            raise SystemExit("timed out")
        time.sleep(0.002)
    return time.perf_counter()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    host = os.environ.get("HOMELAB_TEST_DOCKER_HOST") or DEFAULT_HOST
    client = docker.DockerClient(base_url=host)
    tmp = Path(tempfile.mkdtemp(prefix="executor-bench-"))
    repo, root = tmp / "repo", RuntimeRoot(tmp / "root").ensure()
    (repo / "manifests").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "bench@example.invalid")
    git(repo, "config", "user.name", "bench")
    node = {"dockerHost": host, "allowedRoots": [str(tmp / "srv")]}
    (repo / "manifests/node.yaml").write_bytes(manifest("Node", "local", node))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "node")
    proc = subprocess.Popen(
        [HOMELAB, "run", "executor", "--repo", str(repo), "--root", str(root.path)],
        stderr=subprocess.DEVNULL,
    )
    queue = ActionQueue(root)
    claimed: list[float] = []
    running: list[float] = []
    names: list[str] = []
    try:
        wait_for(lambda: (root.state / "executor_status.json").exists())
        for i in range(args.rounds):
            name = f"bench-{os.getpid()}-{i}"
            names.append(name)
            spec = {
                "image": "local/busybox:1",
                "imagePullPolicy": "Never",
                "command": ["sleep", "600"],
                "networkMode": "host",
                "restartPolicy": "no",
            }
            (repo / f"manifests/{name}.yaml").write_bytes(manifest("Container", name, spec))
            git(repo, "add", "-A")
            git(repo, "commit", "-q", "-m", name)
            result = compute_plan(GitSource(repo), root)
            change = next(c for c in result.plan.changes if c.name == name)
            action = new_action(change, commit=result.state.commit, basis="", manifest=None)
            queue.propose(action)
            start = time.perf_counter()
            queue.move(action.id, "pending", "approved", actor="bench")

            def is_running(n: str = name) -> bool:
                try:
                    return bool(client.containers.get(f"homelab-{n}").attrs["State"]["Running"])
                except docker.errors.NotFound:
                    return False

            at_claim = wait_for(lambda a=action.id: queue.find(a) != "approved")
            at_run = wait_for(is_running)
            claimed.append(at_claim - start)
            running.append(at_run - start)
            wait_for(lambda a=action.id: queue.find(a) == "done")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        for name in names:
            with contextlib.suppress(docker.errors.NotFound):
                client.containers.get(f"homelab-{name}").remove(force=True)
        shutil.rmtree(tmp, ignore_errors=True)
    for label, values in (("approve -> claimed", claimed), ("approve -> running", running)):
        print(
            f"{label}: median {statistics.median(values) * 1000:.0f} ms, "
            f"p90 {pct(values, 0.9) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms "
            f"({len(values)} rounds)"
        )


if __name__ == "__main__":
    main()
