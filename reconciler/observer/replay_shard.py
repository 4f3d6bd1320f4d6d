"""The second core of a from-scratch rebuild: a process that folds shard 1 of the log.

`Replay` can fold the resources of one shard only (`Replay.fold_shard`,
`shard_of`): a resource's record depends only on its own events and the
listings. `ShardHelper` starts `python -m reconciler.observer.replay_shard`
with the exact list of log files and sizes the folding shell reads (sent on
stdin as JSON), which reads and decodes the same bytes, folds shard 1, and
writes back (pickle on stdout) its documents, diagnostics, the offsets it
reached and the number of events per batch. The shell folds shard 0 at the
same time, then merges (`Replay.merged_state`); if the helper failed, or
read anything else than the shell did (a file compacted or removed in
between), the result is thrown away and the shell folds the whole log alone.
The pickle comes from this program's own child over a pipe, never from disk.
Called by the folding shell (`reconciler.observer.world_builder`).
"""

from __future__ import annotations

import gc
import json
import pickle
import subprocess
import sys
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

from reconciler.events.reader import LogFile, LogReader
from reconciler.observer.replay import Replay, ShardPart
from reconciler.runtime_root import RuntimeRoot

_BY_ID = attrgetter("id")


@dataclass
class HelperResult:
    part: ShardPart
    offsets: dict[str, int]
    counts: list[int]


class ShardHelper:
    """The helper process of one rebuild."""

    def __init__(self, root: RuntimeRoot, listing: dict[str, list[LogFile]]) -> None:
        request = {
            "root": str(root.path),
            "listing": {
                day: [[f.key, f.size, f.ino, f.compressed] for f in files]
                for day, files in listing.items()
            },
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps(request).encode())
            self._proc.stdin.close()
        except OSError:
            pass  # it died at once: `result` says so

    def result(self) -> HelperResult | None:
        """Its fold, or None if it failed."""
        assert self._proc.stdout is not None
        try:
            data = self._proc.stdout.read()
        finally:
            self._proc.stdout.close()
            code = self._proc.wait()
        if code != 0 or not data:
            return None
        try:
            found = pickle.loads(data)
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError):  # a cut pickle
            return None
        return found if isinstance(found, HelperResult) else None

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()


def _fold_shard_one(request: dict[str, Any]) -> HelperResult:
    root = RuntimeRoot(Path(request["root"]))
    listing = {
        day: [LogFile(key, size, ino, compressed) for key, size, ino, compressed in files]
        for day, files in request["listing"].items()
    }
    reader = LogReader(root)
    replay = Replay(shard=1)
    counts = []
    for index, batch in enumerate(reader.batches(listing)):
        batch.events.sort(key=_BY_ID)
        replay.fold_shard(batch.events, index)
        counts.append(len(batch.events))
    return HelperResult(replay.part(), dict(reader.offsets), counts)


if __name__ == "__main__":
    # Through the module's own name, so the pickle names its classes as the shell knows them.
    from reconciler.observer import replay_shard

    gc.disable()  # millions of small objects, no cycles
    result = replay_shard._fold_shard_one(json.loads(sys.stdin.buffer.read()))
    sys.stdout.buffer.write(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
    sys.stdout.buffer.flush()
