"""uvicorn's h11 protocol with a connection cap and a deadline for request headers.

uvicorn (0.54) accepts every connection and has no timeout for a request
whose headers never finish, so half-sent requests pile up until the process
runs out of descriptors. `guarded_protocol(limits)` returns an `H11Protocol`
subclass that:

- gives every connection `limits.header_timeout` seconds, from its opening
  or from the end of its previous response, to send whole request headers
  (an absolute deadline: trickling bytes does not extend it), then closes it;
- keeps at most `limits.max_connections` connections: a new one over the
  cap closes the oldest connection that is still waiting for headers
  (half-sent or idle keep-alive); a real client sends its headers at once,
  so it is never the oldest waiting one for long. When no connection is
  waiting (all are serving requests or streams) the new one is answered 503
  and closed.

It also keeps the `Date` header current: uvicorn refreshes it in the
ten-a-second tick of its main loop, which `reconciler.api.server` replaces
by a wait that wakes only to stop, so the protocol renews it (once a
second at most) when request bytes arrive.

The budget behind the numbers is in `reconciler.api.limits`; the class is
passed as `http=` to `uvicorn.Config` by `reconciler.api.server`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from email.utils import formatdate
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from reconciler.api.limits import ConnectionLimits

log = logging.getLogger("homelab.ui.connections")
BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 52\r\nretry-after: 5\r\n\r\n"
    b"every connection of the UI is busy: retry in seconds\n"
)


class _Clock:
    """The `Date` header value, formatted once per second."""

    second = -1
    value = b""

    @classmethod
    def date(cls) -> bytes:
        now = int(time.time())
        if now != cls.second:
            cls.second, cls.value = now, formatdate(now, usegmt=True).encode()
        return cls.value


def refresh_date(state: ServerState) -> None:
    """Put the current second in the server's default `date` header (when it sends one)."""
    headers = state.default_headers
    if headers and headers[0][0] == b"date":
        date = _Clock.date()
        if headers[0][1] != date:
            state.default_headers = [(b"date", date), *headers[1:]]


class ConnectionGuard:
    """The connections of one server that wait for request headers, oldest first."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.open = 0
        self.waiting: dict[GuardedProtocol, None] = {}  # insertion order = wait order
        self.evicted = 0
        self.refused = 0
        self.timed_out = 0

    def admit(self, newcomer: GuardedProtocol) -> bool:
        """Count `newcomer` in; False when it must be refused (everything busy)."""
        self.open += 1
        if self.open <= self.limits.max_connections:
            return True
        oldest = next(iter(self.waiting), None)
        if oldest is None:
            self.refused += 1
            return False
        self.evicted += 1
        oldest.drop()
        return True


def guarded_protocol(limits: ConnectionLimits) -> type[H11Protocol]:
    """A protocol class bound to one `ConnectionGuard` (one per server)."""
    guard = ConnectionGuard(limits)
    return type("GuardedH11Protocol", (GuardedProtocol,), {"guard": guard})


class GuardedProtocol(H11Protocol):
    guard: ConnectionGuard
    _timer: asyncio.TimerHandle | None = None
    _counted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._counted = True
        if not self.guard.admit(self):
            transport.write(BUSY)
            self.drop()
            return
        self._wait_for_headers()

    def _wait_for_headers(self) -> None:
        self.guard.waiting.pop(self, None)
        self.guard.waiting[self] = None
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(self.guard.limits.header_timeout, self._too_slow)

    def _headers_arrived(self) -> None:
        self.guard.waiting.pop(self, None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _too_slow(self) -> None:
        self._timer = None
        if self in self.guard.waiting:
            self.guard.timed_out += 1
            self.drop()

    def drop(self) -> None:
        """Close now; leaves the waiting list at once so it is not chosen twice."""
        self._headers_arrived()
        if not self.transport.is_closing():
            self.transport.close()

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def data_received(self, data: bytes) -> None:
        refresh_date(self.server_state)  # before a request cycle copies the headers
        super().data_received(data)
        if self._busy() or self.transport.is_closing():
            self._headers_arrived()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.transport.is_closing():
            self._headers_arrived()
        elif not self._busy():  # no pipelined request started: wait for the next one
            self._wait_for_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_arrived()
        if self._counted:
            self._counted = False
            self.guard.open -= 1
        super().connection_lost(exc)

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: Any) -> bool:
        return self is other
