"""Fault benchmark: approvals through the CLI while the UI of `homelab up` is flooded.

Starts `homelab up` (all four services in one process, RLIMIT_NOFILE 1,024
by default as on the machine where the flood first hit) on a temporary root,
with a `local` Node on the private engine. Each round commits one new
Container, waits for the supervisor's proposal and approves it with
`homelab actions approve`; approve -> running is timed from the
`action.approved` event's timestamp to the container's `State.StartedAt`,
so neither side is a polling guess. First `--rounds` quiet, then the same
while a worker process (this file with `--worker`) holds `--idle` half-sent
connections (re-opening those the server closes) and sends `--rate` real
requests a second (`/summary`, `/api/resources` with the token), all to
127.0.0.1, bounded by `--seconds`. Prints median / p90 quiet vs flood, the
worker's request figures and whether every service stayed up (`/healthz`
during and after, the process alive, no "Too many open files" in its log).
Asserts nothing. Needs the private engine (`hack/dev-daemons.sh start`).
Run: .venv/bin/python hack/bench/flood.py [--rounds 10 --idle 2000 --rate 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import docker
import orjson

HOMELAB = str(Path(sys.executable).parent / "homelab")
DEFAULT_HOST = "unix:///tmp/homelab-dev/docker.sock"
HALF = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


async def _idle(port: int, stop: float, stats: dict[str, int]) -> None:
    """Keep one half-sent connection open; re-open it when the server closes it."""
    while time.monotonic() < stop and stats["opened"] < 400_000:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            stats["connect_errors"] += 1
            await asyncio.sleep(0.05)
            continue
        stats["opened"] += 1
        writer.write(HALF)
        with contextlib.suppress(OSError, TimeoutError):
            await asyncio.wait_for(reader.read(1), max(0.0, stop - time.monotonic()))
        writer.close()


async def _get(port: int, path: str, token: str) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
    writer.write(request.encode() + b"Connection: close\r\n\r\n")
    status = (await asyncio.wait_for(reader.readline(), 10)).split(b" ")[1]
    while await reader.read(65536):
        pass
    writer.close()
    return int(status)


async def _real(port: int, rate: int, stop: float, token: str, stats: dict[str, int]) -> None:
    tasks: set[asyncio.Task[int]] = set()
    n = 0
    while time.monotonic() < stop:
        path = ("/summary", "/api/resources", "/healthz")[n % 3]
        task = asyncio.create_task(_get(port, path, token))
        tasks.add(task)
        task.add_done_callback(lambda t: _count(t, stats, tasks))
        n += 1
        await asyncio.sleep(1 / rate)
    await asyncio.gather(*tasks, return_exceptions=True)


def _count(task: asyncio.Task[int], stats: dict[str, int], tasks: set[asyncio.Task[int]]) -> None:
    tasks.discard(task)
    if task.exception() is not None:
        key = f"real_{type(task.exception()).__name__}"
        stats[key] = stats.get(key, 0) + 1
    elif task.result() == 200:
        stats["real_ok"] += 1
    else:
        stats[f"real_{task.result()}"] = stats.get(f"real_{task.result()}", 0) + 1


def worker(role: str, port: int, idle: int, rate: int, seconds: float, token: str) -> None:
    """One flood process: `idle` (half-sent connections) or `real` (paced requests)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, idle + 2048), hard))
    stats = {"opened": 0, "connect_errors": 0, "real_ok": 0}
    stop = time.monotonic() + seconds

    async def main() -> None:
        if role == "idle":
            await asyncio.gather(*(_idle(port, stop, stats) for _ in range(idle)))
        else:
            await _real(port, rate, stop, token, stats)

    asyncio.run(main())
    print(orjson.dumps(stats).decode(), flush=True)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def manifest(kind: str, name: str, spec: dict[str, object]) -> bytes:
    doc = {"apiVersion": "homelab.reconciler/v1alpha1", "kind": kind, "metadata": {"name": name}}
    return orjson.dumps({**doc, "spec": spec}) + b"\n"


def healthy(port: int) -> bool:
    import urllib.request

    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with direct.open(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def wait_for(check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.02)


def stamp(text: str) -> float:
    """Seconds since the epoch of an RFC 3339 UTC time (nanoseconds cut to micro)."""
    head, _, frac = text.rstrip("Z").partition(".")
    parsed = datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")
    return parsed.timestamp()


class Bench:
    def __init__(self, tmp: Path, host: str, port: int) -> None:
        self.repo, self.root, self.host, self.port = tmp / "repo", tmp / "root", host, port
        self.client = docker.DockerClient(base_url=host)
        self.names: list[str] = []

    def approved_at(self, action_id: str) -> float:
        for path in self.root.glob("events/*/cli-bench.jsonl"):
            for line in path.read_bytes().splitlines():
                event = orjson.loads(line)
                if event["type"] == "action.approved" and event["data"]["action"] == action_id:
                    return stamp(event["ts"])
        raise SystemExit(f"no action.approved event for {action_id}")

    def pending_for(self, name: str) -> str | None:
        for path in (self.root / "queue/pending").glob("*.json"):
            with contextlib.suppress(OSError, orjson.JSONDecodeError):
                if orjson.loads(path.read_bytes()).get("name") == name:
                    return path.stem
        return None

    def round(self, label: str) -> float:
        name = f"flood-{label}-{len(self.names)}"
        self.names.append(name)
        spec = {
            "image": "local/busybox:1",
            "imagePullPolicy": "Never",
            "command": ["sleep", "600"],
            "networkMode": "host",
            "restartPolicy": "no",
            "node": "local",
        }
        (self.repo / f"manifests/{name}.yaml").write_bytes(manifest("Container", name, spec))
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", name)
        found: list[str] = []
        wait_for(lambda: found.append(aid) or True if (aid := self.pending_for(name)) else False)
        cli = [HOMELAB, "actions", "approve", found[0], "--root", str(self.root), "--as", "bench"]
        subprocess.run(cli, check=True, capture_output=True)

        def started() -> str | None:
            with contextlib.suppress(docker.errors.NotFound):
                state = self.client.containers.get(f"homelab-{name}").attrs["State"]
                if state["Running"]:
                    return str(state["StartedAt"])
            return None

        wait_for(started)
        return stamp(started() or "") - self.approved_at(found[0])

    def cleanup(self) -> None:
        for name in self.names:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.containers.get(f"homelab-{name}").remove(force=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def line(label: str, values: list[float]) -> str:
    return (
        f"approve -> running, {label}: median {statistics.median(values) * 1000:.0f} ms, "
        f"p90 {pct(values, 0.9) * 1000:.0f} ms, max {max(values) * 1000:.0f} ms "
        f"({len(values)} rounds)"
    )


def _limit(nofile: int) -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--port", type=int, default=18871)
    parser.add_argument("--nofile", type=int, default=1024, help="RLIMIT_NOFILE of homelab up")
    parser.add_argument("--worker", choices=["idle", "real"], help=argparse.SUPPRESS)
    parser.add_argument("--token", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.port, args.idle, args.rate, args.seconds, args.token)
        return
    host = os.environ.get("HOMELAB_TEST_DOCKER_HOST") or DEFAULT_HOST
    tmp = Path(tempfile.mkdtemp(prefix="flood-bench-"))
    bench = Bench(tmp, host, args.port)
    (bench.repo / "manifests").mkdir(parents=True)
    git(bench.repo, "init", "-q", "-b", "main")
    git(bench.repo, "config", "user.email", "bench@example.invalid")
    git(bench.repo, "config", "user.name", "bench")
    node = {"dockerHost": host, "allowedRoots": [str(tmp / "srv")]}
    (bench.repo / "manifests/node.yaml").write_bytes(manifest("Node", "local", node))
    git(bench.repo, "add", "-A")
    git(bench.repo, "commit", "-q", "-m", "node")
    log = (tmp / "up.log").open("wb")
    up = subprocess.Popen(
        [
            HOMELAB,
            "up",
            "--repo",
            str(bench.repo),
            "--root",
            str(bench.root),
            "--port",
            str(args.port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "DOCKER_HOST": host},
        preexec_fn=lambda: _limit(args.nofile),
    )
    quiet: list[float] = []
    flooded: list[float] = []
    report: dict[str, object] = {}
    try:
        wait_for(lambda: healthy(args.port), 60)
        for _ in range(args.rounds):
            quiet.append(bench.round("quiet"))
        token = (bench.root / "state/ui_token").read_text().strip()
        floods = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    f"--worker={role}",
                    "--port",
                    str(args.port),
                    "--idle",
                    str(args.idle),
                    "--rate",
                    str(args.rate),
                    "--seconds",
                    str(args.seconds),
                    f"--token={token}",
                ],
                stdout=subprocess.PIPE,
            )
            for role in ("idle", "real")
        ]
        time.sleep(5)  # let the idle connections pile up first
        health_misses = 0
        for _ in range(args.rounds):
            flooded.append(bench.round("flood"))
            health_misses += 0 if healthy(args.port) else 1
        report["healthz missed during the flood"] = health_misses
        report["still running during the flood"] = up.poll() is None
        for role, flood in zip(("idle worker", "real worker"), floods, strict=True):
            out, _ = flood.communicate(timeout=args.seconds + 60)
            report[role] = orjson.loads(out.splitlines()[-1])
        report["healthz after"] = healthy(args.port)
        report["still running after"] = up.poll() is None
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(30)
        log.close()
        bench.cleanup()
    text = (tmp / "up.log").read_text()
    report["exit code"] = code
    report['"Too many open files" in the log'] = text.count("Too many open files")
    print(
        f"homelab up with RLIMIT_NOFILE {args.nofile}; flood: {args.idle} half-sent "
        f"connections + {args.rate} req/s for {args.seconds:.0f} s; log {tmp / 'up.log'}"
    )
    print(line("quiet", quiet))
    print(line("flood", flooded))
    print(f"ratio of medians: {statistics.median(flooded) / statistics.median(quiet):.2f}")
    for key, value in report.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
