"""Benchmark: push -> pending action latency when the repository is a remote followed by URL.

Generates a repository of 1,000 Container manifests and a runtime root whose
world is in sync with them (plan_bench.py's generator), serves the repository
with a real `git daemon` on 127.0.0.1 (git://), and starts
`homelab run supervisor --repo git://... --poll 5` (resync 60 s). Then, per
round, it commits one edited manifest in the served repository (what a push
does to the server) and times until the new `queue/pending/<id>.json`
appears, in two modes:

- `request`: right after the commit it calls `request_fetch(root, ...)`,
  exactly what the webhook endpoint does on a push (so: webhook latency
  minus the HTTP request itself);
- `webhook`: right after the commit it POSTs a signed GitHub push payload
  (`X-Hub-Signature-256`, a fresh delivery id, the new commit as `after`)
  to `POST /api/hooks/git` of a `homelab run ui` on the same root: the
  whole webhook path, HTTP included;
- `poll`: nothing is requested; each push comes at a random moment of the
  poll period and the follower finds it on its next poll (every 5 s ± 10 %),
  so the latency is spread over 0..5.5 s plus the pass.

Prints figures, asserts nothing. Run:
  .venv/bin/python hack/bench/source_latency.py [--count 1000] [--rounds 10] [--port 18590]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from plan_bench import generate  # noqa: E402
from supervisor_latency import commit_one, wait_for  # noqa: E402

from reconciler.runtime_root import RuntimeRoot  # noqa: E402
from reconciler.sources.fetch_signal import request_fetch  # noqa: E402

HOMELAB = str(Path(sys.executable).parent / "homelab")


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


SECRET = b"bench-webhook-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _head(repo: Path) -> str:
    out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True)
    return out.stdout.decode().strip()


def _post_hook(ui_port: int, repo: Path) -> int:
    """A GitHub push webhook for the repository's new HEAD; the HTTP status."""
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "0" * 40,
            "after": _head(repo),
            "repository": {"full_name": "bench/repo", "clone_url": "git://127.0.0.1/repo"},
            "pusher": {"name": "bench"},
        }
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{ui_port}/api/hooks/git",
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest(),
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        return int(response.status)


def _figures(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"{name}: {len(values)} pushes, median {statistics.median(values) * 1000:.0f} ms, "
        f"min {ordered[0] * 1000:.0f} ms, max {ordered[-1] * 1000:.0f} ms"
    )


def bench(count: int, rounds: int, port: int, poll: float) -> None:
    base = Path(tempfile.mkdtemp(prefix="source-bench-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        repo, root = generate(base, count)
        daemon = subprocess.Popen(
            [
                *("git", "daemon", "--reuseaddr", "--export-all", f"--base-path={base}"),
                *("--listen=127.0.0.1", f"--port={port}", str(base)),
            ],
            stderr=subprocess.DEVNULL,
        )
        procs.append(daemon)
        wait_for(lambda: _listening(port), 10)
        url = f"git://127.0.0.1:{port}/repo"
        pending = root / "queue" / "pending"
        status = root / "state" / "supervisor_status.json"
        args = ["run", "supervisor", "--repo", url, "--root", str(root), "--resync", "60"]
        started = time.perf_counter()
        procs.append(subprocess.Popen([HOMELAB, *args, "--poll", str(poll)]))
        first = wait_for(status.exists, 180)
        print(f"{count} resources from {url}; first pass {first - started:.2f} s after start")
        runtime = RuntimeRoot(root)
        runtime.secrets.mkdir(mode=0o700, parents=True, exist_ok=True)
        (runtime.secrets / "git-webhook").write_bytes(SECRET)
        ui_port = _free_port()
        ui_args = ["run", "ui", "--root", str(root), "--repo", url, "--port", str(ui_port)]
        procs.append(subprocess.Popen([HOMELAB, *ui_args], stderr=subprocess.DEVNULL))
        wait_for(lambda: _listening(ui_port), 60)
        for i in range(2):  # warm-up: caches filled, code paths hot
            commit_one(repo, count - 1 - i)
            request_fetch(runtime, "bench warm-up")
            wait_for(lambda n=i + 1: len(os.listdir(pending)) >= n)
        results: dict[str, list[float]] = {"request": [], "webhook": [], "poll": []}
        n = 0
        rng = random.Random(14)
        for mode in ("request", "webhook", "poll"):
            for _ in range(rounds):
                # poll: a push at a random moment of the poll period, as pushes come
                time.sleep(rng.uniform(0, poll) if mode == "poll" else 0.3)
                before = len(os.listdir(pending))
                t0 = time.perf_counter()
                commit_one(repo, n)
                n += 1
                if mode == "request":
                    request_fetch(runtime, "bench: push")
                elif mode == "webhook":
                    answer = _post_hook(ui_port, repo)
                    assert answer == 202, f"the webhook answered {answer}"
                t1 = wait_for(lambda b=before: len(os.listdir(pending)) > b, poll * 3 + 30)
                results[mode].append(t1 - t0)
        print(_figures("fetch request (the webhook's call) -> pending", results["request"]))
        print(_figures("signed GitHub webhook over HTTP -> pending", results["webhook"]))
        print(_figures(f"--poll {poll:g} -> pending", results["poll"]))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--port", type=int, default=18590, help="git daemon's loopback port.")
    parser.add_argument("--poll", type=float, default=5.0)
    args = parser.parse_args()
    bench(args.count, args.rounds, args.port, args.poll)


if __name__ == "__main__":
    main()
