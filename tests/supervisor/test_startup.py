"""The supervisor's first pass and its wake-ups wait for whole observations.

At start the world on disk is what the observer saw before the last stop;
a pass over it is thrown away once the first fresh look is folded (and may
propose what was fixed meanwhile). So the first pass waits for an observer
status written since the start that says the files were checked and the log
is folded (`filesChecked`, `caughtUp`), or for `startup_wait` when no
observer runs. World documents come in observer ticks, each followed by the
observer's status: the wake-up gathers a burst of world changes until that
status (or `hold_ms`), so one tick is one pass. Real git repository, real
runtime root, the service loop on its thread.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from reconciler.atomic_files import atomic_write_json
from reconciler.queue.action import now_iso
from reconciler.supervisor.service import Supervisor, SupervisorSettings
from reconciler.supervisor.watch import Wakeup
from reconciler.world import new_world_doc, world_path


def _status(
    lab: Any, *, files_checked: bool, caught_up: bool = True, at: str | None = None
) -> None:
    atomic_write_json(
        lab.root.state / "observer_status.json",
        {
            "caughtUp": caught_up,
            "updatedAt": at or now_iso(),
            "lagBytes": 0,
            "eventsFolded": 1,
            "filesChecked": files_checked,
            "nodes": {},
        },
    )


def _wait(check: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return bool(check())


def _run(lab: Any, **settings: Any) -> tuple[threading.Event, threading.Thread]:
    supervisor = Supervisor(lab.repo.path, lab.root, None, SupervisorSettings(**settings))
    stop = threading.Event()
    thread = threading.Thread(target=supervisor.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def test_the_first_pass_waits_for_a_fresh_observation(lab: Any) -> None:
    lab.container("web")
    lab.commit("add web")
    _status(lab, files_checked=True, at="2024-01-01T00:00:00.000000Z")  # from before this start
    stop, thread = _run(lab, startup_wait=30, debounce_ms=50)
    try:
        time.sleep(1.0)
        assert lab.actions() == [], "planned on the world as it was at the last stop"
        _status(lab, files_checked=False)  # fresh, but the files are not checked yet
        time.sleep(0.5)
        assert lab.actions() == []
        _status(lab, files_checked=True)
        assert _wait(lambda: len(lab.actions()) == 1, 10)
        assert lab.only().operation == "create"
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()


def test_without_an_observer_the_first_pass_comes_after_the_startup_wait(lab: Any) -> None:
    lab.container("web")
    lab.commit("add web")
    began = time.monotonic()
    stop, thread = _run(lab, startup_wait=1.0, debounce_ms=50)
    try:
        assert _wait(lambda: len(lab.actions()) == 1, 15)
        assert time.monotonic() - began >= 1.0
    finally:
        stop.set()
        thread.join(10)


def _world_doc(lab: Any, name: str) -> None:
    doc = new_world_doc("Container", name)
    doc["status"].update(exists=False, observedAt=now_iso())
    path = world_path(lab.root, "Container", name)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, doc)


def test_a_burst_of_world_documents_wakes_once_with_the_observer_status(lab: Any) -> None:
    (lab.root.world / "Container").mkdir(parents=True, exist_ok=True)
    wake, stop = threading.Event(), threading.Event()
    watcher = Wakeup(lab.repo.path, lab.root, wake, step_ms=20, debounce_ms=50, hold_ms=20_000)
    thread = watcher.start(stop)
    try:
        time.sleep(0.3)  # the watch is set up
        for i in range(20):  # a tick's documents, slower than the debounce
            _world_doc(lab, f"c{i}")
            time.sleep(0.01 * (i % 3))
        time.sleep(0.8)
        assert not wake.is_set(), "woke in the middle of a tick"
        _status(lab, files_checked=True)  # the observer's status ends the tick
        assert wake.wait(5)
    finally:
        stop.set()
        thread.join(10)


def test_world_changes_without_a_status_wake_after_the_hold(lab: Any) -> None:
    (lab.root.world / "Container").mkdir(parents=True, exist_ok=True)
    wake, stop = threading.Event(), threading.Event()
    watcher = Wakeup(lab.repo.path, lab.root, wake, step_ms=20, debounce_ms=50, hold_ms=400)
    thread = watcher.start(stop)
    try:
        time.sleep(0.3)
        _world_doc(lab, "alone")  # e.g. a document restored after a deletion by hand
        assert wake.wait(5)
    finally:
        stop.set()
        thread.join(10)
