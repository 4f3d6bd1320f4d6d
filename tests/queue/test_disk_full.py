"""A full disk never loses a decision: the event is written first, or nothing moves.

The runtime root lives on a small real tmpfs (mounted here, unmounted in
teardown), filled to the last block by a filler file. Approving through the
real HTTP API (uvicorn) answers 507 naming the disk problem and approving
through the real `homelab actions approve` exits 1 with the same message,
and in both cases the action stays pending with no `action.approved` event
and no history entry. Once the filler is removed both decisions succeed
and the audit trail (event with actor and address, history entry) is whole.
With a real executor running beside the full disk, the refused approval
never runs; approved after freeing, it runs once and ends done.
"""

from __future__ import annotations

import contextlib
import errno
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.api.config import UISettings
from reconciler.queue.action import HistoryEntry, now_iso
from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import TOKEN, Server, UILab
from tests.cli.test_up import HOMELAB
from tests.cli.test_up_supervision import lab_port
from tests.conftest import GitRepo
from tests.executor.lab import Lab


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted (lazily if still busy) at the end."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path) -> Path:
    """Write a filler file until the filesystem refuses one more byte."""
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as fh:
        chunk = b"\0" * 65536
        while True:
            try:
                fh.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                if len(chunk) == 1:
                    break
                chunk = chunk[: len(chunk) // 2]
    return filler


def events_of(root: RuntimeRoot, etype: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(root.events.glob("*/*.jsonl")):
        for line in path.read_bytes().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event["type"] == etype:
                    found.append(event)
    return found


def states(root: RuntimeRoot, action_id: str) -> list[str]:
    return [p.parent.name for p in root.queue.glob(f"*/{action_id}.json")]


def cli_approve(root: RuntimeRoot, action_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOMELAB, "actions", "approve", action_id, "--root", str(root.path), "--as", "bob"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_approving_on_a_full_disk_is_refused_cleanly_and_resumes_once_freed(
    small_disk: Path, git_repo: GitRepo
) -> None:
    root = RuntimeRoot(small_disk / "root").ensure()
    lab = UILab(git_repo, root)
    lab.container("web")
    lab.container("db")
    lab.repo.commit("two containers")
    lab.status_files()
    web, db = sorted(lab.propose(), key=lambda a: a.name != "web")
    lab.events.close()
    before = {a.id: a.moves for a in (web, db)}
    server = Server(UISettings(root=root, port=lab_port(), token=TOKEN)).start()
    client = server.client()
    try:
        filler = fill(small_disk)

        response = client.post(f"/api/actions/{web.id}/approve", json={})
        assert response.status_code == 507, response.text
        detail = response.json()["detail"]
        assert "No space left on device" in detail and str(root.path) in detail, detail
        assert "nothing was moved" in detail, detail

        refused = cli_approve(root, db.id)
        assert refused.returncode == 1, refused
        assert "No space left on device" in refused.stderr, refused.stderr
        assert "nothing was moved" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr

        for action in (web, db):
            assert states(root, action.id) == ["pending"]
            assert lab.queue.read("pending", action.id).moves == before[action.id]
        assert events_of(root, "action.approved") == []
        assert list(root.queue_dir("approved").iterdir()) == []  # the executor sees nothing

        filler.unlink()
        response = client.post(f"/api/actions/{web.id}/approve", json={})
        assert response.status_code == 200, response.text
        approved = cli_approve(root, db.id)
        assert approved.returncode == 0, approved.stderr
    finally:
        client.close()
        server.close()

    for action, actor in ((web, "operator"), (db, "bob")):
        assert states(root, action.id) == ["approved"]
        moves = lab.queue.read("approved", action.id).moves
        assert moves[:-1] == before[action.id] and moves[-1].state == "approved"
        events = [e for e in events_of(root, "action.approved") if e["data"]["action"] == action.id]
        assert len(events) == 1, events
        assert moves[-1].actor == events[0]["data"]["actor"]
        if action is web:
            assert events[0]["data"]["address"] == "127.0.0.1"
        else:
            assert events[0]["data"]["actor"] == actor
    # No torn line was left in any event file by the refused appends.
    for path in root.events.glob("*/*.jsonl"):
        data = path.read_bytes()
        assert data == b"" or data.endswith(b"\n"), path
        for line in data.splitlines():
            json.loads(line)


def test_a_move_cut_after_its_event_is_finished_by_the_next_reader(
    small_disk: Path, git_repo: GitRepo
) -> None:
    """The crash window: event durable and the document rewritten, the rename not done.

    The state a crash there leaves is made by hand from a real move's own
    steps (the staged document replaces the pending one, its event is in the
    log); `finish_interrupted` renames it into approved/, and a staged copy
    left by a crash before the replace is dropped with the action unmoved.
    """
    root = RuntimeRoot(small_disk / "root").ensure()
    lab = UILab(git_repo, root)
    lab.container("web")
    lab.container("db")
    lab.repo.commit("two containers")
    web, db = sorted(lab.propose(), key=lambda a: a.name != "web")
    cut = web.evolve(history=(*web.moves, HistoryEntry("approved", now_iso(), "alice", None)))
    lab.queue.update("pending", cut)  # step (3) done, step (4) not
    lab.events.append("action.approved", cut.key, {"action": cut.id, "actor": "alice"})
    staged = root.queue_dir("pending") / f".{db.id}.json.abc123.staged"
    other = root.queue_dir("pending") / f".{db.id}.json.def456.tmp"  # atomic_write's, not ours
    other.write_text("{}")
    staged.write_text("{}")  # a crash between staging and the event: no decision stands

    assert lab.queue.finish_interrupted() == [(web.id, "approved")]
    assert lab.queue.read("approved", web.id).moves[-1].actor == "alice"
    assert states(root, db.id) == ["pending"] and not staged.exists()
    assert other.exists()
    assert lab.queue.finish_interrupted() == []


@pytest.mark.docker
def test_the_executor_runs_nothing_refused_and_runs_it_once_approved_after_freeing(
    small_disk: Path, docker_host: str, docker_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real `homelab run executor` beside the full disk: the refused approval never runs."""
    lab = Lab(small_disk, docker_host, docker_client)
    monkeypatch.setenv("HOMELAB_MAX_FAILURES", "1000")  # the executor may fail while it is full
    try:
        name = lab.container("web")
        lab.commit()
        [action] = lab.propose(approve=False)
        lab.events.close()
        executor = lab.spawn_executor()
        try:
            filler = fill(small_disk)
            refused = cli_approve(lab.root, action.id)
            assert refused.returncode == 1 and "nothing was moved" in refused.stderr, refused
            time.sleep(2)  # long enough for the executor to pick up anything approved
            assert states(lab.root, action.id) == ["pending"]
            assert lab.containers(name) == []
            filler.unlink()
            assert cli_approve(lab.root, action.id).returncode == 0
            try:
                final = lab.wait_final(action.id)
            except AssertionError:
                final = "timeout"
        finally:
            executor.terminate()
            _out, err = executor.communicate(timeout=30)
        assert final == "done", err.decode()
        moves = [(h.state, h.actor) for h in lab.action(action.id).moves]
        assert ("approved", "bob") in moves and moves[-1][0] == "done", moves
        approvals = events_of(lab.root, "action.approved")
        assert [(e["data"]["action"], e["data"]["actor"]) for e in approvals] == [
            (action.id, "bob")
        ]
        assert len(lab.containers(name)) == 1
    finally:
        lab.cleanup()
