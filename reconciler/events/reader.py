"""Reading the event log: resume from byte offsets, one UTC day at a time.

`LogReader` walks `ROOT/events/YYYY-MM-DD/<producer>.jsonl` in day order and
returns, per day, the events of every complete line past the offsets it was
given. A torn last line (no newline yet) is left unread until a writer
completes it; a complete line that is not a valid event is handed back as a
`BadLine` (the caller quarantines it) and reading goes on. A file shorter
than its offset (truncated by hand) is re-read from the start with a note.
Decoding goes through msgspec into typed structs, the whole buffer at once,
falling back to line by line only when a buffer holds a bad line. Called by
the observer's folding shell and by `homelab events tail`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from reconciler.runtime_root import RuntimeRoot

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FILE = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}\.jsonl$")
MAX_LINE_BYTES = 1024 * 1024


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


def log_files(root: RuntimeRoot) -> dict[str, list[tuple[str, int]]]:
    """`{day: [(key, size)]}` for every log file, keys like `2024-05-01/observer.jsonl`."""
    days: dict[str, list[tuple[str, int]]] = {}
    try:
        day_dirs = sorted(e.name for e in os.scandir(root.events) if _DAY.match(e.name))
    except FileNotFoundError:
        return days
    for day in day_dirs:
        files = []
        try:
            entries = list(os.scandir(root.events / day))
        except FileNotFoundError:
            continue
        for entry in entries:
            if _FILE.match(entry.name) and entry.is_file(follow_symlinks=False):
                files.append((f"{day}/{entry.name}", entry.stat(follow_symlinks=False).st_size))
        days[day] = sorted(files)
    return days


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


class LogReader:
    """Reads complete lines past per-file offsets; `offsets` moves as batches are read."""

    def __init__(self, root: RuntimeRoot, offsets: dict[str, int] | None = None) -> None:
        self.root = root
        self.offsets: dict[str, int] = dict(offsets or {})

    def lag_bytes(self) -> int:
        """Bytes written to the log and not read yet (torn tails included)."""
        lag = 0
        for files in log_files(self.root).values():
            for key, size in files:
                lag += max(0, size - self.offsets.get(key, 0))
        return lag

    def batches(self) -> Iterator[DayBatch]:
        """One batch per day with new complete lines, oldest day first.

        The reader's `offsets` advance as each batch is yielded; the caller
        persists them only once it has folded the batch.
        """
        for day, files in log_files(self.root).items():
            batch = DayBatch(day)
            for key, size in files:
                self._read_file(key, size, batch)
            if batch.events or batch.bad or batch.notes:
                yield batch

    def _read_file(self, key: str, size: int, batch: DayBatch) -> None:
        start = self.offsets.get(key, 0)
        if size < start:
            batch.notes.append(
                f"events/{key} is shorter ({size} bytes) than the checkpoint offset "
                f"({start}): it was truncated; re-reading it from the start"
            )
            start = 0
            batch.offsets[key] = 0
            self.offsets[key] = 0
        if size == start:
            return
        try:
            with open(self.root.events / key, "rb") as fh:
                fh.seek(start)
                buf = fh.read(size - start)
        except FileNotFoundError:
            return
        end = buf.rfind(b"\n")
        if end < 0:
            return  # only a torn line so far: wait for its newline
        buf = buf[: end + 1]
        batch.nbytes += len(buf)
        try:
            batch.events.extend(_DECODER.decode_lines(buf))
        except (msgspec.DecodeError, msgspec.ValidationError):
            _decode_slow(key, start, buf[:-1], batch)
        batch.offsets[key] = start + len(buf)
        self.offsets[key] = start + len(buf)
