"""Writers that wait out a full disk: retry with backoff, say so while they wait.

A long-running service must not drop an event, nor crash, because the
disk is full: `EventLog.append` (and a queue move) refuses whole, leaving
no torn line and nothing moved, and raises `StorageError`. `WriteRetry`
wraps such a write: the caller keeps what it wanted to write and tries
again after 0.05 s, doubling up to `cap` (5 s), until it is stored, its
`stop` event is set (then the last `StorageError` is raised, as before) or
its optional `give_up_after` passes (the UI answers an operator within
seconds rather than holding the request). The first failure is logged as
an error naming the file and the cause, then a reminder every minute, and
the recovery with how long it took; meanwhile `storage_problems()` holds
the failing writers of this process (`{name: {error, errno, what, since,
retries}}`)
and listeners are told of each change, so the service's health document
(reconciler/cli/service_report.py) and through it the UI show the error.
Used by every long-running writer: the observer, the collector, the
supervisor, the executor, the queue, the notifier and the UI's decisions.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from reconciler.errors import StorageError

log = logging.getLogger("homelab.storage")
T = TypeVar("T")
REMIND_SECONDS = 60.0

_lock = threading.Lock()
_problems: dict[str, dict[str, Any]] = {}
_listeners: list[Callable[[str], None]] = []


def storage_problems() -> dict[str, dict[str, Any]]:
    """The writers of this process that cannot write now, by name (copies)."""
    with _lock:
        return {name: dict(p) for name, p in _problems.items()}


def add_listener(listener: Callable[[str], None]) -> None:
    """`listener(name)` is called (from the writing thread) when a writer fails or recovers."""
    with _lock:
        _listeners.append(listener)


def remove_listener(listener: Callable[[str], None]) -> None:
    with _lock:
        if listener in _listeners:
            _listeners.remove(listener)


def _tell(name: str) -> None:
    with _lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(name)
        except Exception:  # a broken listener must not stop the writer
            log.exception("storage listener failed")


def retryable(exc: StorageError) -> bool:
    """False for a write that got past its point of no return (trying again would repeat it)."""
    return exc.retryable


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class WriteRetry:
    """Retries one writer's refused writes; one instance per writer (service) name."""

    def __init__(
        self,
        name: str,
        stop: threading.Event | None = None,
        *,
        first: float = 0.05,
        cap: float = 5.0,
        give_up_after: float | None = None,
    ) -> None:
        self.name = name
        self.stop = stop
        self.first = first
        self.cap = cap
        self.give_up_after = give_up_after
        self._waiting = 0  # writes of this writer waiting now (several threads may wait)
        self._count_lock = threading.Lock()

    def run(self, what: str, write: Callable[[], T]) -> T:
        """`write()` until it stops raising `StorageError` (or stop / give up: then it raises)."""
        try:
            return write()
        except StorageError as exc:
            if not retryable(exc):
                raise
            first_error = exc
        return self._wait_out(what, write, first_error)

    def _wait_out(self, what: str, write: Callable[[], T], exc: StorageError) -> T:
        started = time.monotonic()
        delay, retries, reminded = self.first, 0, started
        with self._count_lock:
            self._waiting += 1
        self._failing(what, exc)
        try:
            while True:
                stop = self.stop if self.stop is not None else threading.Event()
                if stop.is_set():
                    log.error("%s: stopping with %s still not written: %s", self.name, what, exc)
                    raise exc
                if self.give_up_after is not None and (
                    time.monotonic() - started >= self.give_up_after
                ):
                    raise exc
                stop.wait(delay)
                delay = min(self.cap, delay * 2)
                retries += 1
                try:
                    result = write()
                except StorageError as again:
                    if not retryable(again):
                        raise
                    exc = again
                    self._note(retries, again)
                    if time.monotonic() - reminded >= REMIND_SECONDS:
                        reminded = time.monotonic()
                        log.error(
                            "%s: still cannot write (%s, %d retries, %.0f s): %s",
                            self.name,
                            what,
                            retries,
                            reminded - started,
                            again,
                        )
                    continue
                log.warning(
                    "%s: writing again: %s stored after %.1f s and %d retries",
                    self.name,
                    what,
                    time.monotonic() - started,
                    retries,
                )
                return result
        finally:
            with self._count_lock:
                self._waiting -= 1
                last = self._waiting == 0
            if last:
                self._recovered()

    def _failing(self, what: str, exc: StorageError) -> None:
        with _lock:
            known = self.name in _problems
            if not known:
                _problems[self.name] = {
                    "error": str(exc),
                    "errno": errno.errorcode.get(exc.errno or 0, "EIO"),
                    "what": what,
                    "since": _now_iso(),
                    "retries": 0,
                }
        if not known:
            log.error(
                "%s: cannot write, keeping it and retrying (up to every %g s) until space is "
                "freed: %s",
                self.name,
                self.cap,
                exc,
            )
            _tell(self.name)

    def _note(self, retries: int, exc: StorageError) -> None:
        with _lock:
            problem = _problems.get(self.name)
            if problem is not None:
                problem["retries"] = max(problem["retries"], retries)
                problem["error"] = str(exc)

    def _recovered(self) -> None:
        with _lock:
            gone = _problems.pop(self.name, None) is not None
        if gone:
            _tell(self.name)
