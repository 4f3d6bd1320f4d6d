"""Figures of the git webhook and of the signed-commit gate.

1. Webhook: the real app served by uvicorn on loopback, with the secret in
   ROOT/secrets/git-webhook; `--hooks` signed GitHub push deliveries (each a
   new body, from four loopback addresses so the rate limit of 30 a minute
   per address and 120 in all is not hit). Per request: from sending it to
   the 202, by which time the fetch request file is written (checked). The
   follower's part (fetch -> plan -> pending) is `hack/bench/source_latency.py`.
2. Gate: `git verify-commit` of SSH-signed commits (a fresh verdict each) and
   `SignedCommitGate.decide` with the verdict cached (what every supervisor
   wake-up pays).

    .venv/bin/python hack/bench/hooks_bench.py [--hooks 100] [--commits 20] [--port 18690]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import orjson

from reconciler.api.config import UISettings
from reconciler.api.server import UIService
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.fetch_signal import fetch_request_path, take_fetch_request
from reconciler.sources.signatures import SignedCommitGate, signing_dir

SECRET = b"bench-secret-5b0e1c"
ADDRESSES = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")


def figures(name: str, values: list[float]) -> str:
    ms = sorted(v * 1000 for v in values)
    p90 = ms[int(len(ms) * 0.9) - 1] if len(ms) >= 10 else ms[-1]
    return (
        f"{name}: n={len(ms)} median {statistics.median(ms):.2f} ms, p90 {p90:.2f} ms, "
        f"range {ms[0]:.2f}-{ms[-1]:.2f} ms"
    )


def bench_hooks(work: Path, count: int, port: int) -> None:
    root = RuntimeRoot(work / "root").ensure()
    (root.secrets / "git-webhook").write_bytes(SECRET)
    stop = threading.Event()
    with open("/dev/null", "w") as out:
        service = UIService(UISettings(root=root, port=port), out=out)
        thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        clients = [
            httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=a), timeout=10)
            for a in ADDRESSES
        ]
        took = []
        try:
            for i in range(count):
                body = orjson.dumps({"ref": "refs/heads/main", "after": f"{i:040x}", "n": i})
                headers = {
                    "Content-Type": "application/json",
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": str(uuid.uuid4()),
                    "X-Hub-Signature-256": "sha256="
                    + hmac.new(SECRET, body, hashlib.sha256).hexdigest(),
                }
                t0 = time.perf_counter()
                response = clients[i % len(clients)].post(
                    "/api/hooks/git", content=body, headers=headers
                )
                took.append(time.perf_counter() - t0)
                assert response.status_code == 202, response.text
                assert fetch_request_path(root).exists()
                take_fetch_request(root)
        finally:
            for client in clients:
                client.close()
            stop.set()
            thread.join(timeout=15)
    print(figures("webhook POST -> 202 with the fetch request written", took))


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    return done.stdout.decode().strip()


def bench_gate(work: Path, count: int) -> None:
    root = RuntimeRoot(work / "gate-root").ensure()
    key = work / "key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    signing_dir(root).mkdir()
    public = key.with_suffix(".pub").read_text().strip()
    (signing_dir(root) / "allowed_signers").write_text(f'bench namespaces="git" {public}\n')
    repo = work / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    for setting in ("user.email=b@example.invalid", "user.name=Bench", "gpg.format=ssh"):
        git(repo, "config", *setting.split("=", 1))
    git(repo, "config", "user.signingkey", str(key))
    commits = []
    for i in range(count):
        git(repo, "commit", "-q", "--allow-empty", "-S", "-m", f"c{i}")
        commits.append(git(repo, "rev-parse", "HEAD"))
    gate = SignedCommitGate(root, repo, require=True)
    fresh = []
    for commit in commits:
        t0 = time.perf_counter()
        decision = gate.decide(commit)
        fresh.append(time.perf_counter() - t0)
        assert decision.commit == commit and decision.verified
    cached = []
    for _ in range(200):
        t0 = time.perf_counter()
        gate.decide(commits[-1])
        cached.append(time.perf_counter() - t0)
    print(figures("gate, new tip (git verify-commit, SSH)", fresh))
    print(figures("gate, same tip (verdict cached)", cached))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hooks", type=int, default=100)
    parser.add_argument("--commits", type=int, default=20)
    parser.add_argument("--port", type=int, default=18690)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hooks-bench-") as tmp:
        bench_hooks(Path(tmp), args.hooks, args.port)
        bench_gate(Path(tmp), args.commits)


if __name__ == "__main__":
    main()
