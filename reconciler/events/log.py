"""Writing events: one producer, one file per UTC day, append-only.

Each process appends under its own producer name to
`ROOT/events/YYYY-MM-DD/<producer>.jsonl`, one JSON object a line: `id`
(sortable: nanosecond time, producer, sequence), `ts`, `source`, `type`,
`ref: {kind, name}`, `data`. Every line is written whole with one `write` as
it is appended; events that record decisions or actions (`action.*`) and any
caller asking `sync=True` are fsynced before `append` returns; a batch
appends with `sync=False` and calls `sync` once. When the write or the fsync
fails (a full disk) the file is cut back to where the line began and
`StorageError` is raised: a refused event leaves no torn line and is not in
the log; a writer given a `WriteRetry` (reconciler/events/retry.py) waits
and appends it again instead, so the event is in the log exactly once. An
exclusive lock on the open file keeps a second writer with the same
producer name out. Called by the collectors, the supervisor, the queue,
the executor and the API. `reserved_actor` says whether a person's name
would pass for one of the services (or another producer) in the audit trail;
the UI and the CLI refuse such operator names.
"""

from __future__ import annotations

import os
import re
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TypedDict

import orjson

from reconciler.atomic_files import try_lock
from reconciler.errors import ConfigError, StorageError
from reconciler.events.retry import WriteRetry
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot

_PRODUCER = re.compile(r"^[a-z0-9][a-z0-9.-]{0,62}$")
_SLUG = re.compile(r"[^a-z0-9.-]+")
_NUMBERED_UI = re.compile(r"^ui-[0-9]+$")  # a second UI process on a root writes as ui-2, ...
SERVICE_ACTORS = frozenset(
    {"executor", "supervisor", "observer", "ui", "notifier", "collector", "docker-proxy"}
)
PRODUCER_PREFIXES = ("ingest-", "cli-")  # agents' and terminals' producers


class EventRef(TypedDict):
    kind: str
    name: str


class Event(TypedDict):
    id: str
    ts: str
    source: str
    type: str
    ref: EventRef | None
    data: dict[str, Any]


def check_producer(name: str) -> str:
    if not _PRODUCER.match(name):
        raise ConfigError(
            f"producer name {name!r}: use 1-63 lower-case letters, digits, '.' or '-'"
        )
    return name


def reserved_actor(name: str) -> str | None:
    """Why `name` may not be an operator's name (it reads as a service or a producer), or None.

    Compared after lower-casing and reducing to the producer alphabet, so
    `Executor` or `executor!` count too.
    """
    slug = _SLUG.sub("-", name.strip().lower()).strip(".-")
    if _NUMBERED_UI.match(slug):
        slug = "ui"
    if slug in SERVICE_ACTORS:
        return (
            f"operator name {name!r} is reserved for the {slug} service "
            "(the audit trail must tell people from services); pick your own name"
        )
    if slug.startswith(PRODUCER_PREFIXES):
        return (
            f"operator name {name!r} is reserved: names starting with "
            f"{' or '.join(PRODUCER_PREFIXES)} are event producers; pick your own name"
        )
    return None


_last_ns = 0
_id_lock = threading.Lock()


def _monotonic_ns() -> int:
    """Wall-clock nanoseconds, strictly increasing within this process."""
    global _last_ns
    with _id_lock:
        now = max(time.time_ns(), _last_ns + 1)
        _last_ns = now
        return now


def new_event_id(producer: str, ns: int, seq: int) -> str:
    return f"{ns:019d}-{producer}-{seq:08d}"


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventLog:
    """The writer of one producer. Thread-safe; one instance per producer per root."""

    def __init__(
        self, root: RuntimeRoot, producer: str, *, retry: WriteRetry | None = None
    ) -> None:
        self.root = root
        self.producer = check_producer(producer)
        self.retry = retry  # set: a refused append waits and retries (events/retry.py)
        self._lock = threading.Lock()
        self._day: str | None = None
        self._fh: IO[bytes] | None = None
        self._seq = 0

    def _open(self, day: str) -> IO[bytes]:
        if self._fh is not None and self._day == day:
            return self._fh
        self.close()
        folder = self.root.events / day
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.producer}.jsonl"
        fh = try_lock(path)  # kept open (and locked) for the writer's lifetime
        if fh is None:
            raise ConfigError(
                f"another process is already writing events as {self.producer!r} to {path}"
            )
        self._repair_torn_tail(fh, path)
        self._fh, self._day = fh, day
        return fh

    @staticmethod
    def _repair_torn_tail(fh: IO[bytes], path: Path) -> None:
        """A previous writer of ours died mid-line: end that line so ours start clean."""
        size = os.fstat(fh.fileno()).st_size
        if size == 0:
            return
        with open(path, "rb") as reader:
            reader.seek(size - 1)
            if reader.read(1) != b"\n":
                fh.write(b"\n")  # the torn fragment becomes one corrupt line, quarantined
                fh.flush()

    def append(
        self,
        type: str,
        ref: ResourceKey | None = None,
        data: dict[str, Any] | None = None,
        *,
        sync: bool | None = None,
    ) -> Event:
        """Append one event; return it. fsynced for action.* or when `sync`.

        With a `retry`, a refused append (a full disk) is tried again until
        it is stored (or the retry stops or gives up and raises).
        """
        if self.retry is None:
            return self._append_once(type, ref, data, sync)
        return self.retry.run(
            f"event {type} ({self.producer})", lambda: self._append_once(type, ref, data, sync)
        )

    def _append_once(
        self,
        type: str,
        ref: ResourceKey | None,
        data: dict[str, Any] | None,
        sync: bool | None,
    ) -> Event:
        ns = _monotonic_ns()
        with self._lock:
            self._seq += 1
            event: Event = {
                "id": new_event_id(self.producer, ns, self._seq),
                "ts": _iso(ns),
                "source": self.producer,
                "type": type,
                "ref": {"kind": ref[0], "name": ref[1]} if ref else None,
                "data": data or {},
            }
            try:
                fh = self._open(event["ts"][:10])
            except OSError as exc:
                where = self.root.events / event["ts"][:10] / f"{self.producer}.jsonl"
                raise StorageError(f"record event {type}", where, exc, "not recorded") from exc
            self._write_line(fh, orjson.dumps(event) + b"\n", type, sync)
        return event

    def _write_line(self, fh: IO[bytes], line: bytes, type: str, sync: bool | None) -> None:
        """Append `line` whole (and fsync it when asked), or cut the file back and raise."""
        fd = fh.fileno()
        start = os.fstat(fd).st_size  # O_APPEND and our flock: the line goes exactly here
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
            if sync or (sync is None and type.startswith("action.")):
                os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, start)
            except OSError:  # pragma: no cover - the torn line is then quarantined by readers
                self.close()
            raise StorageError(f"record event {type}", fh.name, exc, "not recorded") from exc

    def sync(self) -> None:
        """fsync what was appended with `sync=False` (a batch pays one flush, not one each)."""
        with self._lock:
            if self._fh is None:
                return
            try:
                os.fsync(self._fh.fileno())
            except OSError as exc:
                raise StorageError("sync events", self._fh.name, exc, "maybe not recorded") from exc

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            self._day = None
