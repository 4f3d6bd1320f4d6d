"""The rebuild's helper process folds shard 1 of exactly the files and sizes it is given.

Real subprocess, real log files: its part equals shard 1 folded in this
process, and what it reached (offsets, events per batch), which the folding
shell compares with its own read before merging, says when it read anything
else (a file gone between the shell's listing and the helper's read).
"""

from __future__ import annotations

from operator import attrgetter

import orjson

from reconciler.events.reader import LogFile, LogReader, list_log
from reconciler.observer.replay import Replay
from reconciler.observer.replay_shard import ShardHelper
from reconciler.runtime_root import RuntimeRoot


def _write(root: RuntimeRoot) -> None:
    for day in ("2024-05-01", "2024-05-02"):
        folder = root.events / day
        folder.mkdir(parents=True, exist_ok=True)
        lines = [b"not json\n"]
        for n in range(300):
            event = {
                "id": f"{day}-{n:08d}",
                "ts": f"{day}T00:00:{n % 60:02d}.000000Z",
                "source": "observer",
                "type": "observed.resource" if n % 5 else "resource.condition",
                "ref": {"kind": "Container", "name": f"app-{n % 37}"},
                "data": {"spec": {"image": f"i:{n}"}, "health": "Healthy"}
                if n % 5
                else {"type": "Flapping"},  # no status: a diagnostic
            }
            lines.append(orjson.dumps(event) + b"\n")
        (folder / "observer.jsonl").write_bytes(b"".join(lines))


def test_helper_folds_shard_one_of_the_listed_bytes(runtime_root: RuntimeRoot) -> None:
    _write(runtime_root)
    listing = list_log(runtime_root)
    with open(runtime_root.events / "2024-05-02" / "observer.jsonl", "ab") as fh:
        fh.write(b'{"id": "appended after the listing"}\n')  # not read by either
    helper = ShardHelper(runtime_root, listing)
    found = helper.result()
    helper.stop()
    assert found is not None
    reader, here = LogReader(runtime_root), Replay(shard=1)
    counts = []
    for index, batch in enumerate(reader.batches(listing)):
        batch.events.sort(key=attrgetter("id"))
        here.fold_shard(batch.events, index)
        counts.append(len(batch.events))
    want = here.part()
    assert found.offsets == reader.offsets
    assert found.counts == counts == [300, 300]
    assert found.part.docs == want.docs and len(want.docs) > 10
    assert found.part.diagnostics == want.diagnostics and want.diagnostics
    assert found.part.folded == want.folded


def test_helper_reports_a_file_it_could_not_read(runtime_root: RuntimeRoot) -> None:
    _write(runtime_root)
    listing = list_log(runtime_root)
    gone = LogFile("2024-05-03/observer.jsonl", 4096, 1)  # listed, then removed
    listing["2024-05-03"] = [gone]
    helper = ShardHelper(runtime_root, listing)
    found = helper.result()
    helper.stop()
    assert found is not None
    assert gone.key not in found.offsets  # so the shell's offsets differ: it folds alone
    assert set(found.offsets) == {f.key for files in list_log(runtime_root).values() for f in files}
