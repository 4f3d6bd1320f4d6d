"""Following a remote repository through real servers on loopback (none mocked).

For git daemon (git://), nginx + fcgiwrap + git http-backend with basic auth
(http://), sshd with a deploy key and a pinned host key (ssh://) and file://:
a push becomes a pending action; a wrong credential gives SourceReady=False
with a readable reason and no deletes; the server stopped and started again
is followed without restarting anything. Plus force pushes, the fetch
timeout, fetch requests, first-use host-key pinning, `homelab plan` with a
URL, and credentials absent from everything the control plane writes or
serves.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler.atomic_files import atomic_write_json
from reconciler.errors import ConfigError, GitError
from reconciler.queue import ActionQueue
from reconciler.queue.action import now_iso
from reconciler.resources.normalize import spec_hash
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.fetch_signal import request_fetch
from reconciler.sources.follow import FollowSettings, commit_in_force, read_status, source_gate
from reconciler.sources.remote import Remote, is_remote, mirror_name, redact
from reconciler.supervisor.service import Supervisor, SupervisorSettings
from reconciler.world import new_world_doc, world_path
from tests.sources.git_servers import (
    PASSWORD,
    SERVERS,
    WRONG_PASSWORD,
    FileRemote,
    HttpGit,
    Server,
    SshGit,
    Upstream,
    free_port,
)

HOMELAB = str(Path(sys.executable).parent / "homelab")
FAST = FollowSettings(poll=0.5, jitter=0.1, timeout=15.0, max_backoff=1.0)


def wait_for(check: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what} not met within {timeout}s"
        time.sleep(0.05)


class Plane:
    """A runtime root and the supervisor that follows the remote, in a thread."""

    def __init__(self, root: RuntimeRoot, remote: Remote) -> None:
        self.root = root
        self.remote = remote
        self.queue = ActionQueue(root)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        atomic_write_json(  # the Compose layout: the world is complete once caught up
            root.state / "observer_status.json",
            {"caughtUp": True, "dockerCollectors": False, "nodes": {}, "updatedAt": now_iso()},
        )

    def start(self) -> Plane:
        remote = self.remote
        settings = SupervisorSettings(debounce_ms=50)
        supervisor = Supervisor(
            remote.mirror, self.root, None, settings, remote=remote, follow=FAST
        )
        self.thread = threading.Thread(target=supervisor.run, args=(self.stop,), daemon=True)
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(20)

    def pending(self, name: str, operation: str = "create") -> bool:
        return any(
            a.name == name and a.operation == operation for a in self.queue.actions("pending")
        )

    def status(self) -> dict[str, Any]:
        return read_status(self.root) or {}

    def events(self, prefix: str) -> list[dict[str, Any]]:
        found = []
        for path in sorted(self.root.events.glob("*/*.jsonl")):
            for line in path.read_bytes().splitlines():
                event = orjson.loads(line)
                if event["type"].startswith(prefix):
                    found.append(event)
        return found

    def orphan(self, name: str) -> None:
        """A managed File the world holds but no manifest wants: a delete, once allowed."""
        spec = {"node": "local", "path": f"/tmp/{name}.txt", "mode": "0644", "sha256": "sha256:0"}
        doc = new_world_doc("File", name)
        doc["status"].update(
            exists=True,
            managed=True,
            observed=spec,
            observedAt=now_iso(),
            basis=spec_hash(spec),
            health="Healthy",
        )
        atomic_write_json(world_path(self.root, "File", name), doc)


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    up = Upstream(tmp_path / "remote")
    up.file("a")
    up.push("first")
    return up


@pytest.fixture
def root(tmp_path: Path) -> RuntimeRoot:
    return RuntimeRoot(tmp_path / "root").ensure()


def _server(kind: str, upstream: Upstream, tmp_path: Path) -> Iterator[Server]:
    server = SERVERS[kind](upstream, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest, upstream: Upstream, tmp_path: Path) -> Iterator[Server]:
    yield from _server(request.param, upstream, tmp_path)


@pytest.fixture(params=["http", "ssh"])
def auth_server(
    request: pytest.FixtureRequest, upstream: Upstream, tmp_path: Path
) -> Iterator[Server]:
    yield from _server(request.param, upstream, tmp_path)


def secret_free(root: RuntimeRoot, texts: list[str] | None = None) -> None:
    """No credential anywhere the control plane writes (secrets/ aside) or in `texts`."""
    needles = [PASSWORD, WRONG_PASSWORD, "PRIVATE KEY"]
    for path in root.path.rglob("*"):
        if path.is_file() and root.secrets not in path.parents:
            data = path.read_bytes()
            for needle in needles:
                assert needle.encode() not in data, f"{needle!r} found in {path}"
    for text in texts or []:
        for needle in needles:
            assert needle not in text


def test_a_push_becomes_a_pending_action_and_an_outage_is_followed(
    server: Server, upstream: Upstream, root: RuntimeRoot
) -> None:
    server.credentials(root)
    plan = subprocess.run(
        [HOMELAB, "plan", "--repo", server.url, "--root", str(root.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert plan.returncode == 0, plan.stderr
    assert "SourceReady=True" in plan.stdout and "+ File/a" in plan.stdout
    remote = Remote(server.url, root)
    assert remote.branch() == "main"  # the remote's HEAD, asked once
    plane = Plane(root, remote).start()
    try:
        wait_for(lambda: plane.pending("a"), what="File/a pending")
        upstream.file("b")
        pushed = upstream.push("add b")
        wait_for(lambda: plane.pending("b"), what="File/b pending after the push")
        assert commit_in_force(root, remote.mirror) == pushed
        assert plane.status()["ready"] is True
        assert plane.events("source.fetched")[-1]["data"]["to"] == pushed

        server.stop()
        down = wait_for(lambda: plane.status().get("ready") is False, what="SourceReady=False")
        status = plane.status()
        assert down and status["error"] and server.url.split("//")[0] in status["error"]
        assert status["commit"] == pushed  # the last fetched commit stays in force
        assert source_gate(root) is not None
        # The follower writes its status before the event reaches the log: wait for both.
        assert wait_for(lambda: plane.events("source.fetch_failed"), what="source.fetch_failed")
        server.start()
        upstream.file("c")
        upstream.push("add c")
        wait_for(lambda: plane.pending("c"), what="File/c pending after the server came back")
        assert plane.status()["ready"] is True and plane.events("source.recovered")
    finally:
        plane.close()
    secret_free(root, [plan.stdout, plan.stderr])


def test_a_wrong_credential_is_not_ready_with_a_reason_and_withholds_deletes(
    auth_server: Server, upstream: Upstream, root: RuntimeRoot
) -> None:
    auth_server.credentials(root, good=True)
    remote = Remote(auth_server.url, root)
    remote.fetch(15)
    plane = Plane(root, remote).start()
    try:
        wait_for(lambda: plane.pending("a"), what="File/a pending")
        auth_server.credentials(root, good=False)
        request_fetch(root, "test")
        wait_for(lambda: plane.status().get("ready") is False, what="SourceReady=False")
        error = plane.status()["error"]
        http = isinstance(auth_server, HttpGit)
        reason = "Authentication failed" if http else "Permission denied"
        assert reason in error, error
        plane.orphan("old")  # the plan now has a delete, and the source is not ready
        sup = root.state / "supervisor_status.json"
        wait_for(
            lambda: "deletes withheld: source not ready" in sup.read_text(),
            what="the supervisor withholding the delete",
        )
        assert not plane.pending("old", "delete")
        auth_server.credentials(root, good=True)
        request_fetch(root, "test")
        wait_for(lambda: plane.pending("old", "delete"), what="the delete once the source is ready")
        assert plane.status()["ready"] is True
    finally:
        plane.close()
    secret_free(root, [error])


def test_credentials_never_show_in_the_ui_metrics_or_plan(
    upstream: Upstream, root: RuntimeRoot, tmp_path: Path
) -> None:
    from tests.api.conftest import serve

    http = HttpGit(upstream, tmp_path)
    http.start()
    try:
        http.credentials(root, good=False)
        plane = Plane(root, Remote(http.url, root))
        with pytest.raises(GitError) as refused:
            plane.remote.fetch(15)
        assert PASSWORD not in str(refused.value) and WRONG_PASSWORD not in str(refused.value)
        http.credentials(root, good=True)
        plan = subprocess.run(
            [HOMELAB, "plan", "--json", "--repo", http.url, "--root", str(root.path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert plan.returncode == 0, plan.stderr
        doc = orjson.loads(plan.stdout)
        assert doc["source"]["ready"] is True and doc["source"]["url"] == http.url
        http.credentials(root, good=False)
        failed = subprocess.run(
            [HOMELAB, "plan", "--repo", http.url, "--root", str(root.path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert "SourceReady=False" in failed.stdout + failed.stderr
        assert "Authentication failed" in failed.stdout + failed.stderr
        srv = serve(root)
        try:
            with srv.client() as client:
                summary = client.get("/summary").json()
                metrics = client.get("/metrics").text
                page = client.get("/").text
        finally:
            srv.close()
        assert summary["source"]["ready"] is False
        assert "Authentication failed" in summary["source"]["error"]
        assert "homelab_source_ready 0" in metrics
        assert "homelab_source_last_success_timestamp" in metrics
        assert "homelab_source_fetch_seconds" in metrics
        assert "SourceReady=False" in page and http.url in page
        texts = [plan.stdout, plan.stderr, failed.stdout, failed.stderr, metrics, page]
        secret_free(root, [*texts, orjson.dumps(summary).decode()])
    finally:
        http.stop()


def test_a_password_in_the_url_is_refused_without_echoing_it(root: RuntimeRoot) -> None:
    url = f"https://deploy:{PASSWORD}@git.invalid/me/homelab.git"
    with pytest.raises(ConfigError) as caught:
        Remote(url, root)
    assert PASSWORD not in str(caught.value) and "ROOT/secrets/git-password" in str(caught.value)
    proc = subprocess.run(
        [HOMELAB, "validate", "--repo", url, "--root", str(root.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and PASSWORD not in proc.stdout + proc.stderr
    assert "contains a password" in proc.stderr
    assert redact(f"fatal: unable to access '{url}'") == (
        "fatal: unable to access 'https://***@git.invalid/me/homelab.git'"
    )


def test_urls_and_mirror_names(root: RuntimeRoot) -> None:
    for url in (
        "https://git.lan/me/homelab.git",
        "http://git.lan/me/homelab",
        "ssh://git@git.lan:2222/me/homelab.git",
        "git@github.com:me/homelab.git",
        "git://127.0.0.1/upstream.git",
        "file:///srv/git/homelab.git",
    ):
        assert is_remote(url), url
        name = mirror_name(url)
        assert name.endswith(".git") and "/" not in name and not name.startswith(".")
        assert Remote(url, root).mirror.parent == root.path / "git"
    for path in ("/srv/homelab", "./homelab", "homelab", "C:/x"):
        assert not is_remote(path)
    assert mirror_name("file:///../../etc") != mirror_name("file:///etc")
    assert ".." not in mirror_name("https://h/../../x")
    with pytest.raises(ConfigError):
        Remote("https://git.lan/me/x.git", root, branch="--upload-pack=evil")


def test_a_force_push_is_accepted_recorded_and_shown(
    upstream: Upstream, root: RuntimeRoot, tmp_path: Path
) -> None:
    from tests.api.conftest import serve

    remote_server = FileRemote(upstream, tmp_path)
    remote = Remote(remote_server.url, root)
    first = remote.fetch(15)
    assert first.old is None and not first.forced
    upstream.file("b")
    upstream.push("b")
    assert not remote.fetch(15).forced  # a descendant
    before = remote.tip()
    upstream.work.git("reset", "-q", "--hard", "HEAD~1")
    upstream.file("rewritten", "x")
    rewritten = upstream.push("rewritten", force=True)
    plane = Plane(root, remote).start()
    try:
        wait_for(lambda: plane.events("source.force_pushed"), what="the force-push event")
        event = plane.events("source.force_pushed")[0]
        assert event["data"]["from"] == before and event["data"]["to"] == rewritten
        assert plane.status()["lastForcePush"]["from"] == before
        assert commit_in_force(root, remote.mirror) == rewritten  # what the remote says
        wait_for(lambda: plane.pending("rewritten"), what="the rewritten tip planned")
    finally:
        plane.close()
    srv = serve(root)
    try:
        with srv.client() as client:
            page = client.get("/").text
            summary = client.get("/summary").json()
    finally:
        srv.close()
    assert "History rewritten" in page and before in page and rewritten in page
    assert summary["source"]["forcePushFrom"] == before
    assert summary["source"]["forcePushTo"] == rewritten


def test_a_fetch_that_hangs_is_cut_at_the_timeout(root: RuntimeRoot) -> None:
    port = free_port()
    with socket.socket() as sock:  # accepts connections, never answers
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sock.listen(8)
        remote = Remote(f"git://127.0.0.1:{port}/x.git", root, "main")
        started = time.monotonic()
        with pytest.raises(GitError, match="timed out after 1s"):
            remote.fetch(timeout=1.0)
        assert time.monotonic() - started < 5


def test_an_unpinned_ssh_host_key_is_refused_unless_first_use_pinning_is_asked(
    upstream: Upstream, root: RuntimeRoot, tmp_path: Path
) -> None:
    ssh = SshGit(upstream, tmp_path)
    ssh.start()
    try:
        ssh.credentials(root, pin=False)
        with pytest.raises(GitError, match="Host key verification failed"):
            Remote(ssh.url, root).fetch(15)
        (root.path / "git" / "known_hosts").write_text(
            f"[127.0.0.1]:{ssh.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2fTzXl1QLcp0XSFoVb"
            "5d0Yv7hv2RUHmb6l0vfTZ3Ty\n"
        )  # another key pinned for this host: refused even with first-use pinning
        with pytest.raises(GitError, match=r"Host key verification failed|HOST IDENTIFICATION"):
            Remote(ssh.url, root, trust_new_host_key=True).fetch(15)
        (root.path / "git" / "known_hosts").unlink()
        result = Remote(ssh.url, root, trust_new_host_key=True).fetch(15)
        assert result.new == upstream.work.head
        assert ssh.host_pub.split()[1] in (root.path / "git" / "known_hosts").read_text()
        assert Remote(ssh.url, root).fetch(15).new == upstream.work.head  # pinned now
    finally:
        ssh.stop()


def test_a_fetch_request_fetches_at_once_and_the_poll_backs_off(
    upstream: Upstream, root: RuntimeRoot, tmp_path: Path
) -> None:
    import random

    from reconciler.sources.follow import Follower, next_delay

    rng = random.Random(1)
    slow = FollowSettings(poll=30.0, jitter=0.1, max_backoff=300.0)
    delays = [next_delay(slow, 0, rng) for _ in range(200)]
    assert 27.0 <= min(delays) < 29.0 and 31.0 < max(delays) <= 33.0
    assert 54 <= next_delay(slow, 2, rng) <= 66 and 270 <= next_delay(slow, 9, rng) <= 330
    assert 270 <= next_delay(slow, 100_000, rng) <= 330  # days of outage: still capped
    file_remote = FileRemote(upstream, tmp_path)
    remote = Remote(file_remote.url, root)
    events: list[str] = []
    follower = Follower(remote, root, slow, emit=lambda t, _d: events.append(t))
    stop = threading.Event()
    thread = follower.start(stop)
    try:
        wait_for(lambda: events == ["source.fetched"], what="the first fetch")
        upstream.file("b")
        pushed = upstream.push("b")
        started = time.monotonic()
        request_fetch(root, "webhook: push")
        wait_for(lambda: remote.tip() == pushed, timeout=10, what="the requested fetch")
        assert time.monotonic() - started < 5  # not the 30 s poll
        wait_for(lambda: len(events) == 2, timeout=5, what="the second fetch's event")
        assert follower.fetches == 2 and events == ["source.fetched", "source.fetched"]
    finally:
        stop.set()
        thread.join(10)


def test_validate_follows_the_branch_asked_for(upstream: Upstream, root: RuntimeRoot) -> None:
    main = upstream.work.head
    upstream.work.git("checkout", "-q", "-b", "prod")
    upstream.file("prod-only")
    prod = upstream.work.commit("prod")
    upstream.work.git("push", "-q", "origin", "prod")
    url = f"file://{upstream.bare}"
    proc = subprocess.run(
        [HOMELAB, "validate", "--repo", url, "--branch", "prod", "--root", str(root.path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"OK: 2 resource(s) valid at commit {prod[:12]}" in proc.stdout
    default = subprocess.run(  # another root: the remote's HEAD, main
        [HOMELAB, "validate", "--repo", url, "--root", str(root.path / "other")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert f"OK: 1 resource(s) valid at commit {main[:12]}" in default.stdout, default.stderr
    status = subprocess.run(
        [HOMELAB, "source", "status", "--json", "--root", str(root.path)],
        capture_output=True,
        text=True,
        check=True,
    )
    doc = orjson.loads(status.stdout)
    assert doc["branch"] == "prod" and doc["commit"] == prod and doc["ready"] is True
