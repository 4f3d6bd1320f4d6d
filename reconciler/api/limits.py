"""The UI's resource budget: descriptors, connections, header and keep-alive timeouts, streams.

Every service of `homelab up` shares one process and so one descriptor
table. A flood of half-sent requests once took every descriptor, so the
executor could not open the action it had to run. The budget:

- at start the soft RLIMIT_NOFILE is raised to the hard limit
  (`raise_descriptor_limit`, called by `homelab up` and `homelab run ui`);
- `RESERVED_DESCRIPTORS` (512) stay for everything that is not a UI
  connection: the executor's engine connections and action files, the
  observer's event files, inotify and engine streams, the supervisor's git
  pipes, event logs, the UI's own watcher and listening socket;
- asyncio accepts up to `backlog` connections in one go, and each reaches
  the protocol (which may close it) and frees its descriptor only one or two
  loop turns later, so a burst holds up to `IN_FLIGHT_ACCEPTS` (4 x the
  listen backlog `ACCEPT_BACKLOG`, 64) descriptors beyond the cap; a small
  batch also keeps a real client's fresh connection from being pushed out
  by one batch of newer ones before its headers are read;
- the UI holds at most `connection_cap()` client connections: the soft
  limit minus the reserve and the in-flight accepts, and never more than
  `MAX_CONNECTIONS` (1,000; with a soft limit of 1,024 it is 256, so a
  burst peaks near 512 descriptors and 512 stay free). When it is full a new connection
  pushes out the oldest one that is still waiting for its request headers
  (half-sent, or idle between keep-alive requests); only when every
  connection is busy is the new one answered 503
  (`reconciler.api.connections`);
- request headers must arrive whole within `HEADER_TIMEOUT_SECONDS` of the
  connection or the previous response, at most `MAX_HEADER_BYTES` of them;
  an idle keep-alive connection is closed after `KEEP_ALIVE_SECONDS`;
- live streams (`/live`): `SSE_PER_CLIENT` per client address and
  `SSE_TOTAL` in all (`StreamSlots`), so streams cannot take the
  connection budget either.

Called by `reconciler.api.server` (the uvicorn config), the `/live` handler
and the CLI commands that start the UI.
"""

from __future__ import annotations

import contextlib
import resource
import threading
from dataclasses import dataclass

RESERVED_DESCRIPTORS = 512
ACCEPT_BACKLOG = 64
IN_FLIGHT_ACCEPTS = 4 * ACCEPT_BACKLOG
MAX_CONNECTIONS = 1000
MIN_CONNECTIONS = 32
HEADER_TIMEOUT_SECONDS = 10.0
MAX_HEADER_BYTES = 16 * 1024
KEEP_ALIVE_SECONDS = 5
SSE_PER_CLIENT = 8
SSE_TOTAL = 128


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns (soft, hard) afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Linux refuses "infinity" for NOFILE; 1 << 20 is nr_open's usual default.
    target = 1 << 20 if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):  # else connection_cap() sizes to soft
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def connection_cap(configured: int = MAX_CONNECTIONS) -> int:
    """Client connections the UI may hold, leaving `RESERVED_DESCRIPTORS` to the rest."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(MIN_CONNECTIONS, min(configured, soft - RESERVED_DESCRIPTORS - IN_FLIGHT_ACCEPTS))


@dataclass(frozen=True)
class ConnectionLimits:
    """What `reconciler.api.connections` enforces for one server."""

    max_connections: int
    header_timeout: float = HEADER_TIMEOUT_SECONDS


class TooManyStreams(Exception):
    """A client (or all of them) holds as many live streams as allowed."""


class StreamSlots:
    """Counts open live streams per client address; thread-safe."""

    def __init__(self, per_client: int = SSE_PER_CLIENT, total: int = SSE_TOTAL) -> None:
        self.per_client = per_client
        self.total = total
        self._open: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, address: str) -> None:
        """Reserve a stream for `address` or raise TooManyStreams saying which limit."""
        with self._lock:
            self._refuse(address)
            self._open[address] = self._open.get(address, 0) + 1

    def check(self, address: str) -> None:
        """Raise TooManyStreams if `take` would (the handler answers 429 before streaming)."""
        with self._lock:
            self._refuse(address)

    def _refuse(self, address: str) -> None:
        mine = self._open.get(address, 0)
        if mine >= self.per_client:
            raise TooManyStreams(
                f"{address} already holds {mine} live streams (at most {self.per_client} "
                "per client): close other tabs of the UI"
            )
        if sum(self._open.values()) >= self.total:
            raise TooManyStreams(f"the UI already serves {self.total} live streams: retry later")

    def give_back(self, address: str) -> None:
        with self._lock:
            left = self._open.get(address, 0) - 1
            if left > 0:
                self._open[address] = left
            else:
                self._open.pop(address, None)

    def held(self, address: str) -> int:
        with self._lock:
            return self._open.get(address, 0)
