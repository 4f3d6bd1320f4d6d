"""The rebuild's helper process folds exactly the earlier days' files and sizes it is given.

Real subprocess, real log files: what it sends back equals the same days
folded in this process (records, per-batch reports, offsets, fingerprints),
a file listed and then removed is simply not read, and a helper that fails
leaves the folding shell to fold those days itself, with the same world.
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

from reconciler.events.reader import LogFile, list_log
from reconciler.observer import replay_split
from reconciler.observer.replay import LaterReplay
from reconciler.observer.replay_split import SplitHelper, fold_earlier, split_days
from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot
from reconciler.world.writer import encode_doc

DAYS = ("2024-05-01", "2024-05-02", "2024-05-03")


def _write(root: RuntimeRoot) -> None:
    for day in DAYS:
        folder = root.events / day
        folder.mkdir(parents=True, exist_ok=True)
        lines = [b"not json\n"]
        for n in range(300):
            if day == DAYS[2] and n % 37 < 5:
                continue  # app-0..app-4 stay missing after the second day's listing
            event = {
                "id": f"{day}-{n:08d}",
                "ts": f"{day}T00:00:{n % 60:02d}.000000Z",
                "source": "observer",
                "type": "observed.resource" if n % 5 else "resource.condition",
                "ref": {"kind": "Container", "name": f"app-{n % 37}"},
                "data": {"spec": {"image": f"i:{n}", "node": "local"}, "health": "Healthy"}
                if n % 5
                else {"type": "Flapping"},  # no status: a diagnostic
            }
            lines.append(orjson.dumps(event) + b"\n")
        if day == DAYS[1]:  # a listing that marks app-0..app-9 missing on the later days
            listing = {
                "id": f"{day}-99999999",
                "ts": f"{day}T23:00:00.000000Z",
                "source": "observer",
                "type": "observed.listing",
                "data": {
                    "kind": "Container",
                    "node": "local",
                    "names": [f"app-{n}" for n in range(10, 37)],
                },
            }
            lines.append(orjson.dumps(listing) + b"\n")
        (folder / "observer.jsonl").write_bytes(b"".join(lines))


def _docs(fold: replay_split.EarlierFold) -> dict[object, bytes]:
    return {k: encode_doc(d) for k, d in LaterReplay().merged_state(fold.part).take_dirty().items()}


@pytest.mark.parametrize("fork", [True, False])
def test_helper_folds_the_listed_bytes(
    runtime_root: RuntimeRoot, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    monkeypatch.setattr(SplitHelper, "fork", fork)
    _write(runtime_root)
    listing = list_log(runtime_root)
    earlier = {day: listing[day] for day in DAYS[:2]}
    with open(runtime_root.events / DAYS[1] / "observer.jsonl", "ab") as fh:
        fh.write(b'{"id": "appended after the listing"}\n')  # not read
    helper = SplitHelper(runtime_root, earlier)
    found = helper.result()
    helper.stop()
    assert found is not None
    here = fold_earlier(runtime_root, earlier)
    assert found.offsets == here.offsets and set(found.offsets) == {
        f"{d}/observer.jsonl" for d in DAYS[:2]
    }
    assert found.fingerprints == here.fingerprints and len(found.fingerprints) == 2
    assert found.reports == here.reports and len(found.reports) == 2
    assert all(bad and diags for _, bad, diags in found.reports)  # the bad line, the diagnostics
    assert (found.events, found.bad, found.nbytes) == (here.events, here.bad, here.nbytes)
    assert found.events == 601
    assert _docs(found) == _docs(here) and len(_docs(here)) == 37


@pytest.mark.parametrize("fork", [True, False])
def test_helper_creates_its_resources_files_after_handing_over(
    runtime_root: RuntimeRoot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fork: bool
) -> None:
    monkeypatch.setattr(SplitHelper, "fork", fork)
    _write(runtime_root)
    listing = list_log(runtime_root)
    build = tmp_path / "build"
    (build / "Container").mkdir(parents=True)
    (build / "Container" / "app-3.json").write_bytes(b"written by the shell")
    helper = SplitHelper(runtime_root, {DAYS[0]: listing[DAYS[0]]}, build)
    try:
        found = helper.result()
        assert found is not None  # handed over before (or while) it creates the files
        names = {rec.key.name for rec in found.part.records}
        assert len(names) == 37
        for _ in range(500):  # bounded: at most 5 s
            made = {p.stem for p in (build / "Container").iterdir()}
            if made == names:
                break
            time.sleep(0.01)
        assert made == names
    finally:
        helper.stop()
    sizes = {p.stem: p.stat().st_size for p in (build / "Container").iterdir()}
    assert sizes.pop("app-3") == len(b"written by the shell")  # never truncated
    assert set(sizes.values()) == {0}


def test_helper_does_not_read_a_file_removed_after_the_listing(runtime_root: RuntimeRoot) -> None:
    _write(runtime_root)
    listing = list_log(runtime_root)
    gone = LogFile("2024-04-30/observer.jsonl", 4096, 1)  # listed, then removed
    helper = SplitHelper(runtime_root, {"2024-04-30": [gone], DAYS[0]: listing[DAYS[0]]})
    found = helper.result()
    helper.stop()
    assert found is not None
    assert set(found.offsets) == {f"{DAYS[0]}/observer.jsonl"}


def test_a_fold_with_an_integer_beyond_64_bits_is_handed_over_as_pickle(
    runtime_root: RuntimeRoot,
) -> None:
    folder = runtime_root.events / DAYS[0]
    folder.mkdir(parents=True)
    line = (
        b'{"id":"1","ts":"2024-05-01T00:00:00.000000Z","source":"s","type":"action.succeeded",'
        b'"ref":{"kind":"Container","name":"big"},'
        b'"data":{"action":"a1","attempt":123456789012345678901234567890}}\n'
    )  # (a key the document leaves out: orjson cannot write such an integer either)
    (folder / "observer.jsonl").write_bytes(line)
    fold = fold_earlier(runtime_root, list_log(runtime_root))
    data = replay_split.encode_fold(fold)
    assert data[:1] == b"P"
    assert _docs(replay_split.decode_fold(data)) == _docs(fold)
    small = fold_earlier(runtime_root, {})
    assert replay_split.encode_fold(small)[:1] == b"M"


def test_split_days_gives_each_process_a_day_at_least() -> None:
    def files(*sizes: int) -> dict[str, list[LogFile]]:
        return {f"d{i}": [LogFile(f"d{i}/p.jsonl", size, i)] for i, size in enumerate(sizes)}

    assert split_days(files(10), 0.45) == 0
    assert split_days(files(100, 1), 0.45) == 1
    assert split_days(files(1, 100), 0.45) == 1
    assert split_days(files(*[10] * 10), 0.45) == 5
    assert split_days(files(*[10] * 10), 0.3) == 3


def _world(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "world").rglob("*.json"))
    }


def _killed(*_args: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("fork", [True, False])
@pytest.mark.parametrize("helper_fails", [False, True])
def test_a_split_rebuild_builds_the_lone_world(
    runtime_root: RuntimeRoot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    helper_fails: bool,
    fork: bool,
) -> None:
    """Two processes (or one, when the helper dies: its days are folded here) give the world,
    quarantine and checkpoint offsets of one process; forked or a new Python."""
    monkeypatch.setattr(SplitHelper, "fork", fork)
    _write(runtime_root)
    other = RuntimeRoot(tmp_path / "alone")
    shutil.copytree(runtime_root.events, other.events)
    alone = WorldBuilder(other, durable=False)
    alone.helpers = False
    alone.rebuild()
    if helper_fails and fork:  # the forked child kills itself (-9) where it would fold
        monkeypatch.setattr(replay_split, "fold_earlier", _killed)
    elif helper_fails:  # a real process that fails at once, as a crashed helper would
        monkeypatch.setattr(replay_split.sys, "executable", "/bin/false")
    split = WorldBuilder(runtime_root, durable=False)
    split.helpers, split.split_bytes = True, 0
    result = split.rebuild()
    assert split.rebuild_processes == (1 if helper_fails else 2)
    assert result.events == 3 * 300 + 1 - 44
    assert _world(runtime_root.path) == _world(other.path)
    assert split.reader.offsets == alone.reader.offsets
    digests = [{k: v["sha256"] for k, v in r.reader.fingerprints().items()} for r in (split, alone)]
    assert digests[0] == digests[1] and len(digests[0]) == 3  # (copies: other inodes)
    quarantine = "logs/event-quarantine.json"
    got, want = (
        orjson.loads((r.path / quarantine).read_bytes())["entries"] for r in (runtime_root, other)
    )
    assert [k for k in got] == [k for k in want] and len(got) > 3
    missing = [
        p.stem
        for p in (runtime_root.world / "Container").glob("*.json")
        if orjson.loads(p.read_bytes())["status"]["health"] == "Missing"
    ]
    assert sorted(missing) == [f"app-{n}" for n in range(5)]  # the rest seen again on day 3


_ORPHAN = """
import os, signal, sys
from pathlib import Path
from reconciler.events.reader import list_log
from reconciler.observer.replay_split import SplitHelper
from reconciler.runtime_root import RuntimeRoot

SplitHelper.fork = sys.argv[3] == "fork"
root = RuntimeRoot(Path(sys.argv[1]))
helper = SplitHelper(root, list_log(root), Path(sys.argv[2]))
assert helper.result() is not None
print(helper.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # the shell dies while its helper creates the files
"""


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.parametrize("how", ["fork", "python"])
def test_a_helper_dies_with_its_shell(runtime_root: RuntimeRoot, tmp_path: Path, how: str) -> None:
    """An orphan helper creating files would race the next observer's cleanup of the build
    folder: it gets SIGKILL when the shell dies (PR_SET_PDEATHSIG)."""
    folder = runtime_root.events / DAYS[0]
    folder.mkdir(parents=True)
    names = 100_000
    lines = (
        b'{"id":"%08d","ts":"2024-05-01T00:00:00.000000Z","source":"s","type":"observed.missing",'
        b'"ref":{"kind":"Container","name":"app-%d"},"data":{}}\n' % (n, n)
        for n in range(names)
    )
    (folder / "observer.jsonl").write_bytes(b"".join(lines))
    build = tmp_path / "build"
    (build / "Container").mkdir(parents=True)
    shell = subprocess.run(
        [sys.executable, "-c", _ORPHAN, str(runtime_root.path), str(build), how],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shell.returncode == -signal.SIGKILL, shell.stderr
    pid = int(shell.stdout.strip())
    for _ in range(300):  # bounded: at most 3 s
        if not _alive(pid):
            break
        time.sleep(0.01)
    else:
        pytest.fail(f"helper {pid} outlived its shell")
    assert len(os.listdir(build / "Container")) < names  # killed while creating them
