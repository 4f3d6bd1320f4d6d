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
Snapshots (`reconciler.world.snapshots`, policy `SnapshotPolicy`) are taken
after a tick every N events or T seconds: the documents changed since the
last snapshot are encoded on the folding thread (the state must hold still;
0.4-0.7 s for 8,000 of them on this loaded 2-core VM), the rest is
compressed and written durably on a background thread. Without a usable checkpoint (or
after an unclean reboot) `open` recovers from the newest snapshot that
checks out and matches the log, replaying only the log after it
(`recover`); `rebuild` still folds everything from the start.
Called by the observer service and `homelab world rebuild`.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from operator import attrgetter
from pathlib import Path
from typing import IO, Any

from reconciler.atomic_files import fsync_dir, sync_filesystem, try_lock
from reconciler.errors import ConfigError
from reconciler.events.reader import DayBatch, LogFile, LogReader, list_log
from reconciler.observer.fold import WorldState
from reconciler.observer.fresh_world import FreshWorld, remove_leftover, world_is_empty
from reconciler.observer.quarantine import Quarantine
from reconciler.observer.recovery import (
    Recovery,
    SnapshotPolicy,
    WorldRead,
    differing,
    same_files,
)
from reconciler.observer.replay import LaterReplay, Replay
from reconciler.observer.replay_split import (
    Reports,
    SplitHelper,
    fold_days,
    fold_earlier,
    split_days,
)
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from reconciler.world import world_path
from reconciler.world.snapshots import (
    DEFAULT_KEEP,
    EncodedSnapshot,
    SnapshotEncoder,
    SnapshotError,
    SnapshotMeta,
    SnapshotStore,
)
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
SPLIT_BYTES = 32 * 1024 * 1024  # below this, starting the second process costs more than it saves
# The helper's share of the log's bytes: a forked helper encodes its records (~0.3 s per
# 25,000) while the shell decodes them (~0.2 s); a new Python first imports (~0.5 s).
SPLIT_SHARE = {True: 0.48, False: 0.4}  # by `SplitHelper.forks()`
log = logging.getLogger("reconciler.observer")


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

    def __init__(
        self,
        root: RuntimeRoot,
        *,
        durable: bool = True,
        snapshots: SnapshotPolicy | None = None,
    ) -> None:
        self.root = root
        self.durable = durable
        self.policy = snapshots  # None: no snapshots taken by ticks (recovery still reads them)
        keep = snapshots.keep if snapshots is not None else DEFAULT_KEEP
        self.snapshots = SnapshotStore(root, keep=keep, durable=durable)
        self._snap_events = 0  # events folded since the last snapshot
        self._snap_at = time.monotonic()
        self._snap_offsets: dict[str, int] = {}
        self._snap_thread: threading.Thread | None = None
        self._encoder = SnapshotEncoder()
        self._snap_state: WorldState | None = None  # the state the encoder last saw
        self._snap_changed: set[ResourceKey] = set()  # its documents changed since
        self.last_snapshot: tuple[SnapshotMeta, int, float, float] | None = None  # size, enc, wr
        self.snapshot_error: str | None = None
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
        self.split_bytes = SPLIT_BYTES  # a log this big is rebuilt on two cores (`split_fold`)
        self.split_fold = True  # the earlier days folded by a helper process (`_replay`)
        self.fresh_helper = True  # an empty world's files created by a helper (`FreshWorld`)
        self.helpers: bool | None = None  # rebuild helper processes: None = when a core is idle
        self.rebuild_processes = 0  # how many folded the last rebuild (2: the helper's merged)

    def lock(self) -> None:
        """Keep a second observer (or a rebuild) away from this root."""
        fh = try_lock(self.root.state / "observer.lock")  # held while running
        if fh is None:
            raise ConfigError(
                f"another observer (or world rebuild) is running on {self.root.path}; stop it first"
            )
        self._lock = fh

    def unlock(self) -> None:
        self.wait_snapshot()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def open(self) -> str:
        """Resume from the checkpoint, or rebuild; return a line saying which and why."""
        self._make_folders()
        remove_leftover(self.root)  # an interrupted rebuild's build folder
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
        recovery = self.recover()
        if recovery.snapshot is not None:
            return (
                f"recovered ({why}) {recovery.describe()}: {len(self.state.docs)} documents "
                f"in {recovery.seconds:.2f} s"
            )
        result = recovery.result
        skipped = "".join(f"; skipped {s}" for s in recovery.skipped)
        return f"rebuilt ({why}): {result.events} events, {len(self.state.docs)} documents{skipped}"

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
        fresh = None
        if world_is_empty(self.root):  # every document is new: built aside, swapped in whole
            fresh = FreshWorld(self.root, durable=self.durable)
            # Its helper and the second folding process would share one spare core, and
            # the latter saves more (README, "Rebuild from scratch"): one or the other.
            alone = not self._split_cut(list_log(self.root))
            fresh.start(helper=self.fresh_helper and alone and self._use_helpers())
        try:
            result = self._tick(compare_disk=True, replay=True, fresh=fresh)
        finally:
            if fresh is not None:
                fresh.stop()
        self.writer.remove_others(set(self.state.docs))
        t0 = time.perf_counter()
        self.sync()
        took = time.perf_counter() - t0
        return replace(result, write_seconds=result.write_seconds + took)

    def tick(self) -> TickResult:
        """Fold what was appended since the last tick; snapshot when the policy says so."""
        result = self._tick(compare_disk=False)
        self._snap_events += result.events
        policy = self.policy
        if policy is not None and self._snap_events:
            due = self._snap_events >= policy.every_events
            if due or time.monotonic() - self._snap_at >= policy.every_seconds:
                self.snapshot()
        return result

    def recover(self) -> Recovery:
        """Newest snapshot that checks out and matches the log + the log after it; else `rebuild`.

        A snapshot failing its checksum is set aside as `.corrupt`; one whose
        log files were rewritten or truncated since (the reader's fingerprints
        say so) as `.mismatch`, with a quarantine note, and the next older one
        is tried. The world on disk ends equal to the result (every document
        compared, leftovers removed) and synced, with a fresh checkpoint.
        """
        with gc_paused():  # loading a snapshot allocates a million small objects
            return self._recover()

    def _recover(self) -> Recovery:
        t0 = time.perf_counter()
        self._make_folders()
        skipped: list[str] = []
        disk = WorldRead(self.root.world)
        if self.snapshots.paths():
            disk.start()  # reads the world on disk meanwhile, to compare it at the end
        for path in self.snapshots.paths():
            try:
                meta, snap = self.snapshots.read(path)
            except SnapshotError as exc:
                self._set_aside(path, "corrupt", str(exc), skipped)
                continue
            self.state = WorldState(docs=snap.docs, listings=snap.listings, folded=snap.folded)
            prints = same_files(self.root.events, meta.fingerprints)
            self.reader = LogReader(self.root, meta.offsets, prints)
            replayed = self._replay_tail()
            if isinstance(replayed, str):
                self._set_aside(path, "mismatch", f"{path}: {replayed}", skipped)
                continue
            disk.join()  # (before the writes)
            self._install(replayed.events, disk.found)
            return Recovery(meta, replayed, time.perf_counter() - t0, tuple(skipped))
        if disk.is_alive():
            disk.join()
        result = self.rebuild()
        if self.policy is not None and result.events:
            self.snapshot()
        return Recovery(None, result, time.perf_counter() - t0, tuple(skipped))

    def _set_aside(self, path: os.PathLike[str], suffix: str, why: str, out: list[str]) -> None:
        target = self.snapshots.set_aside(Path(path), suffix)
        self.quarantine.note(f"snapshot not used: {why}; set aside as {target.name}")
        out.append(f"{Path(path).name} ({suffix})")

    def _replay_tail(self) -> TickResult | str:
        """Fold the log past the snapshot's offsets; a reason string if the log no longer fits."""
        count = bad = nbytes = 0
        t0 = time.perf_counter()
        with gc_paused():
            for batch in self.reader.batches():
                for line in batch.bad:
                    if line.reason.startswith("rewritten"):
                        return f"events/{line.file} changed under it ({line.reason})"
                self._fold(batch)
                count += len(batch.events)
                bad += len(batch.bad)
                nbytes += batch.nbytes
        return TickResult(count, 0, bad, nbytes, time.perf_counter() - t0)

    def _install(self, replayed: int, on_disk: dict[str, bytes]) -> TickResult:
        """Make the world on disk equal to the recovered state, then sync and checkpoint."""
        t0 = time.perf_counter()
        self.writer.forget()
        self.root.checkpoint.unlink(missing_ok=True)  # an interrupted recovery starts over
        if self.durable:
            fsync_dir(self.root.checkpoint.parent)
        self._checkpointed = None
        self._checkpointed_prints = {}
        self._synced = False
        self.state.dirty.update(self.state.docs)  # every document is compared with the disk
        written = self.writer.write(differing(self.state.take_dirty(), on_disk))
        self.writer.remove_others(set(self.state.docs))
        self.quarantine.flush()
        self._write_checkpoint(self.reader.offsets, durable=False, fresh=True)
        self._whole = True
        self.sync()
        self._snap_events = replayed
        self._snap_offsets = dict(self.reader.offsets)
        return TickResult(replayed, written, 0, 0, 0.0, time.perf_counter() - t0)

    def snapshot(self, *, wait: bool = False) -> bool:
        """Snapshot the fold as it is after the last tick; False if one is still being written.

        Encodes now (the state must not change meanwhile), then compresses and
        writes on a background thread (`wait` joins it). The log files the
        snapshot covers are fsynced first: a snapshot never covers bytes a
        power loss could take back.
        """
        if not self._whole:
            return False  # a tick failed half-way: the state may not match the offsets
        if self._snap_thread is not None and self._snap_thread.is_alive():
            if not wait:
                return False
            self._snap_thread.join()
        t0 = time.perf_counter()
        offsets = dict(self.reader.offsets)
        state = self.state
        changed = self._snap_changed if state is self._snap_state else None
        with gc_paused():
            prints = self.reader.fingerprints()
            encoded = self._encoder.encode(
                state.docs, changed, state.listings, state.folded, offsets, prints
            )
        self._snap_state, self._snap_changed = state, set()
        took = time.perf_counter() - t0
        grown = [k for k, v in offsets.items() if self._snap_offsets.get(k) != v]
        self._snap_events, self._snap_at, self._snap_offsets = 0, time.monotonic(), offsets
        thread = threading.Thread(
            target=self._commit, args=(encoded, grown, took), name="snapshot", daemon=True
        )
        self._snap_thread = thread
        thread.start()
        if wait:
            thread.join()
        return True

    def _commit(self, encoded: EncodedSnapshot, grown: list[str], took: float) -> None:
        t0 = time.perf_counter()
        try:
            if self.durable:
                for key in grown:
                    try:
                        fd = os.open(self.root.events / key, os.O_RDONLY)
                    except FileNotFoundError:
                        continue  # compressed meanwhile: compaction made it durable
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            meta, size = self.snapshots.commit(encoded)
        except OSError as exc:  # a full disk: keep folding, try again at the next trigger
            self.snapshot_error = f"cannot write a snapshot: {exc}"
            log.warning("observer: %s", self.snapshot_error)
            return
        self.snapshot_error = None
        self.last_snapshot = (meta, size, took, time.perf_counter() - t0)
        log.info(
            "observer: snapshot %s (%d documents, %d events, %.1f MB; encode %.0f ms, "
            "write %.0f ms)",
            meta.name,
            meta.documents,
            meta.events,
            size / 1e6,
            took * 1000,
            (time.perf_counter() - t0) * 1000,
        )

    def wait_snapshot(self) -> None:
        """Wait for a snapshot being written (before unlocking, and in tests)."""
        if self._snap_thread is not None:
            self._snap_thread.join()

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

    def _replay(self, fresh: FreshWorld | None = None) -> tuple[int, int, int]:
        """Fold the whole log at once (`Replay`): the same world, each document built once.

        With `split_fold` (the default), a log of `split_bytes` or more over
        two days or more, with a core idle, is folded on two: a helper
        process folds the earlier days (`reconciler.observer.replay_split`)
        while this one folds the later ones (`LaterReplay`), and the two
        merge. If the helper fails, this process folds the earlier days
        itself afterwards and merges the same way. Into an empty world
        (`fresh`), the helper then creates its resources' files in the build
        folder until `fresh` is stopped, after the documents are written.
        """
        listing = list_log(self.root)
        self.rebuild_processes = 1
        cut = self._split_cut(listing)
        if not cut:
            return self._replay_alone(listing)
        days = list(listing)
        earlier_days = {day: listing[day] for day in days[:cut]}
        later_days = {day: listing[day] for day in days[cut:]}
        helper = SplitHelper(self.root, earlier_days, None if fresh is None else fresh.folder)
        handed = False
        try:
            later = LaterReplay()
            reports, count, bad, nbytes = fold_days(self.reader, later, later_days)
            earlier = helper.result()
            if fresh is not None and earlier is not None:
                fresh.stop_with_helper(helper.stop)
                handed = True
        finally:
            if not handed:
                helper.stop()
        if earlier is None:
            log.warning("observer: the rebuild's second process failed; folding its days here")
            earlier = fold_earlier(self.root, earlier_days)
        else:
            self.rebuild_processes = 2
        self.reader.adopt(earlier.offsets, earlier.fingerprints, earlier.broken)
        self.state = later.merged_state(earlier.part)
        self._report(earlier.reports)
        self._report(reports)
        return count + earlier.events, bad + earlier.bad, nbytes + earlier.nbytes

    def _split_cut(self, listing: dict[str, list[LogFile]]) -> int:
        """How many of the oldest days the helper folds; 0: this process folds them all."""
        if not self.split_fold or not self._use_helpers():
            return 0
        if sum(f.size for files in listing.values() for f in files) < self.split_bytes:
            return 0
        return split_days(listing, SPLIT_SHARE[SplitHelper.forks()])

    def _report(self, reports: Reports) -> None:
        """Each batch's notes, bad lines and diagnostics, in the order a lone fold reports."""
        for notes, lines, diagnostics in reports:
            for note in notes:
                self.quarantine.note(note)
            for line in lines:
                self.quarantine.bad_line(line)
            for diag in diagnostics:
                self.quarantine.diagnostic(diag)

    def _use_helpers(self) -> bool:
        """Whether a rebuild starts helper processes: only when some core is spare.

        A helper pays only when it runs beside the fold: the 1-minute load
        average must be under the number of cores (this process's own running
        counts in it: a rebuild on an idle 2-core machine sees about 1). On a
        machine whose other processes keep every core busy a helper only adds
        its start and hand-over (measured: README, "Rebuild from scratch").
        """
        if self.helpers is not None:
            return self.helpers
        cores = len(os.sched_getaffinity(0))
        return cores >= 2 and os.getloadavg()[0] < cores

    def _replay_alone(self, listing: dict[str, list[LogFile]]) -> tuple[int, int, int]:
        replay = Replay()
        count = bad = nbytes = 0
        for batch in self.reader.batches(listing):
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

    def _tick(
        self, *, compare_disk: bool, replay: bool = False, fresh: FreshWorld | None = None
    ) -> TickResult:
        """`replay`: from an empty state, fold the whole log with `Replay`.

        `fresh`: write every document into its build folder and swap it in as
        `world/` (before the checkpoint, which must find the world complete).
        """
        self._whole = False
        count = bad = nbytes = 0
        t0 = time.perf_counter()
        with gc_paused():  # decoding and folding allocate millions of small objects
            if replay:
                count, bad, nbytes = self._replay(fresh)
            for batch in self.reader.batches():
                self._fold(batch)
                count += len(batch.events)
                bad += len(batch.bad)
                nbytes += batch.nbytes
            dirty = self.state.take_dirty()
        self._snap_changed.update(dirty)  # for the next snapshot's encoding
        t1 = time.perf_counter()
        if dirty:
            self._mark_unsynced()
        if fresh is not None:
            # Newest resources first, while the helper goes on creating the oldest ones.
            written = self.writer.write_into(dict(reversed(dirty.items())), fresh.folder)
            fresh.stop()
            keep: dict[str, set[str]] = {}
            for kind, name in dirty:
                keep.setdefault(kind, set()).add(f"{name}.json")
            fresh.prune(keep)
            fresh.install()
        else:
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
