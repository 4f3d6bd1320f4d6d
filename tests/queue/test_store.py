"""The queue on disk: atomic moves, one winner, ids derived from content."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from reconciler.diff import diff_resource
from reconciler.errors import QueueConflict
from reconciler.events.log import EventLog
from reconciler.queue import ActionQueue, new_action
from reconciler.queue.action import action_from_json, generation_id
from reconciler.runtime_root import RuntimeRoot

HOMELAB = str(Path(sys.executable).parent / "homelab")


def _action(name: str, image: str = "local/busybox:1", generation: int = 0) -> dict[str, object]:
    change = diff_resource("Container", name, {"image": image, "node": "local"}, None)
    assert change is not None
    return new_action(change, commit="c" * 40, basis="", manifest=None, generation=generation)


def _events(root: RuntimeRoot, type_: str) -> list[dict[str, object]]:
    out = []
    for path in root.events.glob("*/*.jsonl"):
        out += [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
    return [e for e in out if e["type"] == type_]


def test_same_change_gives_the_same_id_and_is_proposed_once(runtime_root: RuntimeRoot) -> None:
    queue = ActionQueue(runtime_root)
    first, again = _action("web"), _action("web")
    assert first.id == again.id
    assert queue.propose(first) is True
    assert queue.propose(again) is False
    assert queue.ids("pending") == [first.id]


def test_generations_are_distinct_and_tied_to_their_plan() -> None:
    zero, one = _action("web"), _action("web", generation=1)
    assert one.id == generation_id(str(zero.id), 1) != zero.id
    assert one.plan_id == zero.plan_id == zero.id


def test_second_move_of_the_same_action_reports_where_it_is(runtime_root: RuntimeRoot) -> None:
    queue = ActionQueue(runtime_root)
    action = _action("web")
    queue.propose(action)
    queue.move(str(action.id), "pending", "approved", actor="alice")
    with pytest.raises(QueueConflict) as caught:
        queue.move(str(action.id), "pending", "approved", actor="bob")
    assert caught.value.current == "approved"
    assert "already approved" in str(caught.value)
    state, doc = queue.get(str(action.id)) or ("", {})
    assert state == "approved"
    assert [h.actor for h in doc.moves] == ["alice"]


def test_snapshot_lists_every_action_with_its_state(runtime_root: RuntimeRoot) -> None:
    queue = ActionQueue(runtime_root)
    web, db = _action("web"), _action("db")
    queue.propose(web)
    queue.propose(db)
    queue.move(str(db.id), "pending", "rejected", actor="alice", reason="no")
    assert queue.snapshot() == {web.id: "pending", db.id: "rejected"}


def test_ids_that_could_leave_the_queue_are_refused(runtime_root: RuntimeRoot) -> None:
    queue = ActionQueue(runtime_root)
    for bad in ("../../etc/passwd", "", "ABCDEF", "a" * 65):
        with pytest.raises(QueueConflict):
            queue.path("pending", bad)


@pytest.mark.parametrize("operators", [("alice", "bob"), ("alice", "alice")])
def test_two_processes_approving_the_same_100_actions_approve_each_once(
    runtime_root: RuntimeRoot, operators: tuple[str, str]
) -> None:
    queue = ActionQueue(runtime_root, EventLog(runtime_root, "supervisor"))
    ids = []
    for i in range(100):
        action = _action(f"svc-{i}")
        queue.propose(action)
        ids.append(str(action.id))
    procs = [
        subprocess.Popen(
            [HOMELAB, "actions", "approve", "--root", str(runtime_root.path), *ids],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "HOMELAB_OPERATOR": who},
        )
        for who in operators
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted(queue.ids("approved")) == sorted(ids)
    assert queue.ids("pending") == []
    approved = _events(runtime_root, "action.approved")
    assert sorted(e["data"]["action"] for e in approved) == sorted(ids)  # type: ignore[index]
    wins = sum(out.count("approved by") for out, _err in outputs)
    already = sum(out.count("already approved") for out, _err in outputs)
    assert (wins, already) == (100, 100)
    for action_id in ids:
        _state, doc = queue.get(action_id) or ("", {})
        assert len(doc.history) == 1


def test_an_action_file_of_the_untyped_format_reads_and_writes_back_byte_identical(
    tmp_path: Path,
) -> None:
    """The typed Action keeps the file format: a done action written before it existed
    (history, address and outcome included) decodes and encodes to the same bytes."""
    golden = Path(__file__).parent / "data" / "action-done.json"
    action = action_from_json(golden.read_bytes())
    assert action.address == "1.2.3.4" and [h.state for h in action.moves][-1] == "done"
    root = RuntimeRoot(tmp_path / "root").ensure()
    ActionQueue(root).update("done", action)
    assert (root.queue_dir("done") / f"{action.id}.json").read_bytes() == golden.read_bytes()


def test_a_line_diff_rides_along_outside_the_id_and_survives_the_queue(tmp_path: Path) -> None:
    observed = {"node": "local", "path": "/srv/homelab/f", "mode": "0644", "sha256": "sha256:a"}
    desired = {**observed, "sha256": "sha256:b"}
    change = diff_resource("File", "f", desired, observed, in_place=frozenset({"sha256"}))
    assert change is not None
    shown = dataclasses.replace(change, text_diffs={"/sha256": "--- observed\n+++ desired"})
    plain, with_diff = (
        new_action(c, commit="c" * 40, basis="x", manifest=None) for c in (change, shown)
    )
    assert plain.id == with_diff.id  # the content-addressed id ignores the line diff
    assert "--- observed" in with_diff.summary and "--- observed" not in plain.summary
    for name, action in (("plain", plain), ("shown", with_diff)):
        root = RuntimeRoot(tmp_path / name).ensure()
        assert ActionQueue(root).propose(action)
        on_disk = (root.queue_dir("pending") / f"{action.id}.json").read_bytes()
        assert (b"contentDiff" in on_disk) is (action is with_diff)  # absent when none
        found = ActionQueue(root).get(action.id)
        assert found is not None and found[1].change().text_diffs == action.change().text_diffs
    assert with_diff.change().text_diffs == {"/sha256": "--- observed\n+++ desired"}


def test_a_batch_proposes_each_new_action_once_with_its_event(runtime_root: RuntimeRoot) -> None:
    events = EventLog(runtime_root, "supervisor")
    queue = ActionQueue(runtime_root, events)
    old = _action("old")
    assert queue.propose(old) is True
    batch = [_action(f"web-{i}") for i in range(50)]
    added = queue.propose_many([old, *batch, batch[0]], actor="supervisor")
    events.close()
    assert [a.id for a in added] == [a.id for a in batch]  # the old one and the repeat skipped
    assert queue.ids("pending") == sorted([old.id, *(a.id for a in batch)])
    assert [a.id for a in queue.actions("pending")] == queue.ids("pending")  # all readable
    pending = [e["data"]["action"] for e in _events(runtime_root, "action.pending")]
    assert sorted(pending) == sorted([old.id, *(a.id for a in batch)])
    folder = runtime_root.queue_dir("pending")
    assert not [n for n in os.listdir(folder) if n.startswith(".")]
    assert {os.stat(folder / n).st_mode & 0o777 for n in os.listdir(folder)} == {0o600}
    assert queue.propose_many(batch) == []


CRASH_AFTER_STAGING = """
import os, sys
from pathlib import Path
from reconciler.diff import diff_resource
from reconciler.events.log import EventLog
from reconciler.queue import ActionQueue, new_action
from reconciler.queue import store
from reconciler.runtime_root import RuntimeRoot

root = RuntimeRoot(Path(sys.argv[1]))
actions = []
for i in range(20):
    change = diff_resource("Container", f"web-{i}", {"image": "x", "node": "local"}, None)
    actions.append(new_action(change, commit="c" * 40, basis="", manifest=None))
store.fsync_many = lambda paths: os._exit(9)  # the power goes out here
ActionQueue(root, EventLog(root, "supervisor")).propose_many(actions)
"""


def test_a_batch_cut_before_its_renames_proposed_nothing_and_proposes_again(
    runtime_root: RuntimeRoot,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CRASH_AFTER_STAGING, str(runtime_root.path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
    )
    assert done.returncode == 9, done.stderr
    folder = runtime_root.queue_dir("pending")
    staged = [n for n in os.listdir(folder) if n.startswith(".")]
    assert len(staged) == 20
    queue = ActionQueue(runtime_root, EventLog(runtime_root, "supervisor"))
    assert queue.ids("pending") == []  # staged copies are not actions
    assert _events(runtime_root, "action.pending") == []
    assert queue.finish_interrupted() == []
    assert os.listdir(folder) == []
    again = [_action(f"web-{i}", image="x") for i in range(20)]
    assert len(queue.propose_many(again)) == 20
    assert len(queue.ids("pending")) == 20
