"""Snapshots: recovery from a snapshot + the log after it equals a full replay, byte for byte.

Real files throughout: a log written line by line over several UTC days and
producers (corrupt lines and torn tails included), a `WorldBuilder` folding
it and snapshotting at arbitrary points, recoveries in fresh runtime roots.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.cli.main import cli
from reconciler.observer.recovery import SnapshotPolicy
from reconciler.observer.service import ObserverService, ObserverSettings
from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot
from reconciler.world.coverage import covered_offsets
from reconciler.world.snapshots import SnapshotStore

PRODUCERS = ["observer", "executor", "ingest-x"]
NAMES = ["a", "b", "c", "d"]
DAYS = ["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"]

_item = st.one_of(
    st.tuples(st.just("observed.resource"), st.sampled_from(NAMES), st.sampled_from("123")),
    st.tuples(st.just("observed.missing"), st.sampled_from(NAMES), st.just("")),
    st.tuples(st.just("action.succeeded"), st.sampled_from(NAMES), st.sampled_from("xyz")),
    st.tuples(
        st.just("resource.condition"), st.sampled_from(NAMES), st.sampled_from(["True", "False"])
    ),
    st.tuples(st.just("observed.listing"), st.sampled_from(["", *NAMES]), st.just("")),
    st.tuples(st.just("garbage"), st.just(""), st.just("")),
)


def _line(n: int, day: str, producer: str, item: tuple[str, str, str]) -> bytes:
    etype, name, arg = item
    if etype == "garbage":
        return b'{"id": "torn garbage\n'
    ref: dict[str, str] | None = {"kind": "Container", "name": name}
    data: dict[str, Any]
    if etype == "observed.resource":
        data = {"spec": {"node": "local", "image": f"img:{arg}"}, "health": "Healthy"}
    elif etype == "action.succeeded":
        data = {"action": f"act-{arg}", "operation": "update", "actor": "op"}
    elif etype == "resource.condition":
        data = {"type": "Flapping", "status": arg, "reason": "R", "message": ""}
    elif etype == "observed.listing":
        ref, data = None, {"kind": "Container", "node": "local", "names": [name] if name else []}
    else:
        data = {}
    event = {
        "id": f"{n:019d}-{producer}-{n:08d}",
        "ts": f"{day}T00:{n // 60 % 60:02d}:{n % 60:02d}.000000Z",
        "source": producer,
        "type": etype,
        "ref": ref,
        "data": data,
    }
    return orjson.dumps(event) + b"\n"


def _write(root: Path, day: str, producer: str, data: bytes) -> None:
    folder = root / "events" / day
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{producer}.jsonl", "ab") as fh:
        fh.write(data)


def _world(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "world").rglob("*.json"))
    }


def _full_replay(events: Path, into: Path) -> dict[str, bytes]:
    shutil.copytree(events, into / "events")
    WorldBuilder(RuntimeRoot(into), durable=False).rebuild()
    return _world(into)


def _copy_for_recovery(src: Path, into: Path) -> RuntimeRoot:
    """The log and the snapshots only: no world, no checkpoint (the worst case)."""
    shutil.copytree(src / "events", into / "events")
    shutil.copytree(src / "state" / "snapshots", into / "state" / "snapshots")
    return RuntimeRoot(into)


@settings(max_examples=30, deadline=None)
@given(
    items=st.lists(
        st.tuples(_item, st.sampled_from(PRODUCERS), st.integers(0, 9)), min_size=1, max_size=50
    ),
    chunks=st.lists(st.integers(1, 9), min_size=1, max_size=8),
    snaps=st.lists(st.booleans(), min_size=1, max_size=8),
    torn=st.lists(st.booleans(), min_size=1, max_size=8),
    day_every=st.integers(5, 30),
    use=st.integers(0, 2),
)
def test_snapshot_plus_tail_equals_a_full_replay(
    items: list[tuple[tuple[str, str, str], str, int]],
    chunks: list[int],
    snaps: list[bool],
    torn: list[bool],
    day_every: int,
    use: int,
) -> None:
    base = Path(tempfile.mkdtemp(prefix="snap-prop-"))
    try:
        inc = base / "inc"
        folder = WorldBuilder(RuntimeRoot(inc), durable=False)
        folder.open()
        pos = step = 0
        pending: tuple[str, str, bytes] | None = None  # a line written in two halves
        taken = 0
        while pos < len(items):
            end = min(pos + chunks[step % len(chunks)], len(items))
            for n in range(pos, end):
                item, producer, _ = items[n]
                day = DAYS[min(n // day_every, len(DAYS) - 1)]  # day switches
                line = _line(n, day, producer, item)
                if pending is not None:
                    _write(inc, pending[0], pending[1], pending[2])
                    pending = None
                if torn[n % len(torn)] and n == end - 1:  # a torn tail at the tick
                    cut = len(line) // 2
                    _write(inc, day, producer, line[:cut])
                    pending = (day, producer, line[cut:])
                else:
                    _write(inc, day, producer, line)
                pos = n + 1
            folder.tick()
            if snaps[step % len(snaps)]:
                assert folder.snapshot(wait=True)
                taken += 1
            step += 1
        if pending is not None:
            _write(inc, pending[0], pending[1], pending[2])
        folder.tick()
        expected = _full_replay(inc / "events", base / "full")
        assert _world(inc) == expected  # the incremental world, for reference
        if not taken:
            return
        store = SnapshotStore(RuntimeRoot(inc))
        paths = store.paths()
        assert 1 <= len(paths) <= 3  # the last three are kept
        for newer in paths[: min(use, len(paths) - 1)]:  # recover from an older one too
            newer.unlink()
        recovered = _copy_for_recovery(inc, base / "rec")
        builder = WorldBuilder(recovered, durable=False)
        how = builder.open()
        assert how.startswith("recovered (no usable checkpoint) from snapshot"), how
        assert _world(recovered.path) == expected
        again = WorldBuilder(recovered, durable=False)
        assert again.open().startswith("resumed")  # recovery left a synced checkpoint
    finally:
        shutil.rmtree(base)


def _fill(root: Path, start: int, count: int, day: str = "2024-05-01") -> None:
    lines = []
    for n in range(start, start + count):
        item = ("observed.resource", NAMES[n % 4], "123"[n % 3])
        if n % 11 == 5:
            item = ("garbage", "", "")
        lines.append(_line(n, day, PRODUCERS[n % 3], item))
    for n, line in zip(range(start, start + count), lines, strict=True):
        _write(root, day, PRODUCERS[n % 3], line)


def test_a_corrupt_newest_snapshot_falls_back_to_the_previous_one(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = WorldBuilder(RuntimeRoot(root), durable=False)
    folder.open()
    _fill(root, 0, 40)
    folder.tick()
    folder.snapshot(wait=True)
    _fill(root, 40, 40, "2024-05-02")
    folder.tick()
    folder.snapshot(wait=True)
    _fill(root, 80, 10, "2024-05-02")
    folder.tick()
    older, newest = sorted(SnapshotStore(RuntimeRoot(root)).paths())
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the compressed body
    newest.write_bytes(bytes(data))
    assert (
        covered_offsets(RuntimeRoot(root))
        == SnapshotStore(RuntimeRoot(root)).read_meta(older).offsets
    )
    recovered = _copy_for_recovery(root, tmp_path / "rec")
    how = WorldBuilder(recovered, durable=False).open()
    assert f"from snapshot {older.name}" in how, how
    assert f"skipped {newest.name} (corrupt)" in how, how
    assert _world(recovered.path) == _full_replay(root / "events", tmp_path / "full")
    left = sorted(p.name for p in (recovered.state / "snapshots").iterdir())
    assert left == [older.name, f"{newest.name}.corrupt"]  # set aside, never read again


def test_a_torn_snapshot_is_never_trusted(tmp_path: Path) -> None:
    root = tmp_path / "root"
    folder = WorldBuilder(RuntimeRoot(root), durable=False)
    _fill(root, 0, 30)
    folder.open()
    folder.snapshot(wait=True)
    (only,) = SnapshotStore(RuntimeRoot(root)).paths()
    only.write_bytes(only.read_bytes()[: only.stat().st_size * 2 // 3])  # torn (a bad disk)
    assert covered_offsets(RuntimeRoot(root)) == {}
    recovered = _copy_for_recovery(root, tmp_path / "rec")
    how = WorldBuilder(recovered, durable=False).open()
    assert how.startswith("rebuilt (no usable checkpoint): 27 events"), how
    assert "(corrupt)" in how
    assert _world(recovered.path) == _full_replay(root / "events", tmp_path / "full")


def test_a_snapshot_of_a_log_rewritten_since_is_set_aside(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _fill(root, 0, 30)
    folder = WorldBuilder(RuntimeRoot(root), durable=False)
    folder.open()
    folder.snapshot(wait=True)
    (snap,) = SnapshotStore(RuntimeRoot(root)).paths()
    log = root / "events" / "2024-05-01" / "observer.jsonl"
    text = log.read_bytes()
    log.write_bytes(text.replace(b"img:1", b"img:9", 1))  # same length, other bytes
    _fill(root, 30, 6)
    recovered = _copy_for_recovery(root, tmp_path / "rec")
    builder = WorldBuilder(recovered, durable=False)
    how = builder.open()
    assert how.startswith("rebuilt (no usable checkpoint)"), how
    assert f"skipped {snap.name} (mismatch)" in how
    assert (recovered.state / "snapshots" / f"{snap.name}.mismatch").exists()
    assert _world(recovered.path) == _full_replay(root / "events", tmp_path / "full")


def test_covered_offsets_are_the_newest_valid_snapshots(tmp_path: Path) -> None:
    runtime = RuntimeRoot(tmp_path / "root")
    assert covered_offsets(runtime) == {}
    _fill(runtime.path, 0, 20)
    folder = WorldBuilder(runtime, durable=False)
    folder.open()
    assert covered_offsets(runtime) == {}  # a checkpoint alone is no durable record now
    folder.snapshot(wait=True)
    first = dict(folder.reader.offsets)
    _fill(runtime.path, 20, 20, "2024-05-02")
    folder.tick()
    assert covered_offsets(runtime) == first
    folder.snapshot(wait=True)
    assert covered_offsets(runtime) == folder.reader.offsets
    assert set(covered_offsets(runtime)) == {
        f"{day}/{p}.jsonl" for day in DAYS[:2] for p in PRODUCERS
    }


def test_ticks_snapshot_every_n_events_and_keep_the_last_few(tmp_path: Path) -> None:
    runtime = RuntimeRoot(tmp_path / "root")
    policy = SnapshotPolicy(every_events=10, every_seconds=3600, keep=2)
    folder = WorldBuilder(runtime, durable=False, snapshots=policy)
    folder.open()
    names = []
    for start in range(0, 60, 6):
        _fill(runtime.path, start, 6)
        folder.tick()
        folder.wait_snapshot()
        names.append(tuple(p.name for p in folder.snapshots.paths()))
    # 6 events a tick (some of them corrupt lines): a snapshot every second tick
    counts = [len(n) for n in names]
    assert counts == [0, 1, 1, 2, 2, 2, 2, 2, 2, 2]
    assert len(set(names[1:])) == 5  # each new one replaced the oldest
    meta, snap = folder.snapshots.read(folder.snapshots.paths()[0])
    assert meta.documents == len(folder.state.docs) == 4
    assert snap.docs == folder.state.docs  # re-encoding only the changed ones misses nothing


def test_world_rebuild_uses_snapshots_and_from_scratch_ignores_them(tmp_path: Path) -> None:
    runtime = RuntimeRoot(tmp_path / "root")
    _fill(runtime.path, 0, 30)
    runner = CliRunner()
    root = ["--root", str(runtime.path)]
    out = runner.invoke(cli, ["world", "rebuild", *root])
    assert out.exit_code == 0, out.output
    assert "from 27 events, the whole log (no usable snapshot)" in out.output
    scratch = runner.invoke(cli, ["world", "rebuild", "--from-scratch", *root])
    assert scratch.exit_code == 0, scratch.output
    assert "rebuilt 4 world documents from 27 events, the whole log (--from-scratch" in (
        scratch.output
    )
    assert "wrote snapshot snapshot-" in scratch.output
    _fill(runtime.path, 30, 10)
    again = runner.invoke(cli, ["world", "rebuild", *root])
    assert again.exit_code == 0, again.output
    (snap,) = SnapshotStore(runtime).paths()
    assert f"from snapshot {snap.name} (27 events folded" in again.output
    assert "+ 9 events after it" in again.output
    assert _world(runtime.path) == _full_replay(runtime.events, tmp_path / "full")


def test_the_observer_service_snapshots_and_recovers_from_its_snapshot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="reconciler.observer")
    runtime = RuntimeRoot(tmp_path / "root")
    runtime.ensure()
    policy = SnapshotPolicy(every_events=20, every_seconds=3600, keep=3)
    settings = ObserverSettings(durable=False, docker=False, snapshots=policy, poll=0.2)

    def run_until(check: Callable[[], bool]) -> None:
        service = ObserverService(runtime, settings=settings)
        stop = threading.Event()
        thread = threading.Thread(target=service.run, args=(stop,))
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while not check():
                assert time.monotonic() < deadline, "the observer did not get there in 30 s"
                time.sleep(0.05)
        finally:
            stop.set()
            thread.join(timeout=20)
        assert not thread.is_alive()

    store = SnapshotStore(runtime)
    _fill(runtime.path, 0, 50)
    run_until(lambda: bool(store.paths()))
    meta = store.read_meta(store.paths()[0])
    assert meta.events >= 20 and meta.documents == 4
    runtime.checkpoint.unlink()
    _fill(runtime.path, 50, 5)
    run_until(lambda: runtime.checkpoint.exists())
    assert f"recovered (no usable checkpoint) from snapshot {meta.name}" in caplog.text
    status = orjson.loads((runtime.state / "observer_status.json").read_bytes())
    assert status["documents"] == 4
    assert _world(runtime.path) == _full_replay(runtime.events, tmp_path / "full")


def test_an_unclean_reboot_recovers_from_the_snapshot_and_repairs_torn_documents(
    tmp_path: Path,
) -> None:
    runtime = RuntimeRoot(tmp_path / "root")
    _fill(runtime.path, 0, 40)
    folder = WorldBuilder(runtime, durable=False)
    folder.open()
    folder.snapshot(wait=True)
    _fill(runtime.path, 40, 20, "2024-05-02")
    folder.tick()  # written, not synced
    checkpoint = orjson.loads(runtime.checkpoint.read_bytes())
    assert checkpoint["synced"] is False
    checkpoint["bootId"] = "another-boot"  # as after a power loss
    runtime.checkpoint.write_bytes(orjson.dumps(checkpoint))
    doc = runtime.world / "Container" / "a.json"
    doc.write_bytes(doc.read_bytes()[:40])  # a document the power loss tore
    (runtime.world / "Container" / "stray.json").write_bytes(b"{}")  # one the log never had
    how = WorldBuilder(runtime, durable=False).open()
    assert how.startswith("recovered (the machine went down uncleanly"), how
    assert "(36 events folded" in how and "+ 19 events after it" in how
    assert _world(runtime.path) == _full_replay(runtime.events, tmp_path / "full")
