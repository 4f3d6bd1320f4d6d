"""Kill -9 of a folding observer at random points never leaves a torn document or checkpoint.

A real subprocess folds a log of thousands of events into thousands of world
documents while the test appends more; it is killed with SIGKILL at a random
moment, the files on disk are checked, and a restarted folder converges to
what a full rebuild of the same log gives.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot

_CHILD = """
import sys
from pathlib import Path
from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot
folder = WorldBuilder(RuntimeRoot(Path(sys.argv[1])), durable=False)
folder.lock()
print("open", folder.open(), flush=True)
while True:
    folder.tick()
"""


def _append(root: Path, start: int, count: int, names: int) -> None:
    folder = root / "events" / "2024-05-01"
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for n in range(start, start + count):
        spec = {"node": "local", "image": f"img:{n % 5}"}
        event = {
            "id": f"{n:019d}-observer-{n:08d}",
            "ts": f"2024-05-01T00:{n // 60 % 60:02d}:{n % 60:02d}.000000Z",
            "source": "observer",
            "type": "observed.resource" if n % 7 else "observed.missing",
            "ref": {"kind": "Container", "name": f"app-{n % names}"},
            "data": {"spec": spec, "health": "Healthy"},
        }
        lines.append(orjson.dumps(event) + b"\n")
    with open(folder / "observer.jsonl", "ab") as fh:
        fh.write(b"".join(lines))


def _check_intact(root: Path) -> None:
    for path in (root / "world").rglob("*.json"):
        if not path.name.startswith("."):
            doc = orjson.loads(path.read_bytes())  # raises on a torn document
            assert doc["kind"] == "Container"
    if (root / "state" / "observer_checkpoint.json").exists():
        orjson.loads((root / "state" / "observer_checkpoint.json").read_bytes())


def _world(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "world").rglob("*.json"))
    }


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kill_9_while_folding_never_tears_and_restart_converges(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = tmp_path / "root"
    _append(root, 0, 3000, 600)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(root)], env=env, stdout=subprocess.PIPE
    )
    try:
        time.sleep(rng.uniform(0.3, 1.5))
        _append(root, 3000, 1000, 900)
        time.sleep(rng.uniform(0.0, 0.3))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    _check_intact(root)
    _append(root, 4000, 200, 900)
    restarted = WorldBuilder(RuntimeRoot(root), durable=False)
    restarted.open()
    restarted.tick()
    expected = tmp_path / "expected"
    shutil.copytree(root / "events", expected / "events")
    WorldBuilder(RuntimeRoot(expected), durable=False).rebuild()
    assert _world(root) == _world(expected)
