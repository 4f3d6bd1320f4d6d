"""Benchmark: 1,000 File resources, half changed by hand (prints figures, asserts nothing).

Generates a git repository with a `local` Node (the engine in $DOCKER_HOST,
a temporary allowed root) and 1,000 File manifests (one a file, ~300 bytes
of content each, modes 0644/0640), writes those files as the executor
would, and builds the applied world the real way: the File collector's
`observed.resource` events in the event log, folded by
`WorldBuilder.rebuild` (world documents and checkpoint, as after a clean
stop). Then half of the files are changed on disk: a quarter get new
content, a quarter a new mode (0600). On a fresh copy of that runtime root
each run measures:
  refresh   `homelab plan --refresh` wall time (process start to exit), and
            that the plan holds exactly the 500 updates
  up        `homelab up` (all services in one process) from process start to
            the moment the queue holds exactly the 500 right pending `update`
            actions (checked by name), polled every 10 ms
  pyinfra   optional (`--pyinfra PATH`, a pyinfra executable in its own venv):
            `pyinfra @local deploy.py --dry` with one `files.put` (with mode) per
            file on the same 1,000 files
Several runs each (`--runs`, default 5): median and range, the machine drifts;
`--compare TREE` (another checkout, e.g. `git archive` of main) runs its
`homelab up` alternating with this tree's, run by run. Every process may
cache bytecode, as an installed copy does. Run:
DOCKER_HOST=unix:///tmp/homelab-dev/docker.sock .venv/bin/python
hack/bench/refresh_files.py [--runs 5] [--only up] [--compare TREE]
[--profile up|refresh] [--pyinfra PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

CHECKOUT = Path(__file__).resolve().parents[2]
COUNT = 1000
# Measured processes may cache their bytecode, as every installed copy does (pip
# compiles it); a shell with PYTHONDONTWRITEBYTECODE would recompile each import.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def homelab(tree: Path = CHECKOUT) -> tuple[list[str], dict[str, str]]:
    """The command and environment that run `homelab` from the source tree `tree`."""
    return [sys.executable, "-m", "reconciler"], {**ENV, "PYTHONPATH": str(tree)}


BODY = "# generated for the refresh benchmark, file {i}\n" + "key_{i} = value\n" * 16


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def name(i: int) -> str:
    return f"conf-{i:04d}"


def changed(i: int) -> str | None:
    """What is changed by hand on file i: half of them, content or mode."""
    return {0: "content", 2: "mode"}.get(i % 4)


def generate(base: Path, docker_host: str) -> tuple[Path, Path, Path]:
    """Repository, applied runtime root and the allowed root holding the files."""
    from reconciler.events.log import EventLog
    from reconciler.observer.collectors.file import FileCollector
    from reconciler.observer.collectors.node import DesiredFile
    from reconciler.observer.world_builder import WorldBuilder
    from reconciler.runtime_root import RuntimeRoot

    repo, srv = base / "repo", base / "srv"
    root = RuntimeRoot(base / "root").ensure()
    (repo / "manifests").mkdir(parents=True)
    srv.mkdir()
    node = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "Node",
        "metadata": {"name": "local"},
        "spec": {"dockerHost": docker_host, "allowedRoots": [str(srv)]},
    }
    (repo / "manifests" / "node.yaml").write_bytes(orjson.dumps(node) + b"\n")
    desired = []
    for i in range(COUNT):
        path, mode = srv / f"{name(i)}.conf", "0640" if i % 3 else "0644"
        doc = {
            "apiVersion": "homelab.reconciler/v1alpha1",
            "kind": "File",
            "metadata": {"name": name(i)},
            "spec": {"path": str(path), "content": BODY.format(i=i), "mode": mode},
        }
        (repo / "manifests" / f"{name(i)}.yaml").write_bytes(orjson.dumps(doc) + b"\n")
        path.write_text(BODY.format(i=i))
        path.chmod(int(mode, 8))
        # As the observer learns it from the manifest: `content:` files show their text.
        desired.append(DesiredFile(name(i), "local", str(path), show_content=True))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=b@b", "-c", "user.name=bench", "commit", "-qm", "gen")
    log = EventLog(root, "executor")  # the executor reports every file it wrote
    collector = FileCollector(lambda t, r, d: log.append(t, r, d))
    collector.learn({}, desired)
    collector.check({}, {"local"})
    log.close()
    builder = WorldBuilder(root)
    builder.lock()
    builder.rebuild()
    builder.unlock()
    # The supervisor of an applied homelab has filled the manifest cache.
    cmd, env = homelab()
    subprocess.run(
        [*cmd, "plan", "--repo", str(repo), "--root", str(root.path)],
        check=True,
        capture_output=True,
        env=env,
    )
    return repo, root.path, srv


def change_by_hand(srv: Path) -> set[str]:
    names = set()
    for i in range(COUNT):
        path = srv / f"{name(i)}.conf"
        what = changed(i)
        if what == "content":
            path.write_text(BODY.format(i=i) + "edited = by hand\n")
        elif what == "mode":
            path.chmod(0o600)
        if what:
            names.add(name(i))
    return names


def summary(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.2f} s, "
        f"range {min(values):.2f}-{max(values):.2f} s over {len(values)} runs"
    )


def profiled(cmd: list[str], profile: Path | None) -> list[str]:
    """`cmd` under cProfile (`*.prof`), or py-spy sampling every thread with the GIL (`*.txt`)."""
    if profile is not None and profile.suffix == ".txt":
        spy = str(Path(sys.executable).with_name("py-spy"))
        sampling = ["-r", "100", "--gil", "--threads", "-f", "raw", "-o", str(profile)]
        return [spy, "record", *sampling, "--", *cmd]
    if profile is not None:
        return [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "reconciler", *cmd[3:]]
    return cmd


def run_refresh(repo: Path, root: Path, profile: Path | None) -> tuple[float, str]:
    prefix, env = homelab()
    cmd = [*prefix, "plan", "--refresh", "--repo", str(repo), "--root", str(root)]
    cmd = profiled(cmd, profile)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    took = time.perf_counter() - t0
    return took, out.stdout.strip().splitlines()[-1] if out.stdout else out.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def pending(root: Path) -> list[Path]:
    try:
        return [
            Path(e.path)
            for e in os.scandir(root / "queue" / "pending")
            if e.name.endswith(".json") and not e.name.startswith(".")
        ]
    except FileNotFoundError:
        return []


def run_up(
    repo: Path,
    root: Path,
    want: set[str],
    profile: Path | None,
    tree: Path = CHECKOUT,
    timeout: float = 120,
) -> tuple[float, str]:
    prefix, env = homelab(tree)
    cmd = [*prefix, "up", "--repo", str(repo), "--root", str(root), "--port", str(free_port())]
    cmd = profiled(cmd, profile)
    logfile = (root.parent / f"{root.name}.log").open("wb")
    wall0, t0 = time.time(), time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, env=env)
    took, verdict = float("nan"), "timed out"
    try:
        while time.perf_counter() - t0 < timeout:
            found = pending(root)
            if len(found) >= len(want):
                took = time.perf_counter() - t0
                CPU.setdefault(tree, []).append(cpu_seconds(proc.pid))
                actions = [orjson.loads(p.read_bytes()) for p in found]
                got = {a["name"] for a in actions if a["kind"] == "File"}
                ops = {a["operation"] for a in actions}
                right = got == want and ops == {"update"} and len(actions) == len(want)
                verdict = f"{len(actions)} pending, operations {sorted(ops)}, " + (
                    "exactly the changed files" if right else "NOT the changed files"
                )
                break
            if proc.poll() is not None:
                verdict = f"homelab up exited {proc.returncode}"
                break
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logfile.close()
    TIMELINES.setdefault(tree, []).append(timeline(root.parent / f"{root.name}.log", wall0))
    return took, verdict


TIMELINES: dict[Path, list[dict[str, float]]] = {}
CPU: dict[Path, list[float]] = {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


MILESTONES = {  # `homelab up` logs `HH:MM:SS.mmm name: message` (cli/up_output.py)
    "services started": "homelab.services: ui: started",
    "observer resumed": "observer: observer: resumed",
    "first supervisor pass": "supervisor: pass at",
    "first proposal": "supervisor: proposed",
}


def timeline(log: Path, wall0: float) -> dict[str, float]:
    """Seconds from process start to the first log line of each milestone (and last proposal)."""
    out: dict[str, float] = {}
    for line in log.read_text(errors="replace").splitlines():
        try:
            clock = time.strptime(line[:8], "%H:%M:%S")
            millis = int(line[9:12]) / 1e3
        except ValueError:
            continue
        day = time.localtime(wall0)  # the run starts and ends on the same day (a few seconds)
        at = time.mktime(day[:3] + clock[3:6] + day[6:]) + millis
        for label, marker in MILESTONES.items():
            if marker in line and label not in out:
                out[label] = at - wall0
        if "supervisor: proposed" in line:
            out["last proposal"] = at - wall0
    return out


PYINFRA_DEPLOY = """\
from pyinfra.operations import files

for src, dest, mode in {items!r}:
    files.put(name=dest, src=src, dest=dest, mode=mode)
"""


def run_pyinfra(pyinfra: str, base: Path, srv: Path) -> tuple[float, str]:
    """`pyinfra @local deploy.py --dry`: put each desired file (from the repo's content)."""
    src = base / "pyinfra-src"
    src.mkdir(exist_ok=True)
    items = []
    for i in range(COUNT):
        (src / f"{name(i)}.conf").write_text(BODY.format(i=i))
        mode = "640" if i % 3 else "644"
        items.append((str(src / f"{name(i)}.conf"), str(srv / f"{name(i)}.conf"), mode))
    deploy = base / "deploy.py"
    deploy.write_text(PYINFRA_DEPLOY.format(items=items))
    t0 = time.perf_counter()
    out = subprocess.run([pyinfra, "@local", str(deploy), "--dry"], capture_output=True, text=True)
    took = time.perf_counter() - t0
    lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if "Detected changes" in line), len(lines))
    block = [line for line in lines[start : start + 8] if "@local" in line or "change" in line]
    return took, f"exit {out.returncode}: " + " | ".join(block or lines[-3:])


def bench_up(
    repo: Path,
    want: set[str],
    fresh_root: Callable[[int], Path],
    trees: list[Path],
    runs: int,
    profile: bool,
    base: Path,
) -> None:
    """`homelab up` to 500 pending, the trees alternating run by run (the machine drifts)."""
    times: dict[Path, list[float]] = {t: [] for t in trees}
    verdicts: dict[Path, list[str]] = {t: [] for t in trees}
    for tree in trees:
        run_up(repo, fresh_root(199), want, None, tree)  # warm-up: bytecode, page cache
        TIMELINES[tree] = []
    for run in range(runs):
        for k, tree in enumerate(trees):
            suffix = ".txt" if os.environ.get("BENCH_PYSPY") else ".prof"
            prof = base / f"up{suffix}" if profile and run == 0 and k == 0 else None
            took, verdict = run_up(repo, fresh_root(100 + run), want, prof, tree)
            times[tree].append(took)
            verdicts[tree].append(verdict)
    for tree in trees:
        label = "this tree" if tree == CHECKOUT else str(tree)
        print(f"  up -> 500 pending updates ({label}): {summary(times[tree])}  (target < 3 s)")
        if CPU.get(tree) and not profile:
            print(f"    CPU (user + system) until then: {summary(CPU[tree][-runs:])}")
        for verdict in sorted(set(verdicts[tree])):
            print(f"    {verdicts[tree].count(verdict)}x {verdict}")
        for milestone in (*MILESTONES, "last proposal"):
            values = [t[milestone] for t in TIMELINES[tree] if milestone in t]
            if values:
                print(f"    {milestone:>22}: median {statistics.median(values):.2f} s after start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=("refresh", "up", "pyinfra"), default=None)
    parser.add_argument("--profile", choices=("refresh", "up"), default=None)
    parser.add_argument("--pyinfra", default=None, help="a pyinfra executable (own venv)")
    parser.add_argument(
        "--compare", default=None, help="another source tree: its `up` alternates with ours"
    )
    args = parser.parse_args()
    docker_host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
    base = Path(tempfile.mkdtemp(prefix="refresh-bench-"))
    try:
        t0 = time.perf_counter()
        repo, template, srv = generate(base, docker_host)
        want = change_by_hand(srv)
        os.sync()
        print(
            f"{COUNT} File resources, {len(want)} changed by hand "
            f"(setup {time.perf_counter() - t0:.1f} s; load average "
            f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs)"
        )

        def fresh_root(run: int) -> Path:
            root = base / f"run-{run}"
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(template, root, symlinks=True)
            # A copy has new inodes, which the observer's checkpoint rightly takes
            # for rewritten logs: rebuild it (untimed), as the applied root had it.
            cmd, env = homelab()
            subprocess.run(
                [*cmd, "world", "rebuild", "--root", str(root)],
                check=True,
                capture_output=True,
                env=env,
            )
            os.sync()
            return root

        if args.only in (None, "refresh"):
            run_refresh(repo, fresh_root(99), None)  # warm-up: bytecode, page cache
            times, last = [], ""
            for run in range(args.runs):
                prof = base / "refresh.prof" if args.profile == "refresh" and run == 0 else None
                took, last = run_refresh(repo, fresh_root(run), prof)
                times.append(took)
            print(f"  plan --refresh: {summary(times)}  (target < 1 s); last: {last}")
            if args.profile == "refresh":
                print(f"  profile: {base / 'refresh.prof'} (kept)")
        if args.only in (None, "up"):
            trees = [CHECKOUT] + ([Path(args.compare)] if args.compare else [])
            bench_up(repo, want, fresh_root, trees, args.runs, args.profile == "up", base)
        if args.pyinfra and args.only in (None, "pyinfra"):
            times, last = [], ""
            for _ in range(max(1, min(args.runs, 3))):
                took, last = run_pyinfra(args.pyinfra, base, srv)
                times.append(took)
            print(f"  pyinfra @local --dry, 1,000 files.put: {summary(times)}; last: {last}")
    finally:
        if args.profile is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
