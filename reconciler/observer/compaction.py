"""Retention of the event log: compress closed, covered days; delete past an operator's bound.

`compact(root, policy)` walks `ROOT/events/YYYY-MM-DD/` oldest first. A day
is closed once it is before yesterday (UTC) and no writer holds one of its
files (each `EventLog` keeps an exclusive flock on the file it appends
to). A closed day older than `compress_after_days` whose every file is
covered to its end by `covered_offsets(root)` (a durable record of the
folded world: the synced checkpoint, later the snapshots) has each
`<producer>.jsonl` replaced by `<producer>.jsonl.zst`:

1. the bytes are compressed (one zstd frame with its content size and a
   checksum) into `.<producer>.jsonl.zst.tmp`, fsynced;
2. the tmp file is renamed to `<producer>.jsonl.zst` and the folder fsynced;
3. the `.jsonl` is unlinked and the folder fsynced.

A day is "older than N days" when it is more than N days before today, so
`compress_after_days=0` takes every day before yesterday. A crash leaves at
worst a tmp file (removed) or both forms (step 2 done, 3 not): `recover`
keeps the `.zst` only if it decompresses to exactly the `.jsonl` bytes,
and drops it otherwise. Meanwhile readers list only the `.jsonl` of such a
pair (reconciler/events/reader.py), so no event is ever
seen from two sources. Past `delete_after_days` (only when the operator set
it) a covered day keeps only its audit trail, the `action.*` events, still
compressed (written to a tmp file and renamed over, so a crash leaves the
old file or the new one); past `delete_audit_after_days`, set explicitly
too, the day goes whole. One compaction at a time per root
(`state/compaction.lock`). Run by the observer service (after start, then
hourly, in a thread of its own) and by `homelab events compact`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import msgspec
import zstandard

from reconciler.atomic_files import fsync_dir, try_lock
from reconciler.errors import ConfigError
from reconciler.events.reader import ZST, list_log, read_log_bytes
from reconciler.resources.repo import EventLogRetention
from reconciler.runtime_root import RuntimeRoot
from reconciler.world.coverage import covered_offsets

LEVEL = 3  # zstd level: 4x quicker than 9 for 17 % more bytes (README, compaction figures)
TMP_SUFFIX = ".tmp"
AUDIT_PREFIX = "action."


@dataclass(frozen=True)
class RetentionPolicy:
    """Ages in whole days before today (UTC); None: never."""

    compress_after_days: int = 90
    delete_after_days: int | None = None
    delete_audit_after_days: int | None = None

    @classmethod
    def from_config(cls, config: EventLogRetention) -> RetentionPolicy:
        return cls(config.compressAfterDays, config.deleteAfterDays, config.deleteAuditAfterDays)

    def check(self) -> RetentionPolicy:
        """Raise ConfigError unless the bounds are ordered (compress < delete <= audit)."""
        compress, delete, audit = (
            self.compress_after_days,
            self.delete_after_days,
            self.delete_audit_after_days,
        )
        if compress < 0 or (delete is not None and delete <= compress):
            raise ConfigError(
                f"event-log retention: delete after {delete} days must come after "
                f"compressing after {compress} (and both are positive)"
            )
        if audit is not None and (delete is None or audit < delete):
            raise ConfigError(
                f"event-log retention: deleting the audit trail after {audit} days needs "
                f"a deletion bound (deleteAfterDays) no later than it (got {delete})"
            )
        return self


@dataclass
class DayReport:
    """What one compaction did to one day."""

    day: str
    action: str  # compressed, pruned, deleted
    files: int = 0
    bytes_before: int = 0  # on disk, before and after
    bytes_after: int = 0
    events_kept: int | None = None  # pruned days: the action.* events left


@dataclass
class CompactionReport:
    days: list[DayReport] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # leftovers of a crash resolved
    skipped: list[str] = field(default_factory=list)  # due, but not yet allowed, and why
    busy: bool = False  # another compaction held the lock: nothing done
    bytes_before: int = 0  # on disk, of the days changed
    bytes_after: int = 0

    def lines(self) -> list[str]:
        """Human-readable: one line per day changed, repair or skip, then a total."""
        if self.busy:
            return ["another compaction is running on this root; nothing done"]
        out = [f"repaired: {r}" for r in self.repaired]
        for d in self.days:
            kept = "" if d.events_kept is None else f", {d.events_kept} action.* events kept"
            out.append(
                f"{d.day}: {d.action} {d.files} files, "
                f"{_size(d.bytes_before)} -> {_size(d.bytes_after)}{kept}"
            )
        out.extend(f"skipped {s}" for s in self.skipped)
        out.append(
            f"{len({d.day for d in self.days})} days changed, "
            f"{_size(self.bytes_before)} -> {_size(self.bytes_after)} on disk"
        )
        return out


def _size(n: int) -> str:
    if n >= 10 * 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MiB"
    if n >= 10 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} B"


class _Type(msgspec.Struct):
    type: str = ""


_TYPE = msgspec.json.Decoder(_Type)


def _write_zst(folder: Path, name: str, data: bytes) -> int:
    """Write `data` compressed to `folder/name` (tmp, fsync, rename, fsync dir); its size."""
    blob = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compress(data)
    tmp = folder / f".{name}{TMP_SUFFIX}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        tmp.unlink(missing_ok=True)  # a full disk: leave nothing half-written behind
        raise
    os.rename(tmp, folder / name)
    fsync_dir(folder)
    return len(blob)


def recover(root: RuntimeRoot) -> list[str]:
    """Resolve what a compaction cut short: tmp files, and days holding both forms of a file."""
    done: list[str] = []
    try:
        days = sorted(e.path for e in os.scandir(root.events) if e.is_dir())
    except FileNotFoundError:
        return done
    for day_path in days:
        folder = Path(day_path)
        try:
            names = set(os.listdir(folder))
        except FileNotFoundError:
            continue
        changed = False
        for name in sorted(names):
            if name.startswith(".") and name.endswith(ZST + TMP_SUFFIX):
                (folder / name).unlink(missing_ok=True)
                done.append(f"{folder.name}/{name}: unfinished, removed")
                changed = True
            elif name.endswith(".jsonl") and name + ZST in names:
                done.append(_resolve_pair(folder, name))
                changed = True
        if changed:
            fsync_dir(folder)
    return done


def _resolve_pair(folder: Path, name: str) -> str:
    """Both forms of one file: keep the `.zst` only when it holds exactly the `.jsonl`."""
    plain, packed = folder / name, folder / (name + ZST)
    original = plain.read_bytes()
    try:
        same = read_log_bytes(packed) == original
    except zstandard.ZstdError:
        same = False
    if same:
        plain.unlink()
        return f"{folder.name}/{name}: compressed copy verified, .jsonl removed"
    packed.unlink()
    return f"{folder.name}/{name}{ZST}: did not match the .jsonl, removed (compressed again later)"


def _age(day: str, today: date) -> int:
    return (today - date.fromisoformat(day)).days


def compact(
    root: RuntimeRoot,
    policy: RetentionPolicy,
    *,
    today: date | None = None,
    stop: threading.Event | None = None,
) -> CompactionReport:
    """Recover, then compress and delete what the policy and the coverage allow."""
    policy.check()
    report = CompactionReport()
    lock = try_lock(root.state / "compaction.lock")
    if lock is None:
        report.busy = True
        return report
    try:
        report.repaired = recover(root)
        _compact_days(root, policy, today or datetime.now(UTC).date(), report, stop)
    finally:
        lock.close()
    return report


def _compact_days(
    root: RuntimeRoot,
    policy: RetentionPolicy,
    today: date,
    report: CompactionReport,
    stop: threading.Event | None,
) -> None:
    covered = covered_offsets(root)
    for day, files in list_log(root).items():
        if stop is not None and stop.is_set():
            return
        age = _age(day, today)
        if age < 2:
            continue  # today and yesterday stay open
        delete = policy.delete_after_days is not None and age > policy.delete_after_days
        audit = policy.delete_audit_after_days is not None and age > policy.delete_audit_after_days
        if not delete and age <= policy.compress_after_days:
            continue
        if not delete and all(f.compressed for f in files):
            continue  # already compressed
        short = [f.key for f in files if covered.get(f.key, 0) < f.size]
        if short:
            report.skipped.append(
                f"{day}: not yet covered by the observer's durable record ({', '.join(short)})"
            )
            continue
        folder = root.events / day
        before, changes = _du(folder), len(report.days)
        try:
            if audit:
                _delete_day(folder, report)
            else:
                _compress_day(folder, [f.key.split("/", 1)[1] for f in files], report)
                if delete:
                    _prune_day(folder, report)
        except _Busy as exc:
            report.skipped.append(f"{day}: {exc}")
        except zstandard.ZstdError as exc:  # a damaged compressed file: never rewritten
            report.skipped.append(f"{day}: {exc}; left as it is")
        if len(report.days) > changes:
            report.bytes_before += before
            report.bytes_after += _du(folder)


def _du(folder: Path) -> int:
    """Bytes of the log files in one day's folder (0 once it is gone)."""
    try:
        return sum(
            e.stat().st_size
            for e in os.scandir(folder)
            if not e.name.startswith(".") and e.is_file(follow_symlinks=False)
        )
    except FileNotFoundError:
        return 0


class _Busy(Exception):
    """A writer still holds a file of the day."""


def _held(path: Path) -> None:
    fh = try_lock(path)
    if fh is None:
        raise _Busy(f"{path.name} is still open for writing")
    fh.close()


def _compress_day(folder: Path, names: list[str], report: CompactionReport) -> None:
    entry = DayReport(folder.name, "compressed")
    try:
        for name in names:
            path = folder / name
            if not path.exists():
                continue  # compressed already
            lock = try_lock(path)  # a writer appends under this lock: none may while we copy
            if lock is None:
                raise _Busy(f"{name} is still open for writing")
            try:
                data = path.read_bytes()
                entry.bytes_after += _write_zst(folder, name + ZST, data)
                entry.bytes_before += len(data)
                path.unlink()
                fsync_dir(folder)
            finally:
                lock.close()
            entry.files += 1
    finally:
        if entry.files:
            report.days.append(entry)


def _prune_day(folder: Path, report: CompactionReport) -> None:
    """Keep only the audit trail (`action.*` events) of a compressed day."""
    entry = DayReport(folder.name, "pruned", events_kept=0)
    names = [n for n in sorted(os.listdir(folder)) if n.endswith(".jsonl" + ZST)]
    # Every file decompressed first: a damaged one leaves the whole day as it is.
    contents = {n: read_log_bytes(folder / n) for n in names if not n.startswith(".")}
    for name, data in contents.items():
        path = folder / name
        lines = data.splitlines(keepends=True)
        kept = [line for line in lines if _is_audit(line)]
        if len(kept) == len(lines):
            entry.events_kept = (entry.events_kept or 0) + len(kept)
            continue  # nothing to drop (pruned before, or only actions)
        entry.bytes_before += path.stat().st_size
        entry.files += 1
        entry.events_kept = (entry.events_kept or 0) + len(kept)
        if kept:
            entry.bytes_after += _write_zst(folder, name, b"".join(kept))
        else:
            path.unlink()
            fsync_dir(folder)
    if entry.files:
        report.days.append(entry)
    _remove_if_empty(folder)


def _is_audit(line: bytes) -> bool:
    try:
        return _TYPE.decode(line).type.startswith(AUDIT_PREFIX)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return False  # a bad line is no part of the audit trail


def _delete_day(folder: Path, report: CompactionReport) -> None:
    """Past the explicit audit bound: the whole day goes."""
    entry = DayReport(folder.name, "deleted")
    for name in sorted(os.listdir(folder)):
        path = folder / name
        if name.startswith(".") or not name.endswith((".jsonl", ".jsonl" + ZST)):
            continue  # not a log file: left alone (and the folder with it)
        if name.endswith(".jsonl"):
            _held(path)
        entry.bytes_before += path.stat().st_size
        entry.files += 1
        path.unlink()
    fsync_dir(folder)
    report.days.append(entry)
    _remove_if_empty(folder)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        return  # not empty: files are left
    fsync_dir(folder.parent)


def due_in(report: CompactionReport, period: float, retry: float) -> float:
    """Seconds until the next scheduled run: sooner when a due day had to wait."""
    return retry if report.skipped or report.busy else period


def describe(policy: RetentionPolicy) -> str:
    parts = [f"compress after {policy.compress_after_days} days"]
    if policy.delete_after_days is not None:
        parts.append(f"keep only action.* after {policy.delete_after_days}")
    if policy.delete_audit_after_days is not None:
        parts.append(f"delete whole after {policy.delete_audit_after_days}")
    return ", ".join(parts)
