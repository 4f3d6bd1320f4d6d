"""Benchmark: what a converged, idle homelab costs (events written, CPU, memory, wake-ups).

Copies the bundled example repository (`manifests/` and `compose/`: three
Containers, one with a 5 s healthcheck, a File and a ComposeStack) into a
temporary folder, points it at the engine in $DOCKER_HOST (the example's
host port 18080 and `/tmp/homelab-example` moved to free, private ones so
two runs on one machine do not collide), commits it and starts `homelab up`
on a temporary runtime root with the UI on port 19050. It approves every
proposed action with `homelab actions approve ID --as bench` until nothing
is pending and every resource is in sync, lets it settle, then measures over
`--seconds` (default 300, the issue's five minutes): the events written (all
producers, by type), the CPU of the whole `homelab up` process tree (utime +
stime of the process, of its children reaped meanwhile and of those still
alive, from /proc, % of one core), its RSS, and per thread the CPU and the
context switches (wake-ups), named through `py-spy dump` when py-spy is
installed (`pip install py-spy`). `--engine-pid` adds the engine's own CPU
(the collector's event stream costs the daemon too). Then it stops the
`worker` container by hand (`docker stop`) and times until the world says
so (the observer's "seen within a few seconds"; `--stops` rounds, each
started again by hand). Prints the figures and the
issue's targets; asserts nothing. Run:
DOCKER_HOST=unix:///tmp/homelab-dev/docker.sock .venv/bin/python hack/bench/idle.py
[--seconds 300] [--engine-pid PID]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
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

CHECKOUT = Path(__file__).resolve().parents[2]
HOMELAB = str(Path(sys.executable).parent / "homelab")
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def example_repo(tmp: Path, docker_host: str, web_port: int) -> Path:
    """The bundled example, committed, on this engine, a private port and folder."""
    repo = tmp / "repo"
    for folder in ("manifests", "compose"):
        shutil.copytree(CHECKOUT / folder, repo / folder)
    for path in (repo / "manifests").rglob("*.yaml"):
        text = path.read_text()
        text = text.replace("unix:///var/run/docker.sock", docker_host)
        text = text.replace("18080", str(web_port)).replace("/tmp/homelab-example", str(tmp))
        path.write_text(text)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=bench", "-c", "user.email=bench@invalid", "commit", "-qm", "example")
    return repo


def homelab(root: Path, *args: str) -> str:
    out = subprocess.run(
        [HOMELAB, *args, "--root", str(root)], check=True, capture_output=True, text=True
    )
    return out.stdout


def converged(root: Path) -> bool:
    """Nothing live in the queue and the supervisor sees every resource in sync."""
    pending = orjson.loads(homelab(root, "actions", "list", "--json", "--state", "pending"))
    for action in pending:
        homelab(root, "actions", "approve", action["id"], "--as", "bench")
    if pending or orjson.loads(homelab(root, "actions", "list", "--json")):
        return False
    try:
        status = orjson.loads((root / "state" / "supervisor_status.json").read_bytes())
    except (OSError, ValueError):
        return False
    resources = status.get("resources") or {}
    return bool(resources) and all(r.get("status") == "InSync" for r in resources.values())


def _stat(pid: int | str, task: str = "") -> list[str]:
    path = f"/proc/{pid}/task/{task}/stat" if task else f"/proc/{pid}/stat"
    return Path(path).read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime (fields 14, 15)


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (children, their children...)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                children[int(_stat(entry.name)[1])].append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU of `pid`, of its children already reaped (cutime, cstime) and of live descendants."""
    total = 0.0
    for member in [pid, *descendants(pid)]:
        with contextlib.suppress(OSError):
            fields = _stat(member)
            total += sum(int(f) for f in fields[11:15]) / TICKS  # utime stime cutime cstime
    return total


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1e6


def threads(pid: int) -> dict[int, tuple[float, int]]:
    """Per thread id: (CPU seconds, context switches voluntary + involuntary)."""
    out: dict[int, tuple[float, int]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError):
            fields = _stat(pid, task.name)
            status = (task / "status").read_text()
            switches = sum(
                int(line.split()[1]) for line in status.splitlines() if "ctxt_switches" in line
            )
            out[int(task.name)] = ((int(fields[11]) + int(fields[12])) / TICKS, switches)
    return out


def thread_names(pid: int) -> dict[int, str]:
    """Thread id -> Python thread name, from `py-spy dump` (empty without py-spy)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    try:
        out = subprocess.run(
            [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    names = {}
    for match in re.finditer(r'^Thread (0x[0-9A-Fa-f]+|\d+) \((\w+)\): "([^"]*)"', out, re.M):
        ident = match.group(1)
        with contextlib.suppress(ValueError):
            names[int(ident, 16) if ident.startswith("0x") else int(ident)] = match.group(3)
    return names


def log_sizes(root: Path) -> dict[Path, int]:
    return {path: path.stat().st_size for path in (root / "events").glob("*/*.jsonl")}


def lines_since(sizes: dict[Path, int], root: Path) -> list[bytes]:
    """Lines appended to every event file since `sizes` was taken (new files whole)."""
    lines: list[bytes] = []
    for path in sorted((root / "events").glob("*/*.jsonl")):
        with path.open("rb") as fh:
            fh.seek(sizes.get(path, 0))
            lines.extend(fh.read().splitlines())
    return lines


def measure(pid: int, root: Path, seconds: float, engine_pid: int | None) -> None:
    sizes = log_sizes(root)
    names = thread_names(pid)
    threads0 = threads(pid)
    engine0 = tree_cpu_seconds(engine_pid) if engine_pid else 0.0
    cpu0, t0 = tree_cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = tree_cpu_seconds(pid), time.monotonic()
    threads1 = threads(pid)
    engine1 = tree_cpu_seconds(engine_pid) if engine_pid else 0.0
    new = lines_since(sizes, root)
    elapsed = t1 - t0
    by_type: collections.Counter[str] = collections.Counter()
    for line in new:
        event = orjson.loads(line)
        ref = event.get("ref") or {}
        by_type[f"{event['type']} {ref.get('kind', '')}/{ref.get('name', '')}".rstrip("/")] += 1
    size = sum(len(line) + 1 for line in new)
    print(f"window: {elapsed:.0f} s, converged and idle")
    print(f"events written: {len(new)} ({size / 1000:.1f} KB), {len(new) / elapsed * 60:.1f}/min")
    for key, count in by_type.most_common():
        print(f"  {count:5d}  {key}")
    tree = [pid, *descendants(pid)]
    print(
        f"CPU of the `homelab up` tree ({len(tree)} processes now): "
        f"{(cpu1 - cpu0) / elapsed * 100:.2f} % of one core"
    )
    rss = sum(rss_mb(p) for p in tree if Path(f"/proc/{p}").exists())
    print(f"RSS of `homelab up`: {rss_mb(pid):.0f} MB (tree {rss:.0f} MB)")
    if engine_pid:
        print(f"CPU of the engine (pid {engine_pid}): {(engine1 - engine0) / elapsed * 100:.2f} %")
    print(f"threads ({len(threads1)}): wake-ups/min and CPU % over the window")
    rows = []
    for tid, (cpu, switches) in threads1.items():
        before = threads0.get(tid, (0.0, 0))
        rows.append((switches - before[1], cpu - before[0], tid))
    for switches, cpu, tid in sorted(rows, reverse=True):
        name = names.get(tid, "?")
        print(f"  {switches / elapsed * 60:8.1f}/min  {cpu / elapsed * 100:5.2f} %  {tid} {name}")
    print("targets: at most 10 events/min, under 0.5 % of one core")


def _world_health(doc: Path) -> str | None:
    with contextlib.suppress(OSError, ValueError):
        return (orjson.loads(doc.read_bytes()).get("status") or {}).get("health")
    return None


def stop_latency(root: Path, docker_host: str, rounds: int, name: str = "worker") -> None:
    """`docker stop` one managed container by hand; time until its world document says so."""
    client = docker.DockerClient(base_url=docker_host)
    instance = (root / "state" / "instance_id").read_text().strip()
    labels = [f"homelab.reconciler/instance={instance}", f"homelab.reconciler/name={name}"]
    (container,) = client.containers.list(filters={"label": labels})
    doc = root / "world" / "Container" / f"{name}.json"
    seen: list[float] = []
    for _ in range(rounds):
        container.stop(timeout=0)
        stopped = time.monotonic()
        while _world_health(doc) != "Stopped" and time.monotonic() - stopped < 60:
            time.sleep(0.005)
        if _world_health(doc) == "Stopped":
            seen.append(time.monotonic() - stopped)
        container.start()
        began = time.monotonic()
        while _world_health(doc) != "Healthy" and time.monotonic() - began < 60:
            time.sleep(0.05)
        time.sleep(1.0)
    if not seen:
        print("stopped by hand: NOT seen in the world within 60 s")
        return
    print(
        f"stopped by hand ({len(seen)}/{rounds} seen): in the world "
        f"{statistics.median(seen):.3f} s "
        f"after `docker stop` returned (median; {min(seen):.3f}-{max(seen):.3f} s)"
    )


def main() -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=300.0, help="measurement window")
    parser.add_argument("--port", type=int, default=19050, help="UI port")
    parser.add_argument("--web-port", type=int, default=19051, help="the example web's port")
    parser.add_argument("--settle", type=float, default=20.0, help="wait after convergence")
    parser.add_argument("--engine-pid", type=int, default=None, help="also measure this dockerd")
    parser.add_argument("--stops", type=int, default=5, help="rounds of stop-by-hand latency")
    args = parser.parse_args()
    docker_host = os.environ.get("DOCKER_HOST")
    if not docker_host:
        raise SystemExit("set DOCKER_HOST to the engine to use (hack/dev-daemons.sh env)")
    tmp = Path(tempfile.mkdtemp(prefix="idle-bench-"))
    root = tmp / "root"
    repo = example_repo(tmp, docker_host, args.web_port)
    log = (tmp / "up.log").open("wb")
    cmd = [HOMELAB, "up", "--repo", str(repo), "--root", str(root), "--port", str(args.port)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while not (root / "state" / "supervisor_status.json").exists() or not converged(root):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"did not converge; see {tmp / 'up.log'}")
            time.sleep(1.0)
        took = 180 - (deadline - time.monotonic())
        print(f"converged in {took:.0f} s; settling {args.settle:.0f} s")
        time.sleep(args.settle)
        measure(proc.pid, root, args.seconds, args.engine_pid)
        stop_latency(root, docker_host, args.stops)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        client = docker.DockerClient(base_url=docker_host)
        instance = (root / "state" / "instance_id").read_text().strip()
        label = f"homelab.reconciler/instance={instance}"
        for container in client.containers.list(all=True, filters={"label": label}):
            container.remove(force=True)
        for container in client.containers.list(
            all=True, filters={"label": "com.docker.compose.project=whoami"}
        ):
            container.remove(force=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
