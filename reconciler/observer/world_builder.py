"""The folding shell: read new events, fold them, write the world, then the checkpoint.

`WorldBuilder.open` resumes from `state/observer_checkpoint.json` and the world
documents on disk, or rebuilds from the whole log when the checkpoint is
missing or unusable, a world document is unreadable, documents were deleted
while the observer was down, or the machine went down uncleanly (a new boot
id) while the documents were not synced. `WorldBuilder.tick` costs in proportion
to the new bytes: it reads past the offsets, folds the new events in id
order (garbage collector off), writes only the documents that changed, and
only then moves the checkpoint, so a crash at any point replays events,
which the fold ignores.

Durability is batched over ticks rather than paid per tick: before the
first document write after a sync the checkpoint is marked unsynced (one
fsync), ticks then write documents and checkpoint without fsync, and
`WorldBuilder.sync` (the service calls it when idle, at most every few seconds,
and on stop) flushes the filesystem once and marks the checkpoint synced.
Called by the observer service and `homelab world rebuild`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from operator import attrgetter
from typing import IO, Any

from reconciler.atomic_files import fsync_dir, sync_filesystem, try_lock
from reconciler.errors import ConfigError
from reconciler.events.reader import DayBatch, LogReader
from reconciler.observer.fold import WorldState
from reconciler.observer.quarantine import Quarantine
from reconciler.observer.replay import Replay
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import world_path
from reconciler.world.writer import (
    Checkpoint,
    WorldLoadError,
    WorldWriter,
    boot_id,
    load_world,
    read_checkpoint,
    remove_stale_temp_files,
)

_BY_ID = attrgetter("id")


@contextmanager
def gc_paused() -> Iterator[None]:
    """Folding allocates millions of small objects; the cyclic GC only slows it."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class TickResult:
    events: int
    written: int
    bad_lines: int
    nbytes: int
    fold_seconds: float = 0.0  # reading, decoding and folding
    write_seconds: float = 0.0  # world documents and checkpoint


class WorldBuilder:
    """Owns the in-memory world of one runtime root (one folder process at a time)."""

    def __init__(self, root: RuntimeRoot, *, durable: bool = True) -> None:
        self.root = root
        self.durable = durable
        self.state = WorldState()
        self.reader = LogReader(root)
        self.writer = WorldWriter(root, durable=durable)
        self.quarantine = Quarantine(root)
        self._lock: IO[bytes] | None = None
        self._checkpointed: dict[str, int] | None = None
        self._checkpointed_prints: dict[str, dict[str, Any]] = {}
        self._synced = False  # the checkpoint on disk says the world is synced
        self._whole = False  # the last tick (or rebuild) finished: the world matches the offsets
        self._boot = boot_id()

    def lock(self) -> None:
        """Keep a second observer (or a rebuild) away from this root."""
        fh = try_lock(self.root.state / "observer.lock")  # held while running
        if fh is None:
            raise ConfigError(
                f"another observer (or world rebuild) is running on {self.root.path}; stop it first"
            )
        self._lock = fh

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def open(self) -> str:
        """Resume from the checkpoint, or rebuild; return a line saying which and why."""
        self._make_folders()
        remove_stale_temp_files(self.root)
        checkpoint = read_checkpoint(self.root)
        if checkpoint is None:
            why = "no usable checkpoint"
        elif not checkpoint.synced and checkpoint.boot_id != self._boot:
            why = "the machine went down uncleanly while the world was not synced"
        else:
            try:
                docs = load_world(self.root)
            except WorldLoadError as exc:
                why = str(exc)
            else:
                if len(docs) >= checkpoint.documents:
                    self.state = WorldState(docs=docs)
                    self.writer.forget()  # a restart after a failed tick: the disk is the truth
                    self.writer.remember(docs)
                    self.reader = LogReader(self.root, checkpoint.offsets, checkpoint.fingerprints)
                    self._checkpointed = dict(checkpoint.offsets)
                    self._checkpointed_prints = dict(checkpoint.fingerprints)
                    self._synced = checkpoint.synced
                    self._whole = True
                    return f"resumed from checkpoint ({len(docs)} documents)"
                lost = checkpoint.documents - len(docs)
                why = f"{lost} world documents were deleted while stopped"
        result = self.rebuild()
        return f"rebuilt ({why}): {result.events} events, {len(self.state.docs)} documents"

    def _make_folders(self) -> None:
        for folder in (self.root.world, self.root.state, self.root.logs, self.root.events):
            folder.mkdir(parents=True, exist_ok=True)

    def rebuild(self) -> TickResult:
        """Fold the whole log from the start; the world on disk ends equal to the result."""
        self._make_folders()
        self.state = WorldState()
        self.reader = LogReader(self.root)
        self.writer.forget()
        # No checkpoint while rebuilding: an interrupted rebuild starts over.
        self.root.checkpoint.unlink(missing_ok=True)
        if self.durable:
            fsync_dir(self.root.checkpoint.parent)
        self._checkpointed = None
        self._checkpointed_prints = {}
        self._synced = False
        result = self._tick(compare_disk=True, replay=True)
        self.writer.remove_others(set(self.state.docs))
        t0 = time.perf_counter()
        self.sync()
        took = time.perf_counter() - t0
        return replace(result, write_seconds=result.write_seconds + took)

    def tick(self) -> TickResult:
        """Fold what was appended since the last tick."""
        return self._tick(compare_disk=False)

    def _fold(self, batch: DayBatch) -> None:
        for note in batch.notes:
            self.quarantine.note(note)
        for bad in batch.bad:
            self.quarantine.bad_line(bad)
        events = batch.events
        events.sort(key=_BY_ID)
        apply = self.state.apply
        for ev in events:
            apply(ev)
        for diag in self.state.diagnostics:
            self.quarantine.diagnostic(diag)
        self.state.diagnostics.clear()

    def _replay(self) -> tuple[int, int, int]:
        """Fold the whole log at once (`Replay`): the same world, each document built once."""
        replay = Replay()
        count = bad = nbytes = 0
        for batch in self.reader.batches():
            for note in batch.notes:
                self.quarantine.note(note)
            for line in batch.bad:
                self.quarantine.bad_line(line)
            batch.events.sort(key=_BY_ID)
            replay.fold(batch.events)
            for diag in replay.diagnostics:
                self.quarantine.diagnostic(diag)
            replay.diagnostics.clear()
            count += len(batch.events)
            bad += len(batch.bad)
            nbytes += batch.nbytes
        self.state = replay.world_state()
        return count, bad, nbytes

    def _tick(self, *, compare_disk: bool, replay: bool = False) -> TickResult:
        """`replay`: from an empty state, fold the whole log with `Replay`."""
        self._whole = False
        count = bad = nbytes = 0
        t0 = time.perf_counter()
        with gc_paused():  # decoding and folding allocate millions of small objects
            if replay:
                count, bad, nbytes = self._replay()
            for batch in self.reader.batches():
                self._fold(batch)
                count += len(batch.events)
                bad += len(batch.bad)
                nbytes += batch.nbytes
            dirty = self.state.take_dirty()
        t1 = time.perf_counter()
        if dirty:
            self._mark_unsynced()
        written = self.writer.write(dirty, compare_disk=compare_disk)
        self.quarantine.flush()
        if self.reader.offsets != self._checkpointed:
            self._write_checkpoint(self.reader.offsets, durable=False, fresh=True)
        self._whole = True
        return TickResult(count, written, bad, nbytes, t1 - t0, time.perf_counter() - t1)

    def _write_checkpoint(
        self, offsets: dict[str, int], *, durable: bool, fresh: bool = False
    ) -> None:
        """`fresh`: `offsets` are the reader's own, so are its fingerprints."""
        if fresh:
            self._checkpointed_prints = self.reader.fingerprints()
        prints = self._checkpointed_prints
        checkpoint = Checkpoint(
            dict(offsets), len(self.state.docs), self._synced, self._boot, prints
        )
        self.writer.write_checkpoint(checkpoint, durable=durable)
        self._checkpointed = dict(offsets)

    def _mark_unsynced(self) -> None:
        """Before a document changes: a synced checkpoint must stop saying so, durably."""
        if self._synced:
            self._synced = False
            self._write_checkpoint(self._checkpointed or {}, durable=True)

    @property
    def synced(self) -> bool:
        return self._synced

    def sync(self) -> None:
        """Make every document written so far durable, then say so in the checkpoint."""
        if self._synced or not self._whole:
            return  # nothing new, or a tick failed half-way: the checkpoint must not move
        if self.durable:
            sync_filesystem(self.root.world)
        self._synced = True
        self._write_checkpoint(self.reader.offsets, durable=True, fresh=True)

    def restore_deleted(self, candidates: Iterable[ResourceKey] | None = None) -> list[ResourceKey]:
        """World documents deleted by hand while running: mark them to be written again.

        `candidates` are the documents the file watch saw go (each write's
        name exchange shows up as one too); None checks every document.
        """
        missing = []
        docs = self.state.docs
        for ref in docs if candidates is None else [r for r in candidates if r in docs]:
            if not world_path(self.root, *ref).exists():
                missing.append(ref)
        for ref in missing:
            self.quarantine.note(f"world/{ref[0]}/{ref[1]}.json was deleted by hand; rewriting it")
            self.state.dirty.add(ref)
        self.writer.forget_refs(missing)
        return missing
