"""What part of the event log a durable record of the folded world covers.

`covered_offsets(root)` returns `{key: offset}` (keys like
`2024-05-01/observer.jsonl`, the `LogReader`'s keys): every event before
`offset` in that file is already folded into a record that a recovery can
start from, so compaction may compress (and retention may later drop) a
closed day whose files are all covered to their end. Today that record is the
observer's checkpoint, and only while it says the world on disk is synced;
the snapshots (`ROOT/state/snapshots/`) take its place once they exist.
Called by compaction and by `homelab events compact`.
"""

from __future__ import annotations

from reconciler.runtime_root import RuntimeRoot
from reconciler.world.writer import read_checkpoint


def covered_offsets(root: RuntimeRoot) -> dict[str, int]:
    checkpoint = read_checkpoint(root)
    if checkpoint is None or not checkpoint.synced:
        return {}
    return dict(checkpoint.offsets)
