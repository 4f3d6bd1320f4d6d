"""A full disk, for real: a 4 MiB tmpfs mounted for the test, filled, then freed.

The runtime root lives on the tmpfs; a filler file takes every free block.
Writers then get ENOSPC: each keeps its event and retries with backoff
(reconciler/events/retry.py), the error is logged, set in the service's
health document and shown by the UI (`/summary`, the banner); once the
filler is deleted everything resumes by itself, and every event is in the
log exactly once, no line half-written. First with several `EventLog`
writers in threads, then with `homelab up` (observer, supervisor, executor,
UI, notifier) applying File resources while the disk fills and frees.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from reconciler.errors import StorageError
from reconciler.events.log import EventLog
from reconciler.events.retry import WriteRetry, storage_problems
from reconciler.observer.service import ObserverService, ObserverSettings
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from tests.cli.test_up import Up
from tests.conftest import GitRepo
from tests.drivers.test_file_driver import file_yaml

PORT = 18430


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs of our own (the tests run as root), unmounted afterwards."""
    where = tmp_path / "fs"
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=True)


def fill(folder: Path) -> Path:
    """Take every free block of the filesystem with one file; return it."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 20, 1 << 16, 1 << 12, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)
    st = os.statvfs(folder)
    assert st.f_bavail == 0
    return filler


def log_lines(root: RuntimeRoot) -> list[dict[str, Any]]:
    """Every line of every log file, each parsed (a half-written line fails the test)."""
    events = []
    for path in sorted(root.events.rglob("*.jsonl")):
        data = path.read_bytes()
        assert not data or data.endswith(b"\n"), f"{path} ends in a torn line"
        for number, line in enumerate(data.splitlines(), 1):
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                pytest.fail(f"{path}:{number} is not a whole event: {line[:200]!r}")
    return events


def wait(check: Callable[[], Any], what: str, timeout: float = 60.0, up: Up | None = None) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    output = "\n".join(up.lines[-60:]) if up is not None else ""
    pytest.fail(f"timed out waiting for {what}\n{output}")


def test_writers_keep_their_events_through_a_full_disk(tmpfs: Path) -> None:
    root = RuntimeRoot(tmpfs / "root").ensure()
    stop = threading.Event()
    errors: list[BaseException] = []
    names = ("alpha", "beta", "gamma")
    started = threading.Barrier(len(names) + 1)

    def writer(name: str) -> None:
        log = EventLog(root, name, retry=WriteRetry(name, stop, cap=0.2))
        try:
            log.append("test.tick", None, {"n": 0})  # the day's file exists before the fill
            started.wait()
            started.wait()  # the disk is full now
            for n in range(1, 301):
                log.append("test.tick", None, {"n": n, "pad": "x" * 200})
        except BaseException as exc:
            errors.append(exc)
        finally:
            log.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in names]
    for t in threads:
        t.start()
    started.wait()
    filler = fill(tmpfs)
    started.wait()
    try:
        failing = wait(lambda: set(storage_problems()) >= set(names), "every writer to fail")
        assert failing
        problem = storage_problems()["alpha"]
        assert "No space left on device" in problem["error"] and "disk" in problem["error"]
        before = len(log_lines(root))
        time.sleep(1.0)  # they keep retrying; nothing gets in, nothing is torn
        assert len(log_lines(root)) == before
        assert all(t.is_alive() for t in threads)
        # A writer without a retry is refused at once, leaving nothing behind.
        plain = EventLog(root, "plain")
        with pytest.raises(StorageError):
            plain.append("test.refused", None, {"pad": "y" * 5000})
        plain.close()
    finally:
        filler.unlink()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)
    assert not set(storage_problems()) & set(names)
    seen = Counter(
        (e["source"], e["data"]["n"]) for e in log_lines(root) if e["type"] == "test.tick"
    )
    assert seen == Counter({(name, n): 1 for name in names for n in range(301)})
    assert not any(e["type"] == "test.refused" for e in log_lines(root))


def preallocate(path: Path, size: int) -> None:
    """Reserve `size` bytes of blocks for `path` without growing it (fallocate KEEP_SIZE)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        if libc.fallocate(fd, 1, 0, size) != 0:  # 1: FALLOC_FL_KEEP_SIZE
            raise OSError(ctypes.get_errno(), "fallocate")
    finally:
        os.close(fd)


def test_the_observer_rides_out_a_full_disk_while_writing_the_world(tmpfs: Path) -> None:
    """Events get in (their file's blocks were reserved) but the world cannot be written.

    The observer logs and reports it, keeps running, and once space is back
    re-opens from its checkpoint and writes every document.
    """
    root = RuntimeRoot(tmpfs / "root").ensure()
    settings = ObserverSettings(docker=False, file_period=0.2, nodes_period=0.5, poll=0.1)
    service = ObserverService(root, None, settings)
    stop = threading.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            service.run(stop)
        except BaseException as exc:
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    filler: Path | None = None
    try:
        wait(lambda: root.checkpoint.exists(), "the observer's first checkpoint")
        while time.time() % 86400 > 86400 - 10:  # the day's file must stay today's
            time.sleep(1)
        log = EventLog(root, "test")
        log.append("test.start", None, {})
        preallocate(next(root.events.glob("*/test.jsonl")), 1 << 20)
        filler = fill(tmpfs)
        for n in range(40):
            spec = {"image": "busybox:1", "note": "x" * 500}
            log.append("observed.resource", ResourceKey("Container", f"c{n:02d}"), {"spec": spec})
        log.close()
        wait(lambda: "observer" in storage_problems(), "the observer to report the full disk")
        assert "No space left on device" in storage_problems()["observer"]["error"]
        time.sleep(1.0)
        assert thread.is_alive() and not failed
        filler.unlink()
        filler = None
        docs = root.world / "Container"
        wait(lambda: len(list(docs.glob("c*.json"))) == 40, "every document after freeing")
        wait(lambda: "observer" not in storage_problems(), "the observer to recover")
        for n in range(40):
            doc = orjson.loads((docs / f"c{n:02d}.json").read_bytes())
            assert doc["status"]["observed"]["image"] == "busybox:1"
    finally:
        if filler is not None:
            filler.unlink()
        stop.set()
        thread.join(30)
    assert not failed, failed


def _api(url: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=15)


def _pending(api: httpx.Client, name: str) -> str | None:
    for action in api.get("/api/actions", params={"state": "pending"}).json():
        if action["name"] == name:
            return str(action["id"])
    return None


def _world(root: RuntimeRoot, name: str) -> dict[str, Any] | None:
    try:
        doc: dict[str, Any] = orjson.loads((root.world / "File" / f"{name}.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return doc if doc.get("status", {}).get("exists") else None


def _ended(root: RuntimeRoot, action_id: str) -> str | None:
    for state in ("done", "failed", "superseded"):
        if (root.queue_dir(state) / f"{action_id}.json").exists():
            return state
    return None


def _approve_and_wait(api: httpx.Client, root: RuntimeRoot, name: str, up: Up) -> str:
    """Approve File/`name`'s pending action until one is done (a newer plan may supersede it)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        action_id = wait(lambda: _pending(api, name), f"the pending action for File/{name}", up=up)
        response = api.post(f"/api/actions/{action_id}/approve", json={})
        if response.status_code == 409:
            continue  # superseded by a newer plan meanwhile
        assert response.status_code == 200, response.text

        state = wait(partial(_ended, root, str(action_id)), f"{name} to finish", up=up)
        if state == "done":
            return str(action_id)
        outcome = orjson.loads((root.queue_dir(state) / f"{action_id}.json").read_bytes())
        assert state == "superseded", outcome.get("outcome")
    pytest.fail(f"File/{name} never got done")


def test_homelab_up_rides_out_a_full_disk(tmpfs: Path, tmp_path: Path, git_repo: GitRepo) -> None:
    root = RuntimeRoot(tmpfs / "root")
    files = tmp_path / "files"  # the managed files live off the tmpfs
    files.mkdir()
    no_docker = f"unix://{tmp_path}/no-docker.sock"  # File resources need no engine
    node = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "Node",
        "metadata": {"name": "local"},
        "spec": {"dockerHost": no_docker, "allowedRoots": [str(files)]},
    }
    git_repo.write("manifests/node.yaml", orjson.dumps(node).decode() + "\n")
    git_repo.write(
        "manifests/one.yaml", file_yaml("one", path=str(files / "one.txt"), content="1\n")
    )
    git_repo.commit("one file")
    env = {
        **os.environ,
        "DOCKER_HOST": no_docker,
        "HOMELAB_UI_URL": f"http://127.0.0.1:{PORT}",
    }
    up = Up(["--repo", str(git_repo.path), "--root", str(root.path), "--port", str(PORT)], env)
    filler: Path | None = None
    try:
        up.wait_line("UI: ")
        token = up.wait_line("Login token: ").split()[2]
        api = _api(f"http://127.0.0.1:{PORT}", token)
        ids = [_approve_and_wait(api, root, "one", up)]
        assert (files / "one.txt").read_text() == "1\n"

        filler = fill(tmpfs)
        git_repo.write(
            "manifests/two.yaml", file_yaml("two", path=str(files / "two.txt"), content="2\n")
        )
        git_repo.commit("a second file, while the disk is full")
        # The supervisor cannot record the proposal: it says so and keeps trying.
        wait(
            lambda: any("cannot write, keeping it and retrying" in ln for ln in up.lines),
            "the log line",
        )
        line = next(ln for ln in up.lines if "cannot write, keeping it and retrying" in ln)
        assert "No space left" in line  # homelab up keeps its log lines short (cut with …)

        def health_says_failing() -> bool:
            doc = api.get("/summary").json()
            return "supervisor" in doc["disk"]["storageErrors"]

        wait(health_says_failing, "the supervisor's health document to report the full disk")
        disk = api.get("/summary").json()["disk"]
        assert disk["freeBytes"] == 0 and disk["pressure"] is True
        assert disk["condition"]["type"] == "DiskPressure" and disk["condition"]["status"] == "True"
        assert disk["storageErrors"]["supervisor"] == "ENOSPC"  # /summary is open: no paths
        doc = orjson.loads((root.state / "services" / "supervisor.json").read_bytes())
        assert doc["storage"]["failing"] is True and doc["state"] == "running"
        assert "homelab_disk_pressure 1" in api.get("/metrics").text
        # The UI keeps serving what it has; its page carries the banner.
        login = httpx.Client(base_url=f"http://127.0.0.1:{PORT}", timeout=15)
        assert login.post("/login", data={"token": token, "name": "alice"}).status_code == 303
        page = login.get("/events").text
        assert 'data-testid="disk-banner"' in page and "Cannot write to the runtime root" in page
        assert "No space left on device" in page  # signed in: the error's text
        assert up.proc.poll() is None

        filler.unlink()
        filler = None
        ids.append(_approve_and_wait(api, root, "two", up))  # proposed by itself once space is back
        assert (files / "two.txt").read_text() == "2\n"
        wait(lambda: not api.get("/summary").json()["disk"]["storageErrors"], "the error to clear")
        doc = orjson.loads((root.state / "services" / "supervisor.json").read_bytes())
        assert doc["storage"]["failing"] is False and "No space" in doc["storage"]["lastError"]
        assert any("writing again" in ln for ln in up.lines)
        two = wait(lambda: _world(root, "two"), "the observer to fold File/two", up=up)
        assert two["status"]["exists"] is True
        for name in ("observer", "supervisor", "executor", "ui", "notifier"):
            health = orjson.loads((root.state / "services" / f"{name}.json").read_bytes())
            assert health["state"] == "running" and health["failures"] == 0, (name, health)
    finally:
        if filler is not None:
            with contextlib.suppress(FileNotFoundError):
                filler.unlink()
        code = up.interrupt() if up.proc.poll() is None else up.proc.returncode
    assert code in (0, 1), "\n".join(up.lines[-40:])
    events = log_lines(root)
    assert len({e["id"] for e in events}) == len(events)
    for action_id in ids:
        states = Counter(e["type"] for e in events if e["data"].get("action") == action_id)
        for state in ("action.pending", "action.approved", "action.running", "action.done"):
            assert states[state] == 1, (action_id, states)
