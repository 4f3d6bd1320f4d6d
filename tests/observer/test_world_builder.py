"""The folding shell: checkpoint, resume, rebuild and the fault cases, on a real filesystem."""

from __future__ import annotations

from pathlib import Path

import orjson

from reconciler.atomic_files import read_json
from reconciler.events import EventLog
from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import world_path


def _observe(log: EventLog, name: str, image: str = "local/busybox:1") -> None:
    spec = {"node": "local", "image": image}
    log.append("observed.resource", ("Container", name), {"spec": spec, "health": "Healthy"})


def _world(root: RuntimeRoot) -> dict[str, bytes]:
    return {
        str(p.relative_to(root.world)): p.read_bytes() for p in sorted(root.world.rglob("*.json"))
    }


def _quarantine(root: RuntimeRoot) -> dict[str, dict[str, object]]:
    return dict(read_json(root.logs / "event-quarantine.json")["entries"])


def test_tick_writes_world_documents_and_checkpoint(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    _observe(log, "web")
    folder = WorldBuilder(runtime_root)
    assert folder.open().startswith("rebuilt (no usable checkpoint)")
    doc = read_json(world_path(runtime_root, "Container", "web"))
    assert doc["status"]["exists"] is True
    assert doc["status"]["observed"]["image"] == "local/busybox:1"
    checkpoint = read_json(runtime_root.checkpoint)
    assert sum(checkpoint["offsets"].values()) > 0
    _observe(log, "db")
    result = folder.tick()
    assert (result.events, result.written) == (1, 1)
    assert folder.tick().events == 0


def test_restart_resumes_and_deleting_the_checkpoint_rebuilds_the_same_world(
    runtime_root: RuntimeRoot,
) -> None:
    log = EventLog(runtime_root, "observer")
    for i in range(5):
        _observe(log, f"app-{i}", f"img:{i}")
    folder = WorldBuilder(runtime_root)
    folder.open()
    log.append("observed.missing", ("Container", "app-1"))
    log.append("action.succeeded", ("Container", "app-2"), {"action": "x", "operation": "update"})
    folder.tick()
    incremental = _world(runtime_root)
    assert WorldBuilder(runtime_root).open().startswith("resumed")
    runtime_root.checkpoint.unlink()
    assert WorldBuilder(runtime_root).open().startswith("rebuilt")
    assert _world(runtime_root) == incremental


def test_torn_last_line_waits_for_its_newline(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    _observe(log, "a")
    folder = WorldBuilder(runtime_root)
    folder.open()
    path = next(runtime_root.events.rglob("observer.jsonl"))
    line = path.read_bytes().splitlines(keepends=True)[0].replace(b'"a"', b'"b"')
    line = line.replace(b"00000001", b"00000009")
    with open(path, "ab") as fh:
        fh.write(line[:30])
    assert folder.tick().events == 0
    assert not world_path(runtime_root, "Container", "b").exists()
    with open(path, "ab") as fh:
        fh.write(line[30:])
    assert folder.tick().events == 1
    assert world_path(runtime_root, "Container", "b").exists()


def test_corrupt_line_is_quarantined_and_later_events_fold(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    _observe(log, "a")
    path = next(runtime_root.events.rglob("observer.jsonl"))
    with open(path, "ab") as fh:
        fh.write(b"this is not json\n")
    _observe(log, "b")
    folder = WorldBuilder(runtime_root)
    folder.open()
    assert world_path(runtime_root, "Container", "b").exists()
    [entry] = _quarantine(runtime_root).values()
    assert entry["line"] == "this is not json"
    assert str(entry["file"]).endswith("observer.jsonl")
    runtime_root.checkpoint.unlink()
    WorldBuilder(runtime_root).open()
    assert len(_quarantine(runtime_root)) == 1  # a rebuild does not duplicate the report


def test_event_for_an_unknown_kind_is_reported_not_folded(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "ingest-bot")
    odd = log.append("observed.missing", ("Spaceship", "x"))
    _observe(log, "a")
    WorldBuilder(runtime_root).open()
    assert not (runtime_root.world / "Spaceship").exists()
    assert "unknown kind 'Spaceship'" in str(_quarantine(runtime_root)[odd["id"]]["reason"])
    assert world_path(runtime_root, "Container", "a").exists()


def test_world_document_deleted_by_hand_is_written_again(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    _observe(log, "a")
    _observe(log, "b")
    folder = WorldBuilder(runtime_root)
    folder.open()
    before = _world(runtime_root)
    world_path(runtime_root, "Container", "a").unlink()
    assert folder.restore_deleted() == [("Container", "a")]
    folder.tick()
    assert _world(runtime_root) == before
    world_path(runtime_root, "Container", "b").unlink()  # while the observer is down
    how = WorldBuilder(runtime_root).open()
    assert "1 world documents were deleted while stopped" in how
    assert _world(runtime_root) == before


def test_checkpoint_past_the_end_of_a_truncated_file_rereads_it(
    runtime_root: RuntimeRoot, caplog: object
) -> None:
    log = EventLog(runtime_root, "observer")
    _observe(log, "a")
    folder = WorldBuilder(runtime_root)
    folder.open()
    checkpoint = read_json(runtime_root.checkpoint)
    key = next(iter(checkpoint["offsets"]))
    checkpoint["offsets"][key] += 5000
    runtime_root.checkpoint.write_bytes(orjson.dumps(checkpoint))
    log.close()
    log = EventLog(runtime_root, "observer")
    _observe(log, "b")
    again = WorldBuilder(runtime_root)
    assert again.open().startswith("resumed")
    result = again.tick()
    assert result.events == 2  # the whole file again; the fold ignores what it has seen
    assert world_path(runtime_root, "Container", "b").exists()
    assert read_json(runtime_root.checkpoint)["offsets"][key] < 5000


def test_unreadable_world_document_triggers_a_rebuild(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    _observe(log, "a")
    WorldBuilder(runtime_root).open()
    good = _world(runtime_root)
    world_path(runtime_root, "Container", "a").write_bytes(b"")  # what a power loss can leave
    how = WorldBuilder(runtime_root).open()
    assert "unreadable world document" in how
    assert _world(runtime_root) == good


def test_second_observer_on_the_same_root_is_refused(runtime_root: RuntimeRoot) -> None:
    first, second = WorldBuilder(runtime_root), WorldBuilder(runtime_root)
    first.lock()
    try:
        second.lock()
    except Exception as exc:
        assert "another observer" in str(exc)
    else:
        raise AssertionError("second lock succeeded")
    finally:
        first.unlock()


def test_rebuild_removes_documents_the_log_does_not_explain(runtime_root: RuntimeRoot) -> None:
    stray = world_path(runtime_root, "Container", "stray")
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"{}")
    _observe(EventLog(runtime_root, "observer"), "a")
    WorldBuilder(runtime_root).rebuild()
    assert not stray.exists()
    assert Path(world_path(runtime_root, "Container", "a")).exists()


def test_rewrites_reuse_a_twin_instead_of_creating_files(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    _observe(log, "web", "img:1")
    folder = WorldBuilder(runtime_root)
    folder.open()
    path = world_path(runtime_root, "Container", "web")
    twin = path.with_name(".web.json.tmp")
    inodes = set()
    for image in ("img:2", "img:3", "img:4", "img:5"):
        _observe(log, "web", image)
        folder.tick()
        assert read_json(path)["status"]["observed"]["image"] == image
        inodes.add(path.stat().st_ino)
    # After the first rewrite the document and its twin swap names: two inodes in all.
    assert twin.exists() and len(inodes) == 2
    assert twin.stat().st_ino in inodes
    # The twin is scratch: resuming keeps it, and a rebuild removes it with its document.
    assert WorldBuilder(runtime_root).open().startswith("resumed")
    assert twin.exists()
    log.append("observed.missing", ("Container", "gone"))
    stray = world_path(runtime_root, "Container", "stray")
    stray.write_bytes(b"{}")
    stray.with_name(".stray.json.tmp").write_bytes(b"{}")
    WorldBuilder(runtime_root).rebuild()
    assert not stray.exists() and not stray.with_name(".stray.json.tmp").exists()


def test_checkpoint_says_when_the_world_is_synced(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    _observe(log, "web")
    folder = WorldBuilder(runtime_root)
    folder.open()  # a rebuild ends synced
    assert read_json(runtime_root.checkpoint)["synced"] is True and folder.synced
    _observe(log, "web", "img:2")
    folder.tick()
    checkpoint = read_json(runtime_root.checkpoint)
    assert checkpoint["synced"] is False and not folder.synced
    assert checkpoint["offsets"] == folder.reader.offsets
    folder.sync()
    assert read_json(runtime_root.checkpoint)["synced"] is True
    # A tick that changes no document leaves the synced mark alone.
    log.append("supervisor.tick", None, {})
    folder.tick()
    assert read_json(runtime_root.checkpoint)["synced"] is True


def test_unsynced_world_after_an_unclean_reboot_is_rebuilt(runtime_root: RuntimeRoot) -> None:
    log = EventLog(runtime_root, "observer")
    _observe(log, "web")
    folder = WorldBuilder(runtime_root)
    folder.open()
    _observe(log, "web", "img:2")
    folder.tick()  # written, not synced
    expected = _world(runtime_root)
    # Same boot (the process died, the page cache did not): resume.
    assert WorldBuilder(runtime_root).open().startswith("resumed")
    # Another boot id in an unsynced checkpoint: the disk may hold any mix of versions.
    checkpoint = read_json(runtime_root.checkpoint)
    assert checkpoint["synced"] is False
    checkpoint["bootId"] = "another-boot"
    runtime_root.checkpoint.write_bytes(orjson.dumps(checkpoint))
    how = WorldBuilder(runtime_root).open()
    assert how.startswith("rebuilt (the machine went down uncleanly")
    assert _world(runtime_root) == expected
    # A synced checkpoint from another boot is trusted.
    checkpoint = read_json(runtime_root.checkpoint)
    assert checkpoint["synced"] is True
    checkpoint["bootId"] = "another-boot"
    runtime_root.checkpoint.write_bytes(orjson.dumps(checkpoint))
    assert WorldBuilder(runtime_root).open().startswith("resumed")


def test_rebuild_on_a_root_with_only_events(tmp_path: Path) -> None:
    root = RuntimeRoot(tmp_path / "root")
    _observe(EventLog(root, "observer"), "web")
    assert not root.state.exists()
    result = WorldBuilder(root).rebuild()
    assert result.events == 1 and read_json(root.checkpoint)["synced"] is True
