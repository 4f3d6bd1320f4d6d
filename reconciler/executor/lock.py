"""The executor's exclusive lock: one executor per runtime root, holder visible.

`flock` on `ROOT/state/executor.lock` (never written, so the lock lives on a
stable inode); who holds it is written next to it, through the crash-safe
helper, as `ROOT/state/executor.holder.json` (`pid`, `host`, `startedAt`).
The kernel drops the lock when the process dies, even on kill -9, so a stale
holder file never blocks a restart. A second executor gets a `ConfigError`
naming the holder. When the holder file cannot be written (a full disk) the
lock is let go again before the error rises, so the supervised restart can
take it. Called by `reconciler.executor.service`.
"""

from __future__ import annotations

import fcntl
import os
import socket
from typing import IO, Any

from reconciler.atomic_files import atomic_write_json, read_json, try_lock
from reconciler.errors import ConfigError
from reconciler.queue.action import now_iso
from reconciler.runtime_root import RuntimeRoot


class ExecutorLock:
    """Hold with `acquire()`; `release()` (or process exit) lets the next one in."""

    def __init__(self, root: RuntimeRoot) -> None:
        self.root = root
        self.path = root.state / "executor.lock"
        self.holder_path = root.state / "executor.holder.json"
        self._fh: IO[bytes] | None = None

    def holder(self) -> dict[str, Any] | None:
        try:
            doc = read_json(self.holder_path)
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def acquire(self) -> dict[str, Any]:
        fh = try_lock(self.path)  # held for the executor's lifetime
        if fh is None:
            held = self.holder() or {}
            raise ConfigError(
                f"another executor is already running for {self.root.path} "
                f"(pid {held.get('pid', '?')} on {held.get('host', '?')} "
                f"since {held.get('startedAt', '?')}); stop it first, "
                "only one executor may run per runtime root"
            ) from None
        self._fh = fh
        me = {"pid": os.getpid(), "host": socket.gethostname(), "startedAt": now_iso()}
        try:
            atomic_write_json(self.holder_path, me)
        except BaseException:
            # A full disk: let go, or this process's next attempt finds itself holding it.
            self.release()
            raise
        return me

    def release(self) -> None:
        if self._fh is None:
            return
        try:
            self.holder_path.unlink(missing_ok=True)
        finally:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None
