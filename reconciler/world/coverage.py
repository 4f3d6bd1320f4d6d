"""What part of the event log a durable record of the folded world covers.

`covered_offsets(root)` returns `{key: offset}` (keys like
`2024-05-01/observer.jsonl`, the `LogReader`'s keys): every event before
`offset` in that file is already folded into a record that a recovery can
start from, so compaction may compress (and retention may later drop) a
closed day whose files are all covered to their end. That record is the
newest snapshot under `ROOT/state/snapshots/` whose checksum holds
(`reconciler.world.snapshots`): durable by construction (written with
fsync after the log files it covers were fsynced), and what `WorldBuilder.recover`
starts from. No valid snapshot: nothing is covered. Called by compaction and
by `homelab events compact`.
"""

from __future__ import annotations

from reconciler.runtime_root import RuntimeRoot
from reconciler.world.snapshots import SnapshotStore


def covered_offsets(root: RuntimeRoot) -> dict[str, int]:
    meta = SnapshotStore(root).newest_valid()
    return {} if meta is None else dict(meta.offsets)
