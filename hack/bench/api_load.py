"""Load figures of the UI API with Debian's `wrk` at 1,000 resources, one uvicorn worker.

Builds a runtime root with 1,000 world documents, the supervisor status for
them and 20 pending actions, starts `homelab run ui` (token auth on) on a
loopback port, and runs `wrk -t2 -c50 --latency` against `/summary` and
`/api/resources` with the bearer token. Prints requests/s and p99 latency.

    .venv/bin/python hack/bench/api_load.py [--resources 1000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from reconciler.atomic_files import atomic_write_json
from reconciler.queue.action import now_iso
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import new_world_doc, world_path

STATUSES = ("InSync", "InSync", "InSync", "Drifted", "Invalid", "Flapping")


def build_root(root: RuntimeRoot, count: int) -> None:
    root.ensure()
    resources = {}
    for i in range(count):
        name = f"app-{i:04d}"
        spec = {"image": "local/busybox:1", "command": ["sleep", str(i)], "node": "local"}
        doc = new_world_doc("Container", name)
        doc["metadata"]["labels"] = {"app": name, "tier": "web"}
        doc["status"].update(exists=True, managed=True, observed=spec, health="Healthy")
        atomic_write_json(world_path(root, "Container", name), doc, durable=False)
        resources[f"Container/{name}"] = {
            "status": STATUSES[i % len(STATUSES)],
            "errors": [],
            "action": None,
        }
    for i in range(20):
        action = {
            "id": f"{i:020x}",
            "kind": "Container",
            "name": f"app-{i:04d}",
            "operation": "update",
            "patch": [{"op": "replace", "path": "/image", "value": "local/busybox:2"}],
            "desired": {"image": "local/busybox:2"},
            "observed": {"image": "local/busybox:1"},
            "summary": "~ Container",
            "commit": "0" * 40,
            "basis": "",
            "createdAt": now_iso(),
        }
        atomic_write_json(root.queue_dir("pending") / f"{action['id']}.json", action)
    atomic_write_json(
        root.state / "supervisor_status.json",
        {
            "commit": "0" * 40,
            "updatedAt": now_iso(),
            "lastResyncAt": now_iso(),
            "resources": resources,
            "errors": [],
        },
    )
    atomic_write_json(
        root.state / "observer_status.json",
        {
            "caughtUp": True,
            "updatedAt": now_iso(),
            "lagBytes": 0,
            "eventsFolded": count,
            "nodes": {},
        },
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/healthz", timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the UI did not start")


def wrk(url: str, token: str, seconds: int) -> tuple[float, str]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            "-c50",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+(\S+)", out).group(1)  # type: ignore[union-attr]
    if re.search(r"Non-2xx or 3xx responses", out):
        raise SystemExit(f"wrk saw error responses:\n{out}")
    return rps, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="api-load-"))
    root = RuntimeRoot(tmp / "root")
    build_root(root, args.resources)
    port = free_port()
    homelab = str(Path(sys.executable).parent / "homelab")
    server = subprocess.Popen(
        [homelab, "run", "ui", "--root", str(root.path), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LITESTAR_WARN_IMPLICIT_SYNC_TO_THREAD": "0"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url)
        token = (root.state / "ui_token").read_text().strip()
        print(
            f"api_load: {args.resources} resources, one uvicorn worker, token auth, "
            f"wrk -t2 -c50 -d{args.seconds}s"
        )
        for path in ("/summary", "/api/resources"):
            wrk(url + path, token, 2)  # warm up
            rps, p99 = wrk(url + path, token, args.seconds)
            print(f"  {path:<16} {rps:>9.0f} req/s   p99 {p99}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
