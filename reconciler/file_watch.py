"""File-system notifications that block: no thread wakes while nothing changes.

`FileWatch` watches folders (each recursively or not) through watchdog,
which blocks on inotify on Linux (and uses the native notifications of
other systems). watchfiles, used before, polls: its Rust loop sleeps `step`
milliseconds and takes the GIL to check the stop event every time, so each
watcher woke 50 to 100 times a second in an idle homelab. A change is
offered as `(change, path)`, `change` one of `added`, `modified` and
`deleted` (a rename is the deletion of its source and the addition of its
destination, so an atomic write, temp file then rename, shows as `added` at
the target); changes of a folder's own metadata are not offered, nor a file's (chmod,
chown) unless the watch asks for `attributes`. `relevant`
filters what reaches the caller, which either gets a callback on the
watcher's thread (`on_change`) or takes batches with `changes()`: it blocks
until something relevant changed, then gathers the burst (returns after
`step` seconds without a new change, at most `debounce` seconds after the
first), or returns an empty set after `timeout` or once the watch is
closed (`close`, or `close_when(stop)`). A missing folder raises
`FileNotFoundError` at `start`. Used by the observer (event log appends,
world documents deleted by hand), the supervisor's `Wakeup`, the executor
(`queue/approved/`) and the UI's `RuntimeViews`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Literal

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

Change = Literal["added", "modified", "deleted"]
Relevant = Callable[[Change, str], bool]
OnChange = Callable[[Change, str], None]
# Opened / closed / folder-modified events are not asked for at all.
_KINDS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileDeletedEvent,
    FileMovedEvent,
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
]


def _as_text(path: bytes | str) -> str:
    return path.decode(errors="surrogateescape") if isinstance(path, bytes) else path


def _changes(event: FileSystemEvent) -> list[tuple[Change, str]]:
    src = _as_text(event.src_path)
    if event.event_type == "created":
        return [("added", src)]
    if event.event_type in ("modified", "attrib"):
        return [] if event.is_directory else [("modified", src)]
    if event.event_type == "deleted":
        return [("deleted", src)]
    if event.event_type == "moved":
        return [("deleted", src), ("added", _as_text(event.dest_path))]
    return []


class _Handler(FileSystemEventHandler):
    def __init__(self, watch: FileWatch) -> None:
        self.watch = watch

    def on_any_event(self, event: FileSystemEvent) -> None:
        for change, path in _changes(event):
            self.watch._offer(change, path)


class FileWatch:
    """Notifications for some folders; see the module docstring."""

    def __init__(
        self,
        folders: Iterable[Path | tuple[Path, bool]],
        *,
        relevant: Relevant | None = None,
        on_change: OnChange | None = None,
        attributes: bool = False,
    ) -> None:
        # `attributes`: a chmod/chown of a file is offered as `modified` too.
        self.kinds = [*_KINDS, FileAttribEvent] if attributes else _KINDS
        self.folders = [(f, True) if isinstance(f, Path) else f for f in folders]
        self.relevant = relevant
        self.on_change = on_change
        self._pending: set[tuple[Change, str]] = set()
        self._cond = threading.Condition()
        self._closed = False
        self._observer: BaseObserver | None = None

    def start(self) -> FileWatch:
        observer = Observer()
        handler = _Handler(self)
        try:
            for folder, recursive in self.folders:
                if not folder.is_dir():
                    raise FileNotFoundError(f"cannot watch {folder}: no such folder")
                observer.schedule(
                    handler, str(folder), recursive=recursive, event_filter=self.kinds
                )
            observer.start()
        except BaseException:
            observer.unschedule_all()
            raise
        self._observer = observer
        return self

    def _offer(self, change: Change, path: str) -> None:
        if self._closed or (self.relevant is not None and not self.relevant(change, path)):
            return
        if self.on_change is not None:
            self.on_change(change, path)
            return
        with self._cond:
            self._pending.add((change, path))
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def changes(
        self, timeout: float | None = None, *, step: float = 0.02, debounce: float = 0.3
    ) -> set[tuple[Change, str]]:
        """The next burst of relevant changes; empty after `timeout` or once closed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._pending or self._closed, timeout):
                return set()
            first = time.monotonic()
            while not self._closed:
                size = len(self._pending)
                left = first + debounce - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(step, left))
                if len(self._pending) == size:
                    break  # quiet for `step`: the burst is over
            if self._closed:
                return set()
            found, self._pending = self._pending, set()
            return found

    def close_when(self, stop: threading.Event) -> None:
        """Close this watch once `stop` is set (a helper thread waits on it)."""

        def _relay() -> None:
            stop.wait()
            self.close()

        threading.Thread(target=_relay, name="file-watch-stop", daemon=True).start()

    def close(self) -> None:
        """Stop watching; a caller blocked in `changes()` returns an empty set at once."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            if observer.is_alive() and threading.current_thread() is not observer:
                observer.join(timeout=5)

    def __enter__(self) -> FileWatch:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
