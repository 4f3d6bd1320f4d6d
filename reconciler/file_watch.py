"""File-system notifications that block: no thread wakes while nothing changes.

`FileWatch` watches folders (each recursively or not) through Linux inotify
(`inotify_simple`, a thin wrapper of the system calls): one thread per watch
blocks in `poll` on the inotify descriptor and a pipe that `close` writes
to. watchfiles, used first, polled (its Rust loop woke 50 to 100 times a
second in an idle homelab); watchdog, used next, pairs the two halves of
every rename in a delay queue that it searches from the start for each
event, so a burst of atomic writes (500 world documents, 500 queue files)
cost seconds of the GIL in each of the four watches of `homelab up`. Nothing
here pairs halves: a change is offered as `(change, path)`, `change` one of
`added`, `modified` and `deleted`, and a rename is the deletion of its
source and the addition of its destination, so an atomic write (temp file
then rename) shows as `added` at the target. Changes of a folder's own
metadata are not offered, nor a file's (chmod, chown) unless the watch asks
for `attributes`. A folder made inside a recursive watch gets its own
watch, and what it already holds when that watch is added is offered as
`added` (so the first line of a new day's log is never missed). When the
kernel's queue overflowed, every watched folder is offered as `modified`:
callers then look at everything. `relevant` filters what reaches the
caller, which either gets a callback on the watcher's thread (`on_change`)
or takes batches with `changes()`: it blocks until something relevant
changed, then gathers the burst (returns after `step` seconds without a new
change, at most `debounce` seconds after the first), or returns an empty
set after `timeout` or once the watch is closed (`close`, or
`close_when(stop)`). A missing folder raises `FileNotFoundError` at
`start`. Used by the observer (event log appends, world documents deleted
by hand, managed files), the supervisor's `Wakeup`, the executor
(`queue/approved/`), the notifier and the UI's `RuntimeViews`.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from inotify_simple import INotify
from inotify_simple import flags as F

Change = Literal["added", "modified", "deleted"]
Relevant = Callable[[Change, str], bool]
OnChange = Callable[[Change, str], None]
_MASK = (
    F.CREATE
    | F.MODIFY
    | F.DELETE
    | F.MOVED_FROM
    | F.MOVED_TO
    | F.DELETE_SELF
    | F.MOVE_SELF
    | F.ONLYDIR
)
_DIR_GONE = F.IGNORED | F.DELETE_SELF | F.MOVE_SELF


class _Inotify:
    """One inotify descriptor, its watches (`wd -> (folder, recursive)`) and a reader thread."""

    def __init__(self, watch: FileWatch) -> None:
        self.watch = watch
        self.mask = _MASK | (F.ATTRIB if watch.attributes else 0)
        self.fd = INotify()
        self.paths: dict[int, tuple[str, bool]] = {}
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._run, name="file-watch", daemon=True)

    def add(self, folder: str, recursive: bool, *, offer: bool) -> None:
        """Watch `folder` (and, recursively, what it holds); `offer` what is already there."""
        try:
            wd = self.fd.add_watch(folder, self.mask)
        except OSError:
            return  # gone already, or not a folder any more
        self.paths[wd] = (folder, recursive)
        if not recursive and not offer:
            return
        try:
            entries = list(os.scandir(folder))
        except OSError:
            return
        for entry in entries:
            path = os.path.join(folder, entry.name)
            if offer:
                self.watch._offer("added", path)
            if recursive and entry.is_dir(follow_symlinks=False):
                self.add(path, True, offer=offer)

    def start(self) -> None:
        self._thread.start()

    def discard(self) -> None:
        """Close everything of a backend whose thread never started."""
        self.fd.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self.fd.fileno(), select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        try:
            while not self.watch.closed:
                ready = {fd for fd, _ in poller.poll()}
                if self._wake_r in ready or self.watch.closed:
                    return
                self._handle(self.fd.read(timeout=0))
        finally:
            self.fd.close()
            os.close(self._wake_r)

    def _handle(self, events: Iterable[Any]) -> None:
        for ev in events:
            wd, mask, name = ev.wd, ev.mask, ev.name
            if mask & F.Q_OVERFLOW:
                for folder, _ in list(self.paths.values()):
                    self.watch._offer("modified", folder)
                continue
            where = self.paths.get(wd)
            if where is None:
                continue
            folder, recursive = where
            if mask & _DIR_GONE:
                if mask & F.IGNORED or mask & F.MOVE_SELF:
                    self.paths.pop(wd, None)
                continue
            path = os.path.join(folder, name) if name else folder
            is_dir = bool(mask & F.ISDIR)
            if mask & (F.CREATE | F.MOVED_TO):
                self.watch._offer("added", path)
                if is_dir and recursive:
                    self.add(path, True, offer=True)
            elif mask & (F.DELETE | F.MOVED_FROM):
                self.watch._offer("deleted", path)
                if is_dir and mask & F.MOVED_FROM:
                    self._forget_under(path)
            elif mask & (F.MODIFY | F.ATTRIB) and not is_dir:
                self.watch._offer("modified", path)

    def _forget_under(self, folder: str) -> None:
        """A folder moved away: drop its watches (a move back in adds them again)."""
        prefix = folder + os.sep
        for wd, (path, _) in list(self.paths.items()):
            if path == folder or path.startswith(prefix):
                self.paths.pop(wd, None)
                with contextlib.suppress(OSError):
                    self.fd.rm_watch(wd)

    def stop(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        finally:
            os.close(self._wake_w)
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)


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
        self.attributes = attributes
        self.folders = [(f, True) if isinstance(f, Path) else f for f in folders]
        self.relevant = relevant
        self.on_change = on_change
        self._pending: set[tuple[Change, str]] = set()
        self._cond = threading.Condition()
        self._closed = False
        self._backend: _Inotify | None = None

    def start(self) -> FileWatch:
        for folder, _ in self.folders:
            if not folder.is_dir():
                raise FileNotFoundError(f"cannot watch {folder}: no such folder")
        backend = _Inotify(self)
        try:
            for folder, recursive in self.folders:
                backend.add(str(folder), recursive, offer=False)
        except BaseException:
            backend.discard()
            raise
        backend.start()
        self._backend = backend
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
        backend, self._backend = self._backend, None
        if backend is not None:
            backend.stop()

    def __enter__(self) -> FileWatch:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
