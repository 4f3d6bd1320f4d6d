"""Real HTTP receivers on loopback and the real notifier process, for the notify tests.

`Receiver` is a stdlib `ThreadingHTTPServer` on 127.0.0.1 port 0 that keeps
every request: Apprise's `json://` and `form://` posts land on any path, an
ntfy-compatible endpoint on `/` (Apprise's ntfy plugin posts JSON with the
topic there). Paths starting `/fail` answer 500, `/hang` hold the request
until the receiver closes. `Notifier` runs `homelab run notifier` as a
subprocess with short timings, and can kill it with SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from reconciler.runtime_root import RuntimeRoot
from tests.conftest import GitRepo

HOMELAB = str(Path(sys.executable).parent / "homelab")


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def fields(self) -> dict[str, Any]:
        """The posted message: JSON, or form fields."""
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            return dict(urllib.parse.parse_qsl(self.body.decode()))
        data: dict[str, Any] = json.loads(self.body)
        return data

    @property
    def title(self) -> str:
        return str(self.fields.get("title", ""))

    @property
    def text(self) -> str:
        return str(self.fields.get("message", ""))


@dataclass
class Receiver:
    server: ThreadingHTTPServer
    got: list[Received] = field(default_factory=list)
    attempts: list[Received] = field(default_factory=list)  # failing and hanging ones too
    closing: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def wait(self, count: int, path: str | None = None, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.on(path)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"expected {count} messages on {path}, got {self.on(path)}")

    def on(self, path: str | None) -> list[Received]:
        return [r for r in list(self.got) if path is None or r.path.startswith(path)]

    def tried(self, path: str) -> list[Received]:
        return [r for r in list(self.attempts) if r.path.startswith(path)]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            item = Received(time.time(), self.path, dict(self.headers), self.rfile.read(size))
            receiver.attempts.append(item)
            if self.path.startswith("/fail"):
                self.send_response(500)
                self.end_headers()
                return
            if self.path.startswith("/hang"):
                receiver.closing.wait(60)
                return
            receiver.got.append(item)
            body = b'{"id": "x", "event": "message"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_PUT = do_POST

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    rec = Receiver(server)
    server.RequestHandlerClass = _handler(rec)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    rec.closing.set()
    server.shutdown()
    server.server_close()


def homelab_yaml(repo: GitRepo, targets: str) -> None:
    repo.write("homelab.yaml", "notifications:\n" + targets)


def file_manifest(repo: GitRepo, name: str, where: Path) -> None:
    repo.write(
        f"manifests/{name}.yaml",
        f"""\
        apiVersion: homelab.reconciler/v1alpha1
        kind: File
        metadata: {{name: {name}}}
        spec: {{path: {where}/{name}.txt, content: hello}}
        """,
    )


def read_events(root: RuntimeRoot, etype: str | None = None) -> list[dict[str, Any]]:
    out = []
    for path in sorted(root.events.glob("*/*.jsonl")):
        for line in path.read_bytes().splitlines():
            if line.strip():
                event = json.loads(line)
                if etype is None or event["type"] == etype:
                    out.append(event)
    return sorted(out, key=lambda e: e["id"])


def wait_for(check: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}")


FAST = ["--quiet", "0.5", "--max-wait", "2", "--backoff", "0.3", "--attempts", "3"]


class Notifier:
    """`homelab run notifier` as its own process (stdout and stderr kept in a file)."""

    def __init__(self, repo: GitRepo, root: RuntimeRoot, log: Path, *extra: str) -> None:
        self.repo, self.root, self.log = repo, root, log
        self.extra = list(extra)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Notifier:
        env = dict(os.environ, HOMELAB_ROOT=str(self.root.path))
        args = [HOMELAB, "run", "notifier", "--repo", str(self.repo.path), "-v", *FAST]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([*args, *self.extra], env=env, stdout=out, stderr=out)
        checkpoint = self.root.state / "notifier_checkpoint.json"
        status = self.root.state / "notifier_status.json"
        began = time.time()
        wait_for(
            lambda: (
                checkpoint.exists()
                and status.exists()
                and status.stat().st_mtime >= began
                and self.proc is not None
                and self.proc.poll() is None
            ),
            what="the notifier to start",
        )
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)

    def status(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.root.state / "notifier_status.json").read_text())
        return data


@pytest.fixture
def notifiers(git_repo: GitRepo, runtime_root: RuntimeRoot, tmp_path: Path) -> Iterator[Any]:
    started: list[Notifier] = []

    def make(*extra: str) -> Notifier:
        n = Notifier(git_repo, runtime_root, tmp_path / "notifier.log", *extra)
        started.append(n)
        return n

    yield make
    for n in started:
        if n.proc is not None and n.proc.poll() is None:
            n.proc.kill()
            n.proc.wait(10)
