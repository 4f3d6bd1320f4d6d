"""Reading the event log: resume from byte offsets, one UTC day at a time.

`LogReader` walks `ROOT/events/YYYY-MM-DD/<producer>.jsonl` in day order and
returns, per day, the events of every complete line past the offsets it was
given. A torn last line (no newline yet) is left unread until a writer
completes it; a complete line that is not a valid event is handed back as a
`BadLine` (the caller quarantines it) and reading goes on. What was read
is fingerprinted per file (`fingerprints()`: inode and SHA-256 of the bytes
before the offset, kept in the observer's checkpoint): a file replaced
(another inode), truncated, or rewritten before its offset is reported as a
`BadLine` (reason `rewritten`) and a note, and re-read from the start, never
silently skipped. While running, the bytes just before the offset are
compared whenever the file grows; on resume the whole prefix is hashed.
Decoding goes through msgspec into typed structs, the whole buffer at once,
falling back to line by line only when a buffer holds a bad line.

A compacted file, `<producer>.jsonl.zst` (reconciler/observer/compaction.py),
is closed: it keeps the key of the `.jsonl` it replaces and, as its size,
the length of its decompressed content, so offsets and `lag_bytes` go on
as before and a reader that had read the `.jsonl` to its end sees nothing
new. It is read whole (`read_log_bytes`) only when its offset is short of
that length. Only retention rewrites such a file (keeping the audit trail of
a day every durable record covered), so a compacted file shorter than its
offset, or whose prefix no longer matches, counts as read: never re-folded.
While a crash left both forms of one file, only the `.jsonl` is listed.
Called by the observer's folding shell, the notifier and `homelab events`.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import zstandard

from reconciler.runtime_root import RuntimeRoot

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FILE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}\.jsonl(\.zst)?$")
ZST = ".zst"
MAX_LINE_BYTES = 1024 * 1024
WINDOW = 4096  # bytes before the offset compared again each time a file grows


class LogRef(msgspec.Struct, frozen=True, gc=False):
    kind: str
    name: str


class LogEvent(msgspec.Struct, frozen=True):
    """One decoded event line (the typed twin of `reconciler.events.Event`)."""

    id: str
    ts: str
    source: str
    type: str
    ref: LogRef | None = None
    data: dict[str, Any] = {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ts": self.ts,
            "source": self.source,
            "type": self.type,
            "ref": None if self.ref is None else {"kind": self.ref.kind, "name": self.ref.name},
            "data": self.data,
        }


_DECODER = msgspec.json.Decoder(LogEvent)


def decode_event(line: bytes) -> LogEvent:
    """Decode one line; raises `msgspec.DecodeError` (or ValidationError) when invalid."""
    return _DECODER.decode(line)


@dataclass(frozen=True)
class BadLine:
    """A complete line that is not a valid event: where it is and why."""

    file: str
    offset: int
    line: bytes
    reason: str


@dataclass
class DayBatch:
    """New events of one day (all producers), with the offsets reached per file."""

    day: str
    events: list[LogEvent] = field(default_factory=list)
    bad: list[BadLine] = field(default_factory=list)
    offsets: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    nbytes: int = 0


@dataclass(frozen=True)
class LogFile:
    """One listed log file: its key, size (decompressed for `.zst`) and inode."""

    key: str
    size: int
    ino: int
    compressed: bool = False


_SIZES: dict[tuple[str, int, int, int], int] = {}  # (path, ino, size, mtime) -> decompressed


def content_size(path: os.PathLike[str] | str, ino: int = 0, size: int = 0, mtime: int = 0) -> int:
    """The decompressed length of a `.jsonl.zst` (its frame header; cached by inode)."""
    memo = (str(path), ino, size, mtime)
    found = _SIZES.get(memo)
    if found is not None:
        return found
    with open(path, "rb") as fh:
        head = fh.read(18)  # a zstd frame header is at most 18 bytes
    try:
        found = zstandard.frame_content_size(head)
    except zstandard.ZstdError:
        found = -1
    if found < 0:  # no size in the header (not written by compaction): measure it
        found = len(read_log_bytes(path))
    if len(_SIZES) > 100_000:
        _SIZES.clear()
    _SIZES[memo] = found
    return found


def list_log(root: RuntimeRoot) -> dict[str, list[LogFile]]:
    """`{day: [LogFile]}`, days and keys sorted; a `.jsonl.zst` under its `.jsonl` key."""
    days: dict[str, list[LogFile]] = {}
    try:
        day_dirs = sorted(e.name for e in os.scandir(root.events) if _DAY.match(e.name))
    except FileNotFoundError:
        return days
    for day in day_dirs:
        files: dict[str, LogFile] = {}
        try:
            entries = list(os.scandir(root.events / day))
        except FileNotFoundError:
            continue
        for entry in entries:
            if not (_FILE.match(entry.name) and entry.is_file(follow_symlinks=False)):
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                compressed = entry.name.endswith(ZST)
                name = entry.name[: -len(ZST)] if compressed else entry.name
                if compressed:
                    if name in files:
                        continue  # both forms (a compaction cut short): the .jsonl counts
                    size = content_size(entry.path, st.st_ino, st.st_size, st.st_mtime_ns)
                else:
                    size = st.st_size
            except (FileNotFoundError, zstandard.ZstdError):
                continue  # compacted or removed meanwhile, or unreadable: listed next time
            files[name] = LogFile(f"{day}/{name}", size, st.st_ino, compressed)
        days[day] = [files[n] for n in sorted(files)]
    return days


def log_files(root: RuntimeRoot) -> dict[str, list[tuple[str, int, int]]]:
    """`{day: [(key, size, inode)]}` for every log file, keys like `2024-05-01/observer.jsonl`."""
    return {day: [(f.key, f.size, f.ino) for f in files] for day, files in list_log(root).items()}


def read_log_bytes(path: os.PathLike[str] | str) -> bytes:
    """The whole content of one log file: a `.jsonl` as it is, a `.jsonl.zst` decompressed.

    Every reader of whole days (rebuilds, `homelab events`, the UI's events
    page) reads through this, so a compressed day reads like any other. A
    damaged `.zst` (cut short, or failing its checksum) raises `zstandard.ZstdError`.
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if str(path).endswith(ZST):
        dobj = zstandard.ZstdDecompressor().decompressobj()
        out = dobj.decompress(data)
        if not dobj.eof:  # a cut file decompresses to a prefix without complaint
            raise zstandard.ZstdError(f"{path}: truncated (its zstd frame does not end)")
        return out
    return data


def _decode_slow(key: str, start: int, buf: bytes, batch: DayBatch) -> None:
    pos = 0
    for raw in buf.split(b"\n"):
        offset = start + pos
        pos += len(raw) + 1
        if not raw.strip():
            continue
        if len(raw) > MAX_LINE_BYTES:
            batch.bad.append(BadLine(key, offset, raw[:4096], "line longer than 1 MiB"))
            continue
        try:
            batch.events.append(_DECODER.decode(raw))
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            batch.bad.append(BadLine(key, offset, raw[:4096], str(exc)))


@dataclass
class _Seen:
    """What this reader read of one file: its inode, a hash and the last bytes."""

    ino: int
    digest: Any = field(default_factory=hashlib.sha256)  # of bytes [0, offset)
    tail: bytes = b""

    def add(self, data: bytes) -> None:
        self.digest.update(data)
        self.tail = (self.tail + data)[-WINDOW:]


class LogReader:
    """Reads complete lines past per-file offsets; `offsets` moves as batches are read.

    `fingerprints` (from `fingerprints()` of an earlier reader, saved with the
    offsets) are checked against each file's prefix when it is first read.
    """

    def __init__(
        self,
        root: RuntimeRoot,
        offsets: dict[str, int] | None = None,
        fingerprints: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.root = root
        self.offsets: dict[str, int] = dict(offsets or {})
        self._expected = dict(fingerprints or {})
        self._seen: dict[str, _Seen] = {}
        self._broken: set[tuple[str, int]] = set()  # compressed files that did not decompress

    def fingerprints(self) -> dict[str, dict[str, Any]]:
        """`{key: {ino, sha256}}` of what was read up to each offset (for a checkpoint)."""
        found = {k: v for k, v in self._expected.items() if k in self.offsets}
        for key, seen in self._seen.items():
            found[key] = {"ino": seen.ino, "sha256": seen.digest.hexdigest()}
        return found

    @property
    def broken(self) -> set[tuple[str, int]]:
        """The compressed files (key, size) that did not decompress (each reported once)."""
        return self._broken

    def adopt(
        self,
        offsets: dict[str, int],
        fingerprints: dict[str, dict[str, Any]],
        broken: set[tuple[str, int]],
    ) -> None:
        """Take over another reader's read of files this one has not read.

        A from-scratch rebuild's helper process reads the earlier days
        (`reconciler.observer.replay_split`): their offsets, and the
        fingerprints of what was read, are checked like a checkpoint's when a
        file is read again.
        """
        for key, offset in offsets.items():
            if key in self.offsets:
                raise ValueError(f"events/{key} was read by both readers")
            self.offsets[key] = offset
            if key in fingerprints:
                self._expected[key] = fingerprints[key]
        self._broken |= broken

    def lag_bytes(self) -> int:
        """Bytes written to the log and not read yet (torn tails included)."""
        lag = 0
        for files in log_files(self.root).values():
            for key, size, _ in files:
                lag += max(0, size - self.offsets.get(key, 0))
        return lag

    def batches(self, listing: dict[str, list[LogFile]] | None = None) -> Iterator[DayBatch]:
        """One batch per day with new complete lines, oldest day first.

        The reader's `offsets` advance as each batch is yielded; the caller
        persists them only once it has folded the batch. `listing` (from
        `list_log`): read those files up to those sizes, not what is there now.
        """
        for day, files in (list_log(self.root) if listing is None else listing).items():
            batch = DayBatch(day)
            for f in files:
                if f.compressed:
                    self._read_closed(f.key, f.size, batch)
                else:
                    self._read_file(f.key, f.size, f.ino, batch)
            if batch.events or batch.bad or batch.notes:
                yield batch

    def _read_closed(self, key: str, size: int, batch: DayBatch) -> None:
        """A compacted file: nothing new when read to its end, else decompress and read on."""
        start = self.offsets.get(key, 0)
        seen = self._seen.pop(key, None)
        if seen is not None:  # read as a .jsonl before it was compacted: keep its print
            self._expected[key] = {"ino": seen.ino, "sha256": seen.digest.hexdigest()}
        if start >= size:
            return  # read to its end (or more: retention pruned it since)
        try:
            data = read_log_bytes(self.root.events / (key + ZST))
        except FileNotFoundError:
            return  # removed by retention meanwhile
        except zstandard.ZstdError as exc:
            if (key, size) not in self._broken:  # said once, tried again each time
                self._broken.add((key, size))
                batch.notes.append(f"events/{key}{ZST} cannot be decompressed ({exc}); not read")
            return
        if start and not self._same_prefix(key, data, start):
            # Retention rewrote the closed file (only its audit trail is left): it
            # was read before, so it counts as read; nothing of it is folded twice.
            batch.offsets[key] = self.offsets[key] = len(data)
            return
        buf = data[start:]
        end = buf.rfind(b"\n")
        if end < 0:
            return
        buf = buf[: end + 1]
        batch.nbytes += len(buf)
        try:
            batch.events.extend(_DECODER.decode_lines(buf))
        except (msgspec.DecodeError, msgspec.ValidationError):
            _decode_slow(key, start, buf[:-1], batch)
        batch.offsets[key] = self.offsets[key] = start + len(buf)

    def _same_prefix(self, key: str, data: bytes, start: int) -> bool:
        """Whether `data[:start]` is what was read of `key` (when known), ending a line."""
        if start > len(data) or data[start - 1 : start] != b"\n":
            return False
        expected = self._expected.get(key)
        if expected is None:
            return True
        return hashlib.sha256(data[:start]).hexdigest() == expected.get("sha256")

    def _rewritten(self, key: str, start: int, why: str, batch: DayBatch) -> None:
        message = (
            f"events/{key} was rewritten before the saved offset {start} ({why}); "
            "re-reading it from the start: find out who changed the log (it is only "
            "ever appended to) and check the world"
        )
        batch.notes.append(message)
        batch.bad.append(BadLine(key, 0, b"", f"rewritten: {why}"))
        batch.offsets[key] = self.offsets[key] = 0
        self._expected.pop(key, None)

    def _prefix(self, key: str, start: int, ino: int, batch: DayBatch) -> _Seen | None:
        """Hash the bytes before `start` on first sight; None when they are not what was read."""
        seen = _Seen(ino)
        try:
            with open(self.root.events / key, "rb") as fh:
                left = start
                while left > 0:
                    chunk = fh.read(min(left, 1 << 20))
                    if not chunk:
                        break
                    seen.add(chunk)
                    left -= len(chunk)
        except FileNotFoundError:
            return None
        expected = self._expected.pop(key, None)
        if expected is not None:
            if expected.get("ino") != ino:
                self._rewritten(key, start, "it is another file (new inode)", batch)
                return None
            if expected.get("sha256") != seen.digest.hexdigest():
                self._rewritten(key, start, "its bytes differ from what was read", batch)
                return None
        return seen

    def _start(self, key: str, size: int, ino: int, batch: DayBatch) -> int:
        """The offset to read from: the saved one, or 0 once a rewrite was reported."""
        start = self.offsets.get(key, 0)
        seen = self._seen.get(key)
        if size < start:
            self._rewritten(key, start, f"truncated to {size} bytes", batch)
        elif seen is not None and seen.ino != ino:
            self._rewritten(key, start, "it is another file (new inode)", batch)
        elif seen is None and start > 0:
            found = self._prefix(key, start, ino, batch)
            if found is not None:
                self._seen[key] = found
                return start
        else:
            return start
        self._seen.pop(key, None)
        return 0

    def _read_file(self, key: str, size: int, ino: int, batch: DayBatch) -> None:
        start = self._start(key, size, ino, batch)
        if size == start:
            return
        seen = self._seen.setdefault(key, _Seen(ino))
        back = len(seen.tail) if start else 0
        try:
            with open(self.root.events / key, "rb") as fh:
                fh.seek(start - back)
                buf = fh.read(size - start + back)
        except FileNotFoundError:
            return
        if back and buf[:back] != seen.tail:
            self._rewritten(key, start, "the bytes before the offset changed", batch)
            self._seen.pop(key, None)
            self._read_file(key, size, ino, batch)
            return
        buf = buf[back:]
        end = buf.rfind(b"\n")
        if end < 0:
            return  # only a torn line so far: wait for its newline
        buf = buf[: end + 1]
        seen.add(buf)
        batch.nbytes += len(buf)
        try:
            batch.events.extend(_DECODER.decode_lines(buf))
        except (msgspec.DecodeError, msgspec.ValidationError):
            _decode_slow(key, start, buf[:-1], batch)
        batch.offsets[key] = start + len(buf)
        self.offsets[key] = start + len(buf)
