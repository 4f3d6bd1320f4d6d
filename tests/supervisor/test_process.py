"""`homelab run supervisor` as a real process: woken by commits and world changes, restartable."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from reconciler.atomic_files import read_json
from tests.supervisor.conftest import HOMELAB


def _wait(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


class Process:
    def __init__(self, lab: Any) -> None:
        self.lab = lab
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        status = self.lab.root.state / "supervisor_status.json"
        before = status.stat().st_mtime_ns if status.exists() else 0
        self.proc = subprocess.Popen(
            [
                HOMELAB,
                "run",
                "supervisor",
                "--repo",
                str(self.lab.repo.path),
                "--root",
                str(self.lab.root.path),
                "--resync",
                "3600",  # every pass in these tests is woken by a change, none by the timer
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait("the first pass", lambda: status.exists() and status.stat().st_mtime_ns != before)

    def kill(self, sig: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code


@pytest.fixture
def supervisor(lab: Any) -> Iterator[Process]:
    proc = Process(lab)
    yield proc
    if proc.proc is not None:
        proc.kill(signal.SIGKILL)


def _status(lab: Any) -> dict[str, Any]:
    doc: dict[str, Any] = read_json(lab.root.state / "supervisor_status.json")
    return doc


def test_commit_wakes_the_running_supervisor_and_a_restart_adds_nothing(
    lab: Any, supervisor: Process
) -> None:
    lab.container("web")
    lab.commit("first")
    supervisor.start()
    assert [a.name for a in lab.actions()] == ["web"]

    lab.container("db")
    second = lab.commit("second")
    _wait("the db action", lambda: len(lab.actions()) == 2)
    _wait("the status at the new commit", lambda: _status(lab)["commit"] == second)
    before = sorted(a.id for a in lab.actions())

    assert supervisor.kill(signal.SIGKILL) == -signal.SIGKILL
    supervisor.start()
    assert sorted(a.id for a in lab.actions()) == before
    assert lab.actions("superseded") == []
    proposed = [e["data"]["action"] for e in lab.events("action.pending")]
    assert sorted(proposed) == before  # each proposed exactly once across both processes

    lab.observe("web", lab.desired("web"))  # the world now matches: web's action is moot
    _wait("web's action to be superseded", lambda: len(lab.actions("superseded")) == 1)
    assert [a.name for a in lab.actions()] == ["db"]
    assert supervisor.kill(signal.SIGTERM) == 0


def test_bad_repository_state_is_reported_not_fatal(lab: Any, supervisor: Process) -> None:
    lab.container("web")
    lab.commit()
    supervisor.start()
    lab.repo.write("manifests/web.yaml", "kind: [unclosed\n")
    commit = lab.commit("broken yaml")
    _wait("the broken commit to be reported", lambda: _status(lab)["commit"] == commit)
    assert _status(lab)["errors"]
    assert supervisor.proc is not None and supervisor.proc.poll() is None
    assert os.path.exists(lab.root.state / "supervisor_status.json")
