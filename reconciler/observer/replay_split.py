"""The second core of a from-scratch rebuild: a process that folds the log's earlier days.

A from-scratch rebuild of a big log is split by days (`split_days`): a child
(forked, or `python -m reconciler.observer.replay_split` in a process with
other threads, `SplitHelper`) is given the exact list of the earlier days'
files and sizes the folding shell listed (JSON on stdin for the latter),
reads and folds them with a plain `Replay`, and writes back
(msgpack on stdout, `encode_fold`) its records (`EarlierPart`), what each day's batch
reported (notes, bad lines, diagnostics, in that order, for the quarantine),
and what its reader reached (offsets, fingerprints, undecompressable files).
Meanwhile the shell folds the later days with `LaterReplay` and merges
(`LaterReplay.merged_state`). Each file is read by one of the two, so the
shell adopts the child's read of the earlier days (`LogReader.adopt`). If the
child fails, the shell folds the earlier days itself and merges the same way:
nothing of the later days' fold is lost. A pickle (what msgpack cannot hold:
an integer beyond 64 bits) comes only from this program's own child over a
pipe, never from disk. Called by the folding shell
(`reconciler.observer.world_builder`).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import IO, Any

import msgspec

from reconciler.events.reader import BadLine, LogEvent, LogFile, LogReader
from reconciler.observer.fold import Diagnostic
from reconciler.observer.replay import EarlierPart, Replay, _Res
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot

_BY_ID = attrgetter("id")
_PR_SET_PDEATHSIG = 1
# Per batch, in order: its notes, its bad lines, the diagnostics of its events.
Reports = list[tuple[list[str], list[BadLine], list[Diagnostic]]]


@dataclass
class EarlierFold:
    """The earlier days folded: the part to merge and what reading them reported."""

    part: EarlierPart
    reports: Reports
    offsets: dict[str, int]
    fingerprints: dict[str, dict[str, Any]]
    broken: set[tuple[str, int]] = field(default_factory=set)
    events: int = 0
    bad: int = 0
    nbytes: int = 0


def split_days(listing: dict[str, list[LogFile]], share: float) -> int:
    """How many of the oldest days make about `share` of the listed bytes (at least one,
    and at least one day left after them); 0 when there are fewer than two days."""
    days = list(listing)
    if len(days) < 2:
        return 0
    sizes = [sum(f.size for f in listing[day]) for day in days]
    want, total = share * sum(sizes), 0
    for count, size in enumerate(sizes[:-1], start=1):
        total += size
        if total >= want:
            return count
    return len(days) - 1


def fold_days(
    reader: LogReader, replay: Replay, listing: dict[str, list[LogFile]]
) -> tuple[Reports, int, int, int]:
    """Fold the listed days' batches; their reports, and the events, bad lines and bytes."""
    reports: Reports = []
    count = bad = nbytes = 0
    for batch in reader.batches(listing):
        batch.events.sort(key=_BY_ID)
        replay.fold(batch.events)
        reports.append((batch.notes, batch.bad, replay.diagnostics))
        replay.diagnostics = []
        count += len(batch.events)
        bad += len(batch.bad)
        nbytes += batch.nbytes
        batch.events.clear()  # freed as the lone fold frees them
    return reports, count, bad, nbytes


def fold_earlier(root: RuntimeRoot, listing: dict[str, list[LogFile]]) -> EarlierFold:
    """Fold exactly the listed files (up to the listed sizes) from the start."""
    reader = LogReader(root)
    replay = Replay()
    reports, count, bad, nbytes = fold_days(reader, replay, listing)
    found = EarlierFold(
        replay.part(), reports, dict(reader.offsets), reader.fingerprints(), set(reader.broken)
    )
    found.events, found.bad, found.nbytes = count, bad, nbytes
    return found


# A record on the wire: kind, name, last, obs_id, obs, obs_missing, spec_from, managed_from,
# node_from, labels_from, info_from, action_id, action, cond_ids, conds (events as indexes
# into `_Wire.events`, -1 for none: one event often wins several field groups).
_WireRecord = tuple[
    str, str, str | None, str, int, bool, int, int, int, int, int, str, int,
    dict[str, str], dict[str, list[Any]],
]  # fmt: skip
_EVENT_FIELDS = ("obs", "spec_from", "managed_from", "node_from", "labels_from", "info_from")


class _Wire(msgspec.Struct, array_like=True):
    """`EarlierFold` as msgpack: typed, so the events come back as `LogEvent`s."""

    events: list[LogEvent]
    records: list[_WireRecord]
    reports: list[tuple[list[str], list[tuple[str, int, bytes, str]], list[tuple[str, str]]]]
    offsets: dict[str, int]
    fingerprints: dict[str, dict[str, Any]]
    broken: list[tuple[str, int]]
    listings: dict[str, dict[str, tuple[str, str]]]
    names: list[str]
    folded: int
    counts: tuple[int, int, int]  # events, bad lines, bytes


_WIRE = msgspec.msgpack.Decoder(_Wire)


def encode_fold(fold: EarlierFold) -> bytes:
    """The fold as bytes for the folding shell: msgpack (b"M"), or pickle (b"P") for what
    msgpack cannot hold (an integer beyond 64 bits in an event's data)."""
    events: list[LogEvent] = []
    index: dict[int, int] = {}

    def ref(ev: LogEvent | None) -> int:
        if ev is None:
            return -1
        at = index.get(id(ev))
        if at is None:
            at = index[id(ev)] = len(events)
            events.append(ev)
        return at

    records = []
    for rec in fold.part.records:
        obs, spec, managed, node, labels, info = (ref(getattr(rec, f)) for f in _EVENT_FIELDS)
        records.append(
            (rec.key.kind, rec.key.name, rec.last, rec.obs_id, obs, rec.obs_missing, spec,
             managed, node, labels, info, rec.action_id, ref(rec.action), rec.cond_ids,
             rec.conds)
        )  # fmt: skip
    wire = _Wire(
        events,
        records,
        [
            (
                notes,
                [(b.file, b.offset, b.line, b.reason) for b in bad],
                [(d.event_id, d.message) for d in diags],
            )
            for notes, bad, diags in fold.reports
        ],
        fold.offsets,
        fold.fingerprints,
        sorted(fold.broken),
        fold.part.listings,
        sorted(fold.part.names),
        fold.part.folded,
        (fold.events, fold.bad, fold.nbytes),
    )
    try:
        return b"M" + msgspec.msgpack.encode(wire)
    except (OverflowError, msgspec.EncodeError):
        return b"P" + pickle.dumps(fold, protocol=pickle.HIGHEST_PROTOCOL)


def decode_fold(data: bytes) -> EarlierFold:
    """`encode_fold`'s bytes back; raises ValueError (or msgspec's errors) when cut short."""
    if data[:1] == b"P":
        found = pickle.loads(data[1:])
        if not isinstance(found, EarlierFold):
            raise ValueError("not a fold")
        return found
    if data[:1] != b"M":
        raise ValueError("not a fold")
    wire = _WIRE.decode(data[1:])
    events = wire.events
    records = []
    for (
        kind, name, last, obs_id, obs, missing, spec, managed, node, labels, info,
        action_id, action, ids, conds,
    ) in wire.records:  # fmt: skip
        rec = _Res(ResourceKey(kind, name))
        rec.created = True
        rec.last, rec.obs_id, rec.obs_missing = last, obs_id, missing
        for attr, at in zip(_EVENT_FIELDS, (obs, spec, managed, node, labels, info), strict=True):
            if at >= 0:
                setattr(rec, attr, events[at])
        rec.action_id = action_id
        rec.action = events[action] if action >= 0 else None
        rec.cond_ids, rec.conds = ids, conds
        records.append(rec)
    part = EarlierPart(records, wire.listings, set(wire.names), wire.folded)
    reports: Reports = [
        (notes, [BadLine(*b) for b in bad], [Diagnostic(*d) for d in diags])
        for notes, bad, diags in wire.reports
    ]
    found = EarlierFold(part, reports, wire.offsets, wire.fingerprints, set(wire.broken))
    found.events, found.bad, found.nbytes = wire.counts
    return found


class SplitHelper:
    """The helper process of one rebuild: folds the given (earlier) days.

    Forked when this process runs one thread only (the CLI, a lone observer
    at start): no new Python to start (about 0.5 s of imports). A process
    with other threads starts `python -m reconciler.observer.replay_split`
    instead, since a fork would copy locks those threads may hold. `fork`
    forces either (tests).
    """

    fork: bool | None = None

    @classmethod
    def forks(cls) -> bool:
        """Whether a helper started now is forked (else a new Python)."""
        return threading.active_count() == 1 if cls.fork is None else cls.fork

    def __init__(
        self,
        root: RuntimeRoot,
        listing: dict[str, list[LogFile]],
        create_in: Path | None = None,
    ) -> None:
        """`create_in`: an empty world's build folder, where the helper, once it handed its
        fold over, creates an empty file for each of its resources (`create_files`) while
        the shell merges, until `stop`."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: IO[bytes]
        self.pid = 0
        self._status: int | None = None
        if self.forks():
            self._start_fork(root, listing, create_in)
        else:
            self._start_python(root, listing, create_in)

    def _start_fork(
        self, root: RuntimeRoot, listing: dict[str, list[LogFile]], create_in: Path | None
    ) -> None:
        read, write = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: fold, hand over, and leave without running any cleanup
            code = 1
            try:
                _die_with(parent)
                os.close(read)
                _serve(root, listing, create_in, os.fdopen(write, "wb"))
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        self.pid = pid
        self._out = os.fdopen(read, "rb")

    def _start_python(
        self, root: RuntimeRoot, listing: dict[str, list[LogFile]], create_in: Path | None
    ) -> None:
        request = {
            "root": str(root.path),
            "listing": {
                day: [[f.key, f.size, f.ino, f.compressed] for f in files]
                for day, files in listing.items()
            },
            "create_in": None if create_in is None else str(create_in),
            "parent": os.getpid(),
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-m", __name__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )
        self.pid = self._proc.pid
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._out = self._proc.stdout
        try:
            self._proc.stdin.write(json.dumps(request).encode())
            self._proc.stdin.close()
        except OSError:
            pass  # it died at once: `result` says so

    def result(self) -> EarlierFold | None:
        """Its fold, or None if it failed: read to the end of what it wrote (it may go on
        creating files); a fold cut short or with bytes after it does not decode."""
        try:
            data = self._out.read()
        finally:
            self._out.close()
        if not data:
            return None
        try:
            return decode_fold(data)
        except (  # cut short, or not a fold
            msgspec.DecodeError, msgspec.ValidationError, ValueError, EOFError,
            pickle.UnpicklingError, AttributeError,
        ):  # fmt: skip
            return None

    def stop(self) -> None:
        """End the helper (whatever it is doing) and reap it."""
        if self._status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            if self._proc is not None:
                self._status = self._proc.wait()
            else:
                self._status = os.waitpid(self.pid, 0)[1]
        self._out.close()


def _die_with(parent: int) -> None:
    """End this helper when the folding shell ends (Linux `PR_SET_PDEATHSIG`): an orphan
    creating files would race the next observer's removal of the build folder."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it ended before the call took effect
        os._exit(1)


def create_files(folder: Path, keys: list[ResourceKey]) -> None:
    """An empty file `folder/<kind>/<name>.json` for each key, unless it exists (the
    shell writes every document with O_TRUNC, and a file it wrote is never touched)."""
    dirfds: dict[str, int] = {}
    try:
        for kind, name in keys:
            dirfd = dirfds.get(kind)
            if dirfd is None:
                dirfd = dirfds[kind] = os.open(folder / kind, os.O_RDONLY | os.O_DIRECTORY)
            with contextlib.suppress(FileExistsError):
                os.close(
                    os.open(
                        f"{name}.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600, dir_fd=dirfd
                    )
                )
    finally:
        for dirfd in dirfds.values():
            os.close(dirfd)


def _serve(
    root: RuntimeRoot, listing: dict[str, list[LogFile]], create_in: Path | None, out: IO[bytes]
) -> None:
    """The helper's work: fold, hand the fold over (closing `out`), then create files."""
    fold = fold_earlier(root, listing)
    with out:
        out.write(encode_fold(fold))
    if create_in is not None:
        create_files(create_in, [rec.key for rec in fold.part.records])


def _main() -> None:
    request = json.loads(sys.stdin.buffer.read())
    _die_with(request["parent"])
    listing = {
        day: [LogFile(key, size, ino, compressed) for key, size, ino, compressed in files]
        for day, files in request["listing"].items()
    }
    create_in = request.get("create_in")
    # The pipe only as `out`, so that closing it ends the shell's read (files come after).
    out = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    _serve(
        RuntimeRoot(Path(request["root"])),
        listing,
        None if create_in is None else Path(create_in),
        out,
    )


if __name__ == "__main__":
    # Through the module's own name, so the pickle names its classes as the shell knows them.
    from reconciler.observer import replay_split

    gc.disable()  # millions of small objects, no cycles
    replay_split._main()
