"""Kill -9 during compaction, at random moments, never loses an event or shows one twice.

A real subprocess compacts (and, every other round, prunes past a deletion
bound) a log of about 18 MB over six old days; it is killed with SIGKILL at
a random moment of its run. Then, before any repair: a reader from scratch
sees every event exactly once (the audit trail always; past the deletion
bound, the rest may already be gone), and the observer's checkpoint still
finds nothing new. Then `recover` leaves no day with both forms of a file,
and a compaction run to its end gives exactly the bytes it should.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import orjson
import pytest

from reconciler.atomic_files import read_json
from reconciler.events.reader import LogReader, read_log_bytes
from reconciler.observer.compaction import RetentionPolicy, compact, recover
from reconciler.runtime_root import RuntimeRoot
from tests.observer.test_compaction import fold, write_days

ROUNDS = 24
TODAY = date(2020, 1, 9)  # the six days 01..06 are 8..3 days old
DELETE_AFTER = 5  # pruning rounds: days 01..03 keep only their action.* events
PRUNED = ("2020-01-01", "2020-01-02", "2020-01-03")

_CHILD = """
import sys
from datetime import date
from pathlib import Path
from reconciler.observer.compaction import RetentionPolicy, compact
from reconciler.runtime_root import RuntimeRoot
delete = None if sys.argv[2] == "-" else int(sys.argv[2])
policy = RetentionPolicy(0, delete)
print("go", flush=True)
report = compact(RuntimeRoot(Path(sys.argv[1])), policy, today=date.fromisoformat(sys.argv[3]))
print("done", len(report.days), flush=True)
"""


def _run_child(root: Path, delete: int | None, kill_after: float | None) -> float:
    """Run a compaction in a subprocess; SIGKILL it `kill_after` s after it starts."""
    args = [sys.executable, "-c", _CHILD, str(root), "-" if delete is None else str(delete)]
    proc = subprocess.Popen(
        [*args, TODAY.isoformat()], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"go\n"
    t0 = time.monotonic()
    if kill_after is None:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        assert out.startswith(b"done")
        return time.monotonic() - t0
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    return time.monotonic() - t0


def _ids(root: RuntimeRoot) -> list[str]:
    ids = [ev.id for batch in LogReader(root).batches() for ev in batch.events]
    return ids


def _audit(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join(line for line in lines if orjson.loads(line)["type"].startswith("action."))


@pytest.mark.slow
def test_kill_9_during_compaction_loses_nothing(tmp_path: Path) -> None:
    template = RuntimeRoot(tmp_path / "template").ensure()
    original = write_days(template, days=6, per_file=2000)
    fold(template).unlock()
    offsets = read_json(template.checkpoint)["offsets"]
    every = {
        orjson.loads(line)["id"]: key[:10]
        for key, data in original.items()
        for line in data.splitlines()
    }
    audit = {
        orjson.loads(line)["id"] for data in original.values() for line in _audit(data).splitlines()
    }
    # How long a whole run takes here, to kill inside it.
    probe = tmp_path / "probe"
    shutil.copytree(template.path, probe)
    whole = _run_child(probe, DELETE_AFTER, None)
    shutil.rmtree(probe)

    rng = random.Random(1313)
    states: set[str] = set()
    for n in range(ROUNDS):
        root = RuntimeRoot(tmp_path / f"round-{n}")
        shutil.copytree(template.path, root.path)
        delete = DELETE_AFTER if n % 2 else None
        _run_child(root.path, delete, rng.uniform(0.0, whole))

        # Before any repair: every event once; past the bound, the audit trail at least.
        ids = _ids(root)
        assert len(ids) == len(set(ids)), f"round {n}: an event read twice"
        seen = set(ids)
        assert seen <= every.keys()
        assert audit <= seen, f"round {n}: an action.* event lost"
        missing = every.keys() - seen
        assert delete is not None or not missing, f"round {n}: {len(missing)} events lost"
        assert all(every[i] in PRUNED for i in missing), f"round {n}: a kept day lost events"
        # The observer that folded the log finds nothing new in it.
        resumed = LogReader(root, offsets)
        assert [b.events or b.bad for b in resumed.batches()] == [], f"round {n}"

        pairs = [p for p in root.events.rglob("*.jsonl") if p.with_name(p.name + ".zst").exists()]
        temps = list(root.events.rglob(".*.tmp"))
        states.add("pair" if pairs else "tmp" if temps else "clean")
        recover(root)
        assert not [
            p for p in root.events.rglob("*.jsonl") if p.with_name(p.name + ".zst").exists()
        ]
        assert not list(root.events.rglob(".*.tmp"))
        assert set(_ids(root)) == seen

        # Finished afterwards: exactly the bytes it should hold.
        compact(root, RetentionPolicy(0, delete), today=TODAY)
        for key, data in original.items():
            assert not (root.events / key).exists()
            packed = root.events / (key + ".zst")
            want = _audit(data) if delete is not None and key.startswith(PRUNED) else data
            if not want:  # a producer with no action.* events that day: no file left
                assert not packed.exists(), f"round {n}: {key}"
                continue
            assert read_log_bytes(packed) == want, f"round {n}: {key}"
        shutil.rmtree(root.path)
    # The kills landed at different points of the run.
    assert len(states) >= 2, states
