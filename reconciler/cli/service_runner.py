"""Runs several services in one process, each isolated in its own thread.

A service is anything with `name` and `run(stop)` (docs/internals.md,
"Services"): `run` blocks until `stop` is set; raising, or returning while
`stop` is still clear, means "restart me". `ServiceRunner` restarts such a
service after an exponential backoff (1 s, 2 s, 4 s … capped), reports every
failure and restart through a callback, and never lets one failing loop take
the others down. `stop()` sets the shared stop event and waits for every
thread. Called by `homelab up` (reconciler/cli/up.py); tested with small
real services in tests/cli/test_service_runner.py.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol


class Service(Protocol):
    name: str

    def run(self, stop: threading.Event) -> None: ...


@dataclass(frozen=True)
class Backoff:
    """Restart delays: `initial * 2**(failures-1)`, capped at `cap` seconds.

    A service that ran for `healthy_after` seconds before failing starts
    again from `initial`: a crash once a day is not a crash loop.
    """

    initial: float = 1.0
    cap: float = 60.0
    healthy_after: float = 60.0

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return float(min(self.cap, self.initial * 2 ** min(failures - 1, 32)))


@dataclass(frozen=True)
class ServiceStatus:
    """What the runner knows about one service; a new copy on every change."""

    name: str
    state: str = "starting"  # starting | running | backoff | stopped
    restarts: int = 0
    failures: int = 0  # consecutive, reset after a healthy run
    last_error: str | None = None
    next_start_in: float | None = None


Reporter = Callable[[ServiceStatus, str], None]


def _silent(status: ServiceStatus, message: str) -> None:
    return None


class ServiceRunner:
    """Runs `services` in threads sharing one stop event; restarts failing ones."""

    def __init__(
        self,
        services: Sequence[Service],
        *,
        report: Reporter = _silent,
        backoff: Backoff | None = None,
    ) -> None:
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique: {names}")
        self.services = list(services)
        self.stop_event = threading.Event()
        self._report = report
        self._backoff = backoff or Backoff()
        self._lock = threading.Lock()
        self._status = {s.name: ServiceStatus(s.name) for s in services}
        self._threads: list[threading.Thread] = []

    def status(self) -> dict[str, ServiceStatus]:
        with self._lock:
            return dict(self._status)

    def _set(self, name: str, message: str, **changes: object) -> None:
        with self._lock:
            status = replace(self._status[name], **changes)  # type: ignore[arg-type]
            self._status[name] = status
        try:
            self._report(status, message)
        except Exception:  # a broken reporter must not kill the service loop
            traceback.print_exc()

    def start(self) -> None:
        """Start one thread per service (daemon threads: a hung service cannot block exit)."""
        for service in self.services:
            thread = threading.Thread(
                target=self._loop, args=(service,), name=f"service-{service.name}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _loop(self, service: Service) -> None:
        stop = self.stop_event
        while not stop.is_set():
            self._set(service.name, "started", state="running", next_start_in=None)
            began = time.monotonic()
            try:
                service.run(stop)
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if stop.is_set():
                    break
                error = "run() returned before stop was requested"
            if stop.is_set():
                self._set(service.name, f"failed while stopping: {error}", last_error=error)
                break
            failures = self._status[service.name].failures
            if time.monotonic() - began >= self._backoff.healthy_after:
                failures = 0
            failures += 1
            delay = self._backoff.delay(failures)
            self._set(
                service.name,
                f"failed: {error}; restarting in {delay:g}s",
                state="backoff",
                failures=failures,
                restarts=self._status[service.name].restarts + 1,
                last_error=error,
                next_start_in=delay,
            )
            stop.wait(delay)
        self._set(service.name, "stopped", state="stopped", next_start_in=None)

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Ask every service to stop; wait up to `timeout` s. Returns those still running."""
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t.name.removeprefix("service-") for t in self._threads if t.is_alive()]

    def wait(self, poll: float = 0.5) -> None:
        """Block the calling (main) thread until the stop event is set."""
        while not self.stop_event.wait(poll):
            pass
