"""Benchmark: `homelab plan` at 1,000 and 10,000 resources (prints figures, asserts nothing).

For each size it generates a git repository of Container manifests (one per
file, ~1.8 KB each, like a real compose service) and a runtime root whose
world is in sync with them, then measures in fresh processes:
  cold      plan with no cache (parse + validate everything)
  warm      plan in a new process with the persisted blob cache
  replan    in one warm process: commit a change to 1 file, plan again
  cli       `homelab plan` wall time, no cache (process start and imports included)
and the peak resident memory of the cold run. Run: .venv/bin/python hack/bench/plan_bench.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

MANIFEST = """\
# yaml-language-server: $schema=../schemas/homelab.json
apiVersion: homelab.reconciler/v1alpha1
kind: Container
metadata:
  name: svc-{i}
  labels:
    app: svc-{i}
    tier: backend
    team: homelab
  annotations:
    homelab.reconciler/owner: operator
    description: generated service number {i} for the plan benchmark
spec:
  node: local
  image: registry.example.com/team/app-{m}:1.{m}.0
  imagePullPolicy: IfNotPresent
  command: ["sh", "-c", "exec /app/server --port {port} --log-level info"]
  env:
    SERVICE_NAME: svc-{i}
    LOG_LEVEL: info
    DATABASE_URL: postgres://app@db.internal:5432/app{m}
    CACHE_URL: redis://cache.internal:6379/{m}
    FEATURE_FLAGS: alpha,beta,gamma
    TZ: Europe/Berlin
  ports:
    - containerPort: {port}
      hostPort: {port}
      protocol: tcp
    - containerPort: 9100
      protocol: tcp
  volumes:
    - source: /srv/homelab/svc-{i}/data
      target: /data
    - source: /srv/homelab/svc-{i}/config
      target: /config
      readOnly: true
  restartPolicy: unless-stopped
  labels:
    traefik.enable: "true"
    traefik.http.routers.svc-{i}.rule: Host-svc-{i}
  healthcheck:
    test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:{port}/health"]
    interval: 30s
    timeout: 5s
    retries: 3
    startPeriod: 10s
  networkMode: host
  user: "1000:1000"
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def generate(base: Path, count: int) -> tuple[Path, Path]:
    from reconciler.atomic_files import atomic_write_json
    from reconciler.planning import desired_specs
    from reconciler.resources.normalize import spec_hash
    from reconciler.runtime_root import RuntimeRoot
    from reconciler.sources.git import GitSource
    from reconciler.world import new_world_doc

    repo, root = base / "repo", RuntimeRoot(base / "root").ensure()
    (repo / "manifests").mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    for i in range(count):
        text = MANIFEST.format(i=i, m=i % 50, port=10000 + i % 50000)
        (repo / "manifests" / f"svc-{i:05d}.yaml").write_text(text)
    git(repo, "add", "-A")
    git(repo, "-c", "user.email=b@b", "-c", "user.name=bench", "commit", "-qm", "gen")
    source = GitSource(repo)
    state = source.load()
    desired, errors, _ = desired_specs(source, state, root)
    assert not errors, errors[:3]
    for (kind, name), spec in desired.items():
        doc = new_world_doc(kind, name)
        doc["status"].update(exists=True, managed=True, observed=spec, basis=spec_hash(spec))
        atomic_write_json(root.world / kind / f"{name}.json", doc, durable=False)
    return repo, root.path


def child(scenario: str, repo: Path, root: Path) -> None:
    from reconciler.planning import compute_plan
    from reconciler.runtime_root import RuntimeRoot
    from reconciler.sources.blobcache import BlobCache
    from reconciler.sources.git import GitSource
    from reconciler.world import WorldReader

    runtime = RuntimeRoot(root)
    out: dict[str, float] = {}
    cache = BlobCache(runtime.cache if scenario != "cold" else None)
    start = time.perf_counter()
    source = GitSource(repo, cache=cache)
    reader = WorldReader(runtime)
    result = compute_plan(source, runtime, world_reader=reader)
    out["plan_s"] = time.perf_counter() - start
    out["changes"] = len(result.plan.changes)
    if scenario == "replan":
        victim = repo / "manifests" / "svc-00007.yaml"
        victim.write_text(victim.read_text().replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
        git(repo, "-c", "user.email=b@b", "-c", "user.name=bench", "commit", "-qam", "one")
        start = time.perf_counter()
        result = compute_plan(source, runtime, world_reader=reader)
        out["replan_s"] = time.perf_counter() - start
        out["changes"] = len(result.plan.changes)
        git(repo, "reset", "-q", "--hard", "HEAD~1")
    out["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(out))


def run_child(scenario: str, repo: Path, root: Path) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", scenario, str(repo), str(root)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench(count: int) -> None:
    base = Path(tempfile.mkdtemp(prefix=f"plan-bench-{count}-"))
    try:
        t0 = time.perf_counter()
        repo, root = generate(base, count)
        os.sync()  # let the generated files reach the disk before anything is timed
        size = sum(p.stat().st_size for p in (repo / "manifests").iterdir()) / 1e6
        print(
            f"\n{count} resources ({size:.1f} MB of YAML; setup {time.perf_counter() - t0:.1f} s)"
        )
        shutil.rmtree(root / "cache", ignore_errors=True)
        cold = run_child("cold", repo, root)
        print(
            f"  cold plan (no cache):        {cold['plan_s']:.3f} s, peak {cold['peak_mb']:.0f} MB"
        )
        run_child("warm", repo, root)  # fills the persisted cache
        warm = run_child("warm", repo, root)
        print(
            f"  warm plan (persisted cache): {warm['plan_s']:.3f} s, peak {warm['peak_mb']:.0f} MB"
        )
        replan = run_child("replan", repo, root)
        print(
            f"  re-plan after 1-file commit: {replan['replan_s']:.3f} s "
            f"({int(replan['changes'])} change)"
        )
        shutil.rmtree(root / "cache", ignore_errors=True)
        start = time.perf_counter()
        subprocess.run(
            [
                str(Path(sys.executable).parent / "homelab"),
                "plan",
                "--repo",
                str(repo),
                "--root",
                str(root),
            ],
            check=True,
            capture_output=True,
        )
        shutil.rmtree(root / "cache", ignore_errors=True)
        print(f"  `homelab plan` CLI, cold:    {time.perf_counter() - start:.3f} s wall")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", nargs=3, metavar=("SCENARIO", "REPO", "ROOT"))
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    for size in args.sizes.split(","):
        bench(int(size))


if __name__ == "__main__":
    main()
