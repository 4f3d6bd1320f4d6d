"""A rebuild over an empty world builds it in `.world-build/` and swaps it in whole.

On a real filesystem: the world it swaps in is byte-identical to the one
folded tick by tick; a file created ahead for a resource that got no
document is removed; each crash state of the build (a partial build folder
beside the old world, the old world left under the build folder's name
after the swap) and real kill -9s at moments spread over a rebuild leave an
observer that comes up with the complete world and no build folder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from reconciler.observer.fresh_world import world_is_empty
from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot

NAMES = 400


def _write_log(root: RuntimeRoot, count: int) -> None:
    """`count` events over NAMES Containers on two days, one corrupt line, one bad payload."""
    for day, start in (("2024-05-01", 0), ("2024-05-02", count // 2)):
        folder = root.events / day
        folder.mkdir(parents=True, exist_ok=True)
        lines = []
        for n in range(start, start + count // 2):
            kind = n % 11
            event = {
                "id": f"{n:019d}-observer-{n:08d}",
                "ts": f"{day}T00:{n // 60 % 60:02d}:{n % 60:02d}.000000Z",
                "source": "observer",
                "type": "observed.missing" if kind == 0 else "observed.resource",
                "ref": {"kind": "Container", "name": f"app-{n % NAMES}"},
                "data": {
                    "spec": {"node": "local", "image": f"img:{n % 5}"},
                    "health": "Healthy",
                    "conditions": [{"type": "Flapping", "status": "True" if n % 3 else "False"}],
                },
            }
            lines.append(orjson.dumps(event) + b"\n")
        if day == "2024-05-01":
            lines.append(b'{"id": "torn\n')  # quarantined, not folded
            bad = {
                "id": f"{start:019d}-observer-zzzzzzzz",
                "ts": f"{day}T00:00:00.000000Z",
                "source": "observer",
                "type": "observed.resource",
                "ref": {"kind": "Container", "name": "only-bad-events"},
                "data": {"spec": "not an object", "health": "Healthy"},
            }
            lines.append(orjson.dumps(bad) + b"\n")  # a file is created ahead, no document
        (folder / "observer.jsonl").write_bytes(b"".join(lines))


def _world(root: RuntimeRoot) -> dict[str, bytes]:
    return {
        str(p.relative_to(root.world)): p.read_bytes()
        for p in sorted(root.world.rglob("*.json"))
        if not p.name.startswith(".")
    }


def _incremental(tmp_path: Path, count: int) -> dict[str, bytes]:
    """The world the running observer folds, tick by tick (one tick per day here)."""
    root = RuntimeRoot(tmp_path / "incremental").ensure()
    folder = WorldBuilder(root, durable=False)
    assert folder.open().startswith("rebuilt")  # of nothing: an empty log
    _write_log(root, count)
    assert folder.tick().events == count + 1  # the bad payload is decoded, not folded
    return _world(root)


def _reset(root: RuntimeRoot) -> None:
    shutil.rmtree(root.world)
    root.world.mkdir()
    root.checkpoint.unlink(missing_ok=True)


@pytest.mark.parametrize("helper", [True, False], ids=["files-created-ahead", "writer-alone"])
def test_empty_world_is_built_aside_and_swapped_in(
    runtime_root: RuntimeRoot, tmp_path: Path, helper: bool
) -> None:
    _write_log(runtime_root, 4000)
    expected = _incremental(tmp_path, 4000)
    assert world_is_empty(runtime_root)
    folder = WorldBuilder(runtime_root)
    folder.helpers = helper  # whatever the machine's load
    result = folder.rebuild()
    assert result.written == NAMES
    assert _world(runtime_root) == expected
    assert "Container/only-bad-events.json" not in expected
    assert not runtime_root.world_build.exists()
    assert not world_is_empty(runtime_root)
    modes = {p.stat().st_mode & 0o777 for p in runtime_root.world.rglob("*")}
    assert modes <= {0o600, 0o700}, modes  # the runtime tree stays private
    # A second rebuild over that world compares in place and writes nothing.
    runtime_root.checkpoint.unlink()
    assert WorldBuilder(runtime_root).rebuild().written == 0
    assert _world(runtime_root) == expected


def test_crash_before_the_swap_leaves_the_old_world_and_a_build_to_discard(
    runtime_root: RuntimeRoot, tmp_path: Path
) -> None:
    _write_log(runtime_root, 2000)
    expected = _incremental(tmp_path, 2000)
    build = runtime_root.world_build / "Container"
    build.mkdir(parents=True)
    (build / "app-1.json").write_bytes(b"")  # created ahead, never written
    (build / "app-2.json").write_bytes(b'{"apiVersion": "hom')  # written half-way
    folder = WorldBuilder(runtime_root)
    how = folder.open()
    assert how.startswith("rebuilt (no usable checkpoint)"), how
    assert not runtime_root.world_build.exists()
    assert _world(runtime_root) == expected


def test_crash_after_the_swap_leaves_the_new_world_and_the_old_one_to_discard(
    runtime_root: RuntimeRoot, tmp_path: Path
) -> None:
    _write_log(runtime_root, 2000)
    expected = _incremental(tmp_path, 2000)
    WorldBuilder(runtime_root).rebuild()
    runtime_root.checkpoint.unlink()  # the checkpoint comes after the swap: not written yet
    old = runtime_root.world_build / "Container"
    old.mkdir(parents=True)
    (old / "stale.json").write_bytes(b"{}")
    folder = WorldBuilder(runtime_root)
    how = folder.open()
    assert how.startswith("rebuilt (no usable checkpoint)"), how
    assert not runtime_root.world_build.exists()
    assert _world(runtime_root) == expected


_CHILD = """
import sys
from pathlib import Path
from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot
folder = WorldBuilder(RuntimeRoot(Path(sys.argv[1])))
folder.helpers = True  # files created ahead by the helper, whatever the load
folder.lock()
print("rebuilt", folder.rebuild().events, flush=True)
"""


def test_kill_9_during_an_empty_world_rebuild_leaves_a_complete_world(
    runtime_root: RuntimeRoot, tmp_path: Path
) -> None:
    _write_log(runtime_root, 6000)
    expected = _incremental(tmp_path, 6000)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    cmd = [sys.executable, "-c", _CHILD, str(runtime_root.path)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, capture_output=True)
    whole = time.perf_counter() - t0
    states = set()
    for k in range(8):  # kill at moments spread over a whole rebuild, swap included
        _reset(runtime_root)
        child = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE)
        time.sleep(whole * (0.3 + 0.1 * k))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=60)
        finished = b"rebuilt" in out
        found = _world(runtime_root)
        states.add((finished, bool(found)))
        # Never a mix: the old (empty) world or the complete new one.
        assert found in ({}, expected), (k, len(found))
        if finished:
            assert found == expected
        folder = WorldBuilder(runtime_root)
        how = folder.open()
        assert how.startswith(("rebuilt", "resumed")), how
        folder.unlock()
        assert _world(runtime_root) == expected, k
        assert not runtime_root.world_build.exists()
    assert (False, False) in states, states  # at least one kill landed before the swap
