"""Compaction and snapshots together: what a snapshot covers may be compressed, and the
snapshot still recovers the world afterwards (the compressed day keeps its key, its
length and its prefix hash), byte for byte, without a full replay."""

from __future__ import annotations

from reconciler.observer.compaction import RetentionPolicy, compact
from reconciler.observer.world_builder import WorldBuilder
from reconciler.runtime_root import RuntimeRoot
from reconciler.world.coverage import covered_offsets
from tests.observer.test_compaction import PRODUCERS, TODAY, names_on_disk, world, write_days


def test_a_day_covered_by_a_snapshot_is_compressed_and_the_snapshot_still_recovers(
    runtime_root: RuntimeRoot,
) -> None:
    written = write_days(runtime_root, days=3, per_file=200)
    builder = WorldBuilder(runtime_root, durable=False)
    builder.open()
    builder.sync()
    assert covered_offsets(runtime_root) == {}, "no snapshot yet: nothing is covered"
    assert compact(runtime_root, RetentionPolicy(), today=TODAY).days == []
    assert builder.snapshot(wait=True)
    builder.unlock()
    assert covered_offsets(runtime_root) == {k: len(b) for k, b in written.items()}
    before = world(runtime_root)

    report = compact(runtime_root, RetentionPolicy(), today=TODAY)
    assert [d.action for d in report.days] == ["compressed"] * 3
    for names in names_on_disk(runtime_root).values():
        assert names == [f"{p}.jsonl.zst" for p in sorted(PRODUCERS)]

    runtime_root.checkpoint.unlink()
    again = WorldBuilder(runtime_root, durable=False)
    said = again.open()
    assert "snapshot" in said, said
    assert ".mismatch" not in " ".join(p.name for p in (runtime_root.state / "snapshots").iterdir())
    assert world(runtime_root) == before
