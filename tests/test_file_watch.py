"""`FileWatch` on real folders: changes come at once, bursts are grouped, closing unblocks.

The services block in `changes()` (or get callbacks) instead of polling, so
these tests pin what they rely on: an atomic write (temp file, rename) is
one `added` at the target, the filter keeps the rest out, a waiting caller
returns as soon as the watch is closed, nothing is offered while nothing
changes, and a folder watched whole pairs the two halves of a move, so a
claim (approved/ -> running/) never holds back the next approval.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from reconciler.atomic_files import atomic_write_json
from reconciler.file_watch import FileWatch


def test_an_atomic_write_is_one_added_change_at_the_target(tmp_path: Path) -> None:
    target = tmp_path / "doc.json"
    with FileWatch([tmp_path], relevant=lambda _c, p: not Path(p).name.startswith(".")) as watch:
        began = time.monotonic()
        atomic_write_json(target, {"a": 1})
        changes = watch.changes(5)
        took = time.monotonic() - began
    assert ("added", str(target)) in changes
    assert all(not Path(p).name.startswith(".") for _, p in changes)
    assert took < 1.0


def test_a_burst_is_one_batch_and_silence_times_out(tmp_path: Path) -> None:
    with FileWatch([tmp_path]) as watch:
        for i in range(5):
            (tmp_path / f"f{i}").write_text("x")
        batch = watch.changes(5, step=0.1, debounce=1.0)
        assert {Path(p).name for _, p in batch} == {f"f{i}" for i in range(5)}
        began = time.monotonic()
        assert watch.changes(0.3) == set()  # nothing changed: an empty set at the timeout
        assert 0.25 <= time.monotonic() - began < 2.0


def test_closing_unblocks_a_waiting_caller_at_once(tmp_path: Path) -> None:
    stop = threading.Event()
    watch = FileWatch([tmp_path]).start()
    watch.close_when(stop)
    returned: list[float] = []

    def wait() -> None:
        watch.changes()  # no timeout: only a change or the close ends it
        returned.append(time.monotonic())

    waiter = threading.Thread(target=wait)
    waiter.start()
    time.sleep(0.3)
    asked = time.monotonic()
    stop.set()
    waiter.join(timeout=5)
    assert returned and returned[0] - asked < 0.5
    assert watch.closed


def test_a_callback_sees_subfolders_made_after_the_start(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []
    with FileWatch([tmp_path], on_change=lambda c, p: seen.append((c, p))):
        sub = tmp_path / "Kind"
        sub.mkdir()
        time.sleep(0.2)  # the new folder gets its own watch
        (sub / "name.json").write_text("{}")
        os.unlink(sub / "name.json")
        deadline = time.monotonic() + 5
        while ("deleted", str(sub / "name.json")) not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
    assert ("added", str(sub)) in seen
    assert ("deleted", str(sub / "name.json")) in seen


def test_moves_within_the_watch_never_hold_back_what_follows(tmp_path: Path) -> None:
    for folder in ("pending", "approved", "running"):
        (tmp_path / folder).mkdir()
    approved = tmp_path / "approved"
    with FileWatch([tmp_path], relevant=lambda _c, p: Path(p).parent == approved) as watch:
        took = []
        for i in range(5):
            (tmp_path / "pending" / f"a{i}.json").write_text("{}")
            began = time.monotonic()
            os.rename(tmp_path / "pending" / f"a{i}.json", approved / f"a{i}.json")
            assert watch.changes(5)
            took.append(time.monotonic() - began)
            os.rename(approved / f"a{i}.json", tmp_path / "running" / f"a{i}.json")  # a claim
            time.sleep(0.05)
            watch.changes(0.05)  # the claim's deletion
    assert max(took) < 0.3, took


def test_a_missing_folder_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FileWatch([tmp_path / "absent"]).start()


def test_a_folder_moved_in_with_files_offers_them_and_is_watched(tmp_path: Path) -> None:
    watched, outside = tmp_path / "watched", tmp_path / "outside"
    watched.mkdir()
    (outside / "day").mkdir(parents=True)
    (outside / "day" / "a.jsonl").write_text("{}\n")
    seen: list[tuple[str, str]] = []
    with FileWatch([watched], on_change=lambda c, p: seen.append((c, p))):
        os.rename(outside / "day", watched / "day")  # lands whole, files already inside
        target = watched / "day" / "a.jsonl"
        deadline = time.monotonic() + 5
        while ("added", str(target)) not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ("added", str(target)) in seen
        with open(target, "a") as fh:  # the new folder has its own watch
            fh.write("{}\n")
        while ("modified", str(target)) not in seen and time.monotonic() < deadline:
            time.sleep(0.01)
    assert ("added", str(watched / "day")) in seen
    assert ("modified", str(target)) in seen


def test_a_chmod_is_offered_only_when_attributes_are_asked_for(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("x")
    for attributes in (False, True):
        with FileWatch([tmp_path], attributes=attributes) as watch:
            os.chmod(target, 0o600 if attributes else 0o640)
            found = watch.changes(0.5 if not attributes else 5)
        assert (("modified", str(target)) in found) is attributes
