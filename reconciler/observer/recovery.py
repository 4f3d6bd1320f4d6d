"""Recovery's parts: the snapshot policy, what a recovery did, and the world-on-disk check.

`SnapshotPolicy` says when the folding shell snapshots its fold; `Recovery`
reports what `WorldBuilder.recover` did (from which snapshot, how many events
replayed, which snapshots were set aside); `WorldRead` reads every world
document on a second thread while a recovery folds, and `differing` picks
the documents whose bytes on disk are not the recovered ones; `same_files`
lets a snapshot's fingerprints follow a log that was copied or restored
(new inodes, same bytes). Used by `reconciler.observer.world_builder`.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.resources.key import ResourceKey
from reconciler.world.snapshots import DEFAULT_KEEP, SnapshotMeta
from reconciler.world.writer import encode_doc

if TYPE_CHECKING:
    from reconciler.observer.world_builder import TickResult


@dataclass(frozen=True)
class SnapshotPolicy:
    """When the observer snapshots its fold (whichever comes first, once events arrived)."""

    every_events: int = 10_000
    every_seconds: float = 600.0
    keep: int = DEFAULT_KEEP


@dataclass(frozen=True)
class Recovery:
    """What `recover` did: from which snapshot (None: the whole log), how much it replayed."""

    snapshot: SnapshotMeta | None
    result: TickResult
    seconds: float
    skipped: tuple[str, ...] = ()  # snapshots not used, and why

    def describe(self) -> str:
        """Where the world came from: `from snapshot X (...) + N events after it`, or the log."""
        skipped = "".join(f"; skipped {why}" for why in self.skipped)
        if self.snapshot is None:
            return f"from {self.result.events} events, the whole log (no usable snapshot{skipped})"
        snap = self.snapshot
        return (
            f"from snapshot {snap.name} ({snap.events} events folded, taken {snap.created_at}) "
            f"+ {self.result.events} events after it{skipped}"
        )


def same_files(events: Path, prints: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A snapshot's fingerprints, each file's inode taken as it is now.

    The prefix hash is what proves a log file holds what was folded; the inode
    changes when a runtime root is restored from a backup or copied, which
    must not make its snapshots useless.
    """
    out = {}
    for key, found in prints.items():
        try:
            out[key] = {**found, "ino": os.stat(events / key).st_ino}
        except OSError:
            out[key] = found
    return out


class WorldRead(threading.Thread):
    """Reads every world document on disk, on its own thread, while the recovery folds.

    The reads release the GIL, so they overlap the snapshot's decoding, the
    log's prefix hashing and the tail's fold; `found` maps `kind/name.json`
    to the bytes. The observer's lock keeps every writer away meanwhile.
    """

    def __init__(self, world: Path) -> None:
        super().__init__(name="world-read", daemon=True)
        self.world = str(world)
        self.found: dict[str, bytes] = {}

    def run(self) -> None:
        """What cannot be read is left out: compared as missing, so written again."""
        found = self.found
        with contextlib.suppress(OSError):
            for kind in [e.name for e in os.scandir(self.world) if e.is_dir()]:
                folder = f"{self.world}/{kind}"
                for entry in os.scandir(folder):
                    name = entry.name
                    if name.endswith(".json") and not name.startswith("."):
                        with contextlib.suppress(OSError), open(f"{folder}/{name}", "rb") as fh:
                            found[f"{kind}/{name}"] = fh.read()


def differing(
    docs: dict[ResourceKey, dict[str, Any]], on_disk: dict[str, bytes]
) -> dict[ResourceKey, dict[str, Any]]:
    """The documents whose bytes on disk are not what `encode_doc` gives (missing, torn, old).

    Those found equal stay unknown to the writer, which at worst rewrites one
    of them once, unchanged.
    """
    out = {}
    for ref, doc in docs.items():
        disk = on_disk.get(f"{ref[0]}/{ref[1]}.json")
        if disk is None or disk != encode_doc(doc):
            out[ref] = doc
    return out
