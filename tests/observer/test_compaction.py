"""Event-log retention on a real filesystem: compression, readers, resume, rebuild, deletion.

The log holds old UTC days (2020) written the way `EventLog` writes them,
a realistic mix of observations, conditions, listings, node status and the
audit trail (`action.*`). The observer folds it (so its synced checkpoint
covers it), compaction compresses it, and every reader is checked against
the uncompressed original: `homelab events tail`, a resumed observer, a
rebuild from scratch, the observer service's own schedule.
"""

from __future__ import annotations

import calendar
import os
import random
import shutil
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from reconciler.atomic_files import read_json, try_lock
from reconciler.cli.main import cli
from reconciler.errors import ConfigError
from reconciler.events import EventLog
from reconciler.events.log import _iso, new_event_id
from reconciler.events.reader import LogReader, log_files, read_log_bytes
from reconciler.observer.compaction import RetentionPolicy, compact, recover
from reconciler.observer.service import ObserverService, ObserverSettings
from reconciler.observer.world_builder import WorldBuilder
from reconciler.resources.repo import EventLogRetention, RepoConfig
from reconciler.runtime_root import RuntimeRoot

PRODUCERS = ("observer", "executor", "supervisor")
DAY0 = date(2020, 1, 1)
TODAY = DAY0 + timedelta(days=200)  # every generated day is well past 90 days old


def _event(producer: str, ns: int, seq: int, rng: random.Random, names: int) -> dict[str, Any]:
    name = f"app-{rng.randrange(names):03d}"
    ref: dict[str, str] | None = {"kind": "Container", "name": name}
    roll = rng.random()
    if producer == "executor":
        etype = rng.choice(["action.started", "action.succeeded", "action.failed"])
        data: dict[str, Any] = {"action": f"a{seq:08d}", "operation": "update", "actor": "ops"}
    elif producer == "supervisor":
        etype = "supervisor.proposed" if roll < 0.7 else "action.pending"
        data = {"action": f"p{seq:08d}", "operation": "create", "actor": "supervisor"}
    elif roll < 0.08:
        etype, data = "observed.missing", {"reason": "gone"}
    elif roll < 0.14:
        etype = "resource.condition"
        data = {"type": "Flapping", "status": rng.choice(["True", "False"]), "reason": "R"}
    elif roll < 0.17:
        ref, etype = None, "observed.listing"
        data = {"kind": "Container", "node": "local", "names": [f"app-{i:03d}" for i in range(9)]}
    elif roll < 0.19:
        ref, etype = {"kind": "Node", "name": "local"}, "node.status"
        data = {"ready": roll < 0.185, "info": {"version": "27"}}
    else:
        etype = "observed.resource"
        data = {
            "spec": {"node": "local", "image": f"local/busybox:{seq % 5}"},
            "health": rng.choice(["Healthy", "Unhealthy", "Starting"]),
            "conditions": [{"type": "Ready", "status": "True", "reason": "Running"}],
        }
    return {
        "id": new_event_id(producer, ns, seq),
        "ts": _iso(ns),
        "source": producer,
        "type": etype,
        "ref": ref,
        "data": data,
    }


def write_days(
    root: RuntimeRoot, days: int, per_file: int, names: int = 40, first: date = DAY0
) -> dict[str, bytes]:
    """Write `days` UTC days, one file per producer; return {key: bytes}."""
    rng = random.Random(days * 1000 + per_file)
    written = {}
    seq = 0
    for d in range(days):
        day = first + timedelta(days=d)
        folder = root.events / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        base = calendar.timegm(day.timetuple()) * 10**9
        for p, producer in enumerate(PRODUCERS):
            lines = []
            for i in range(per_file):
                seq += 1
                ns = base + (i * 3 + p) * 10**9
                lines.append(orjson.dumps(_event(producer, ns, seq, rng, names)) + b"\n")
            data = b"".join(lines)
            (folder / f"{producer}.jsonl").write_bytes(data)
            written[f"{day.isoformat()}/{producer}.jsonl"] = data
    return written


def fold(root: RuntimeRoot) -> WorldBuilder:
    """Open (rebuild), sync and snapshot: a snapshot covers the whole log (compaction needs it)."""
    builder = WorldBuilder(root, durable=False)
    builder.open()
    builder.sync()
    assert read_json(root.checkpoint)["synced"] is True
    assert builder.snapshot(wait=True)
    return builder


def world(root: RuntimeRoot) -> dict[str, bytes]:
    return {
        str(p.relative_to(root.world)): p.read_bytes() for p in sorted(root.world.rglob("*.json"))
    }


def quarantined(root: RuntimeRoot) -> dict[str, Any]:
    path = root.logs / "event-quarantine.json"
    return dict(read_json(path)["entries"]) if path.exists() else {}


def all_events(root: RuntimeRoot) -> list[dict[str, Any]]:
    return sorted(
        (ev.to_dict() for batch in LogReader(root).batches() for ev in batch.events),
        key=lambda e: e["id"],
    )


def names_on_disk(root: RuntimeRoot) -> dict[str, list[str]]:
    return {d.name: sorted(os.listdir(d)) for d in sorted(root.events.iterdir())}


def tail_json(root: RuntimeRoot) -> str:
    result = CliRunner().invoke(
        cli, ["events", "tail", "-n", "1000000", "-o", "json", "--root", str(root.path)]
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_compressed_days_read_back_identically(runtime_root: RuntimeRoot) -> None:
    original = write_days(runtime_root, days=4, per_file=300)
    fold(runtime_root)
    before = tail_json(runtime_root)
    assert before.count("\n") == 4 * 3 * 300

    report = compact(runtime_root, RetentionPolicy(), today=TODAY)

    assert [d.action for d in report.days] == ["compressed"] * 4
    assert sum(d.files for d in report.days) == 12
    assert report.bytes_before == sum(len(b) for b in original.values())
    assert report.bytes_after == sum(d.bytes_after for d in report.days)
    assert report.bytes_after < report.bytes_before / 4
    for day, names in names_on_disk(runtime_root).items():
        assert names == [f"{p}.jsonl.zst" for p in sorted(PRODUCERS)], day
    for key, data in original.items():
        assert read_log_bytes(runtime_root.events / (key + ".zst")) == data
    # Listed under the same keys and sizes as before.
    listed = {k: s for files in log_files(runtime_root).values() for k, s, _ in files}
    assert listed == {k: len(b) for k, b in original.items()}
    assert tail_json(runtime_root) == before
    # Done once: a second run changes nothing.
    again = compact(runtime_root, RetentionPolicy(), today=TODAY)
    assert (again.days, again.skipped, again.repaired) == ([], [], [])


def test_observer_resumed_after_compaction_folds_nothing_twice_and_misses_nothing(
    runtime_root: RuntimeRoot, tmp_path: Path
) -> None:
    write_days(runtime_root, days=3, per_file=200)
    running = fold(runtime_root)
    folded = running.state.folded
    compact(runtime_root, RetentionPolicy(), today=TODAY)

    # The observer that was running while compaction went on sees nothing new.
    result = running.tick()
    assert (result.events, result.bad_lines) == (0, 0)
    running.sync()
    assert running.state.folded == folded
    assert running.reader.lag_bytes() == 0
    running.unlock()

    # A restarted one resumes from its checkpoint: nothing is read again.
    resumed = WorldBuilder(runtime_root, durable=False)
    assert resumed.open().startswith("resumed")
    assert resumed.tick().events == 0
    assert quarantined(runtime_root) == {}

    # New events after compaction are all folded, once.
    log = EventLog(runtime_root, "observer")
    for i in range(25):
        log.append(
            "observed.resource",
            ("Container", f"new-{i}"),
            {"spec": {"node": "local", "image": "x"}, "health": "Healthy"},
        )
    log.close()
    assert resumed.tick().events == 25
    assert resumed.tick().events == 0
    resumed.sync()

    # Same world as folding the uncompressed log with the same new events.
    plain = RuntimeRoot(tmp_path / "plain").ensure()
    write_days(plain, days=3, per_file=200)
    for day, files in log_files(runtime_root).items():
        if not day.startswith("2020"):
            (plain.events / day).mkdir(parents=True, exist_ok=True)
            for key, _, _ in files:
                shutil.copyfile(runtime_root.events / key, plain.events / key)
    fold(plain)
    assert world(runtime_root) == world(plain)
    assert quarantined(runtime_root) == {}


def test_rebuild_from_scratch_over_compressed_days_equals_the_original_world(
    runtime_root: RuntimeRoot,
) -> None:
    write_days(runtime_root, days=4, per_file=250)
    fold(runtime_root).unlock()
    original = world(runtime_root)
    report = compact(runtime_root, RetentionPolicy(compress_after_days=30), today=TODAY)
    assert len(report.days) == 4

    runtime_root.checkpoint.unlink()
    shutil.rmtree(runtime_root.world)
    shutil.rmtree(runtime_root.state / "snapshots")  # from scratch: the whole log, compressed
    rebuilt = WorldBuilder(runtime_root, durable=False)
    assert rebuilt.open().startswith("rebuilt (no usable checkpoint): 3000 events")
    assert world(runtime_root) == original
    assert quarantined(runtime_root) == {}


def test_only_old_closed_covered_days_are_compressed(runtime_root: RuntimeRoot) -> None:
    today = date(2020, 1, 20)
    write_days(runtime_root, days=20, per_file=20)  # 2020-01-01 .. 2020-01-20 (today)

    # No durable record covers the log yet: nothing is touched.
    report = compact(runtime_root, RetentionPolicy(compress_after_days=5), today=today)
    assert report.days == []
    assert len(report.skipped) == 14 and "not yet covered" in report.skipped[0]

    builder = fold(runtime_root)
    # Newer than the bound: left as they are.
    report = compact(runtime_root, RetentionPolicy(compress_after_days=5), today=today)
    assert [d.day for d in report.days] == [f"2020-01-{n:02d}" for n in range(1, 15)]
    # Not even --older-than 0 touches yesterday or today.
    report = compact(runtime_root, RetentionPolicy(compress_after_days=0), today=today)
    assert [d.day for d in report.days] == [f"2020-01-{n:02d}" for n in range(15, 19)]
    on_disk = names_on_disk(runtime_root)
    assert all(n.endswith(".jsonl.zst") for d in list(on_disk)[:18] for n in on_disk[d])
    assert all(n.endswith(".jsonl") for d in ("2020-01-19", "2020-01-20") for n in on_disk[d])

    # A day that grew past the checkpoint (not covered to its end) waits.
    builder.unlock()
    more = RuntimeRoot(runtime_root.path.parent / "more").ensure()
    write_days(more, days=3, per_file=10)
    fold(more).unlock()
    with (more.events / "2020-01-02" / "observer.jsonl").open("ab") as fh:
        fh.write(orjson.dumps(_event("observer", 1, 10**6, random.Random(1), 5)) + b"\n")
    report = compact(more, RetentionPolicy(compress_after_days=0), today=today)
    assert [d.day for d in report.days] == ["2020-01-01", "2020-01-03"]
    assert report.skipped == [
        "2020-01-02: not yet covered by the observer's durable record (2020-01-02/observer.jsonl)"
    ]


def test_a_day_a_writer_still_holds_is_left_for_later(runtime_root: RuntimeRoot) -> None:
    write_days(runtime_root, days=2, per_file=10)
    fold(runtime_root).unlock()
    held = try_lock(runtime_root.events / "2020-01-01" / "executor.jsonl")  # as EventLog does
    assert held is not None
    try:
        report = compact(runtime_root, RetentionPolicy(), today=TODAY)
    finally:
        held.close()
    assert report.skipped == ["2020-01-01: executor.jsonl is still open for writing"]
    assert [d.day for d in report.days] == ["2020-01-02"]
    assert len(all_events(runtime_root)) == 60  # nothing lost, nothing twice
    report = compact(runtime_root, RetentionPolicy(), today=TODAY)
    assert [d.day for d in report.days] == ["2020-01-01"]
    assert len(all_events(runtime_root)) == 60


def test_deletion_keeps_the_audit_trail_unless_its_own_bound_is_set(
    runtime_root: RuntimeRoot,
) -> None:
    write_days(runtime_root, days=6, per_file=120)
    every = all_events(runtime_root)
    running = fold(runtime_root)
    today = date(2020, 1, 8)  # days 01..06 are 7..2 days old
    policy = RetentionPolicy(compress_after_days=2, delete_after_days=4)
    report = compact(runtime_root, policy, today=today)

    pruned = [d for d in report.days if d.action == "pruned"]
    assert [d.day for d in pruned] == ["2020-01-01", "2020-01-02", "2020-01-03"]
    old = ("2020-01-01", "2020-01-02", "2020-01-03")
    expected = [e for e in every if not e["ts"].startswith(old) or e["type"].startswith("action.")]
    assert sum(d.events_kept or 0 for d in pruned) == sum(
        1 for e in every if e["ts"].startswith(old) and e["type"].startswith("action.")
    )
    assert all_events(runtime_root) == expected
    # The observer that folded those days folds nothing again, and raises no alarm.
    assert running.tick().events == 0
    running.sync()
    running.unlock()
    resumed = WorldBuilder(runtime_root, durable=False)
    assert resumed.open().startswith("resumed")
    assert resumed.tick().events == 0
    assert quarantined(runtime_root) == {}
    resumed.unlock()
    # Pruned once: another run leaves them.
    assert compact(runtime_root, policy, today=today).days == []

    # The audit trail goes only past a bound set for it.
    policy = RetentionPolicy(2, delete_after_days=4, delete_audit_after_days=5)
    report = compact(runtime_root, policy, today=today)
    assert [(d.day, d.action) for d in report.days] == [
        ("2020-01-01", "deleted"),
        ("2020-01-02", "deleted"),
    ]
    assert sorted(os.listdir(runtime_root.events)) == [
        "2020-01-03",
        "2020-01-04",
        "2020-01-05",
        "2020-01-06",
    ]
    assert all_events(runtime_root) == [
        e for e in expected if not e["ts"].startswith(("2020-01-01", "2020-01-02"))
    ]


def test_retention_bounds_are_checked(git_repo: Any, runtime_root: RuntimeRoot) -> None:
    assert RepoConfig().eventLog == EventLogRetention(compressAfterDays=90)
    for bad in (
        {"compressAfterDays": 0},
        {"compressAfterDays": 30, "deleteAfterDays": 30},
        {"deleteAuditAfterDays": 400},
        {"deleteAfterDays": 400, "deleteAuditAfterDays": 300},
        {"keepForever": True},
    ):
        with pytest.raises(ValidationError):
            RepoConfig.model_validate({"eventLog": bad})
    with pytest.raises(ConfigError, match="needs a deletion bound"):
        RetentionPolicy(10, None, 20).check()
    with pytest.raises(ConfigError, match="must come after"):
        RetentionPolicy(10, 5).check()

    bad = ["--older-than", "9", "--delete-after", "9"]
    result = CliRunner().invoke(cli, ["events", "compact", "--root", str(runtime_root.path), *bad])
    assert result.exit_code != 0 and "must come after" in result.output

    # The bounds of homelab.yaml at the repository's tip.
    write_days(runtime_root, days=3, per_file=30)
    fold(runtime_root).unlock()
    git_repo.write(
        "homelab.yaml",
        "eventLog:\n  compressAfterDays: 150\n  deleteAfterDays: 198\n",
    )
    git_repo.write("manifests/.keep", "")
    git_repo.commit()
    args = ["events", "compact", "--root", str(runtime_root.path), "--repo", str(git_repo.path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "policy: compress after 150 days, keep only action.* after 198"
    # Today is real: 2020 is long past both bounds.
    assert [line.split(":")[0] for line in lines[1:4]] == ["2020-01-01"] * 2 + ["2020-01-02"]
    assert "2020-01-01: compressed 3 files" in lines[1]
    assert "action.* events kept" in lines[2]
    assert lines[-1].startswith("3 days changed, ")
    every = all_events(runtime_root)
    assert every and all(e["type"].startswith("action.") for e in every)


def test_a_pair_left_by_a_crash_is_read_once_and_resolved(runtime_root: RuntimeRoot) -> None:
    original = write_days(runtime_root, days=2, per_file=50)
    fold(runtime_root).unlock()
    compact(runtime_root, RetentionPolicy(), today=TODAY)
    events = all_events(runtime_root)
    # As if killed between the rename and the unlink: both forms of two files.
    good, bad = "2020-01-01/observer.jsonl", "2020-01-02/executor.jsonl"
    for key in (good, bad):
        (runtime_root.events / key).write_bytes(original[key])
    packed = runtime_root.events / (bad + ".zst")
    packed.write_bytes(packed.read_bytes()[:-7])  # and one damaged copy
    assert all_events(runtime_root) == events  # the .jsonl counts, nothing twice
    done = recover(runtime_root)
    assert done == [
        "2020-01-01/observer.jsonl: compressed copy verified, .jsonl removed",
        "2020-01-02/executor.jsonl.zst: did not match the .jsonl, removed (compressed again later)",
    ]
    assert not (runtime_root.events / good).exists()
    assert (runtime_root.events / bad).exists() and not packed.exists()
    assert all_events(runtime_root) == events
    report = compact(runtime_root, RetentionPolicy(), today=TODAY)
    assert [(d.day, d.files) for d in report.days] == [("2020-01-02", 1)]
    assert all_events(runtime_root) == events
    # An unfinished tmp file is removed, never read.
    (runtime_root.events / "2020-01-01" / ".supervisor.jsonl.zst.tmp").write_bytes(b"x")
    assert compact(runtime_root, RetentionPolicy(), today=TODAY).repaired == [
        "2020-01-01/.supervisor.jsonl.zst.tmp: unfinished, removed"
    ]


def test_the_observer_service_compacts_by_itself(runtime_root: RuntimeRoot) -> None:
    original = write_days(runtime_root, days=3, per_file=100)
    settings = ObserverSettings(
        durable=False, docker=False, compaction_delay=0.2, compaction_retry=0.2
    )
    service = ObserverService(runtime_root, settings=settings)
    assert service.retention() == RetentionPolicy(90, None, None)
    flagged = ObserverService(runtime_root, settings=ObserverSettings(compress_after_days=7))
    assert flagged.retention() == RetentionPolicy(7, None, None)
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            on_disk = names_on_disk(runtime_root)
            names = [n for d, ns in on_disk.items() if d.startswith("2020") for n in ns]
            if names and all(n.endswith(".zst") for n in names):
                break
            time.sleep(0.1)
        service.write_status()
        status = read_json(runtime_root.state / "observer_status.json")
    finally:
        stop.set()
        thread.join(timeout=20)
    assert not thread.is_alive()
    for key, data in original.items():
        assert not (runtime_root.events / key).exists()
        assert read_log_bytes(runtime_root.events / (key + ".zst")) == data
    assert status["caughtUp"] is True
    assert status["eventsFolded"] == service.builder.state.folded
    resumed = WorldBuilder(runtime_root, durable=False)
    assert resumed.open().startswith("resumed")
    assert resumed.tick().events == 0
    assert quarantined(runtime_root) == {}


def test_the_observer_takes_the_bounds_from_homelab_yaml(
    git_repo: Any, runtime_root: RuntimeRoot
) -> None:
    git_repo.write(
        "homelab.yaml",
        "eventLog:\n  compressAfterDays: 150\n  deleteAfterDays: 198\n",
    )
    git_repo.write("manifests/.keep", "")
    git_repo.commit()
    service = ObserverService(runtime_root, git_repo.path, ObserverSettings(docker=False))
    service._refresh_nodes()  # what the loop does every minute
    assert service.retention() == RetentionPolicy(150, 198, None)
    service.settings.compress_after_days = 30  # the service flag wins for compression
    assert service.retention() == RetentionPolicy(30, 198, None)


def test_a_damaged_compressed_file_is_reported_once_and_never_rewritten(
    runtime_root: RuntimeRoot,
) -> None:
    original = write_days(runtime_root, days=3, per_file=80)
    fold(runtime_root).unlock()
    compact(runtime_root, RetentionPolicy(), today=TODAY)
    damaged = runtime_root.events / "2020-01-01" / "supervisor.jsonl.zst"  # sorted last
    blob = bytearray(damaged.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    damaged.write_bytes(bytes(blob))

    reader = LogReader(runtime_root)
    batches = list(reader.batches())
    notes = [n for b in batches for n in b.notes]
    assert len(notes) == 1 and "events/2020-01-01/supervisor.jsonl.zst cannot be" in notes[0]
    read = sum(len(b.events) for b in batches)
    assert read == 3 * 3 * 80 - 80  # every other file read whole
    assert [n for b in reader.batches() for n in b.notes] == []  # said once

    policy = RetentionPolicy(90, delete_after_days=100)
    report = compact(runtime_root, policy, today=TODAY)
    assert [d.day for d in report.days] == ["2020-01-02", "2020-01-03"]
    assert len(report.skipped) == 1 and report.skipped[0].startswith("2020-01-01: ")
    assert report.skipped[0].endswith("; left as it is")
    assert damaged.read_bytes() == bytes(blob)
    for producer in ("executor", "observer"):  # the day is left whole
        kept = read_log_bytes(runtime_root.events / "2020-01-01" / f"{producer}.jsonl.zst")
        assert kept == original[f"2020-01-01/{producer}.jsonl"]


def test_a_reader_behind_reads_the_rest_of_a_compressed_file_once(
    runtime_root: RuntimeRoot,
) -> None:
    """A follower behind the observer (the notifier, stopped a while) goes on in the .zst."""
    original = write_days(runtime_root, days=2, per_file=100)
    key = "2020-01-01/supervisor.jsonl"
    data = original[key]
    cut = data.index(b"\n", len(data) // 2) + 1
    (runtime_root.events / key).write_bytes(data[:cut])
    behind = LogReader(runtime_root)
    first = [ev.id for b in behind.batches() for ev in b.events]
    (runtime_root.events / key).write_bytes(data)  # the rest of that day, appended later
    prints = behind.fingerprints()
    fold(runtime_root).unlock()
    compact(runtime_root, RetentionPolicy(), today=TODAY)
    assert not (runtime_root.events / key).exists()

    rest = [ev.id for b in behind.batches() for ev in b.events]
    assert len(rest) == data[cut:].count(b"\n")
    assert sorted(first + rest) == [e["id"] for e in all_events(runtime_root)]
    assert [ev for b in behind.batches() for ev in b.events] == []
    # The same from its saved offsets and fingerprints, as after a restart.
    resumed = LogReader(runtime_root, {k: v for k, v in behind.offsets.items()}, prints)
    resumed.offsets[key] = cut
    again = [ev.id for b in resumed.batches() for ev in b.events]
    assert again == rest
    # A prefix that is not what was read: taken as read, never folded twice.
    wrong = LogReader(runtime_root, {key: cut}, {key: {"ino": 1, "sha256": "0" * 64}})
    got = [b for b in wrong.batches() if b.day == "2020-01-01"]
    assert [ev.id for b in got for ev in b.events if ev.source == "supervisor"] == []
    assert wrong.offsets[key] == len(data)
