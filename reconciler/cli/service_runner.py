"""Runs several services in one process, each isolated in its own thread.

A service is anything with `name` and `run(stop)` (docs/internals.md,
"Services"): `run` blocks until `stop` is set; raising, or returning while
`stop` is still clear, means "restart me". `ServiceRunner` restarts such a
service after an exponential backoff (1 s, 2 s, 4 s … capped), reports every
failure and restart through a callback, and never lets one failing loop take
the others down: each run of each service gets a stop event of its own, so
a service that sets the event it was given (the observer once did, to end
its watcher thread) stops only itself and is restarted. Past a `Bound` (N
failures of one service within M seconds) the runner gives up: `exhausted`
names the service and `stop_event` is set; an error listed in `fatal` (a
configuration problem, such as another executor holding the lock) gives up
at once (`fatal_error`). `stop()` asks every service to
stop and waits for every thread. Called by `homelab up` (reconciler/cli/up.py)
and `homelab run` (reconciler/cli/run.py); tested with small real services in
tests/cli/test_service_runner.py.
"""

from __future__ import annotations

import collections
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
class Bound:
    """When to give up: `max_failures` failures of one service within `window` seconds."""

    max_failures: int = 5
    window: float = 600.0

    def describe(self) -> str:
        return f"{self.max_failures} times in {self.window:g}s"


@dataclass(frozen=True)
class ServiceStatus:
    """What the runner knows about one service; a new copy on every change."""

    name: str
    state: str = "starting"  # starting | running | backoff | failed | stopped
    restarts: int = 0
    failures: int = 0  # consecutive, reset after a healthy run
    recent_failures: int = 0  # within the bound's window
    last_error: str | None = None
    reason: str | None = None  # the exception's type name
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
        bound: Bound | None = None,
        fatal: tuple[type[Exception], ...] = (),
    ) -> None:
        names = [s.name for s in services]
        if len(set(names)) != len(names):
            raise ValueError(f"service names must be unique: {names}")
        self.services = list(services)
        self.stop_event = threading.Event()
        self._report = report
        self._backoff = backoff or Backoff()
        self.bound = bound or Bound()
        self.exhausted: str | None = None  # why the runner gave up, once it did
        self.fatal = fatal  # errors no restart can fix (a configuration problem): give up at once
        self.fatal_error: str | None = None
        self._lock = threading.Lock()
        self._status = {s.name: ServiceStatus(s.name) for s in services}
        self._runs: dict[str, threading.Event] = {}  # each service's current stop event
        self._failed_at: dict[str, collections.deque[float]] = {
            s.name: collections.deque() for s in services
        }
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

    def _run_once(self, service: Service) -> tuple[str, str] | None:
        """One run of `service` with a stop event of its own: (error, reason), or None if asked."""
        own = threading.Event()
        with self._lock:
            self._runs[service.name] = own
        if self.stop_event.is_set():
            own.set()  # stop was asked between two runs
        try:
            service.run(own)
        except self.fatal as exc:
            self._give_up_at_once(service.name, exc)
            return None
        except Exception as exc:
            error, reason = f"{type(exc).__name__}: {exc}", type(exc).__name__
        else:
            if self.stop_event.is_set():
                return None
            error, reason = "run() returned before stop was requested", "ReturnedEarly"
        finally:
            own.set()  # ends helper threads of the finished run that wait on it
        if self.stop_event.is_set():
            self._set(service.name, f"failed while stopping: {error}", last_error=error)
            return None
        return error, reason

    def _loop(self, service: Service) -> None:
        while not self.stop_event.is_set():
            self._set(service.name, "started", state="running", next_start_in=None, reason=None)
            began = time.monotonic()
            failed = self._run_once(service)
            if failed is None:
                if self.fatal_error is not None and self._status[service.name].state == "failed":
                    return
                break
            error, reason = failed
            if self._give_up(service.name, error, reason):
                return
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
                recent_failures=len(self._failed_at[service.name]),
                last_error=error,
                reason=reason,
                next_start_in=delay,
            )
            self.stop_event.wait(delay)
        self._set(service.name, "stopped", state="stopped", next_start_in=None)

    def _give_up(self, name: str, error: str, reason: str) -> bool:
        """Count a failure; past the bound, mark the service failed and stop the runner."""
        now = time.monotonic()
        times = self._failed_at[name]
        times.append(now)
        while times and now - times[0] > self.bound.window:
            times.popleft()
        if len(times) < self.bound.max_failures:
            return False
        why = f"{name} failed {self.bound.describe()} (last: {error}); giving up"
        with self._lock:
            if self.exhausted is None:
                self.exhausted = why
        self._set(
            name,
            why,
            state="failed",
            failures=self._status[name].failures + 1,
            recent_failures=len(times),
            last_error=error,
            reason=reason,
            next_start_in=None,
        )
        self.stop_event.set()
        self._stop_runs()
        return True

    def _give_up_at_once(self, name: str, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            if self.fatal_error is None:
                self.fatal_error = f"{name}: {exc}"
        self._set(
            name,
            f"failed: {error}; not restarted (a restart cannot fix it)",
            state="failed",
            failures=self._status[name].failures + 1,
            last_error=error,
            reason=type(exc).__name__,
            next_start_in=None,
        )
        self.stop_event.set()
        self._stop_runs()

    def _stop_runs(self) -> None:
        with self._lock:
            runs = list(self._runs.values())
        for own in runs:
            own.set()

    def stop(self, timeout: float = 10.0) -> list[str]:
        """Ask every service to stop; wait up to `timeout` s. Returns those still running."""
        self.stop_event.set()
        self._stop_runs()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [t.name.removeprefix("service-") for t in self._threads if t.is_alive()]

    def wait(self, poll: float = 5.0) -> None:
        """Block the calling (main) thread until stop is asked (a signal) or the runner gives up.

        A signal interrupts the wait on the main thread, and giving up sets the
        event, so `poll` only bounds how late a signal delivered to another
        thread is noticed.
        """
        while not self.stop_event.wait(poll):
            pass
        self._stop_runs()

    def failing(self) -> dict[str, ServiceStatus]:
        """The services that are failing (in backoff or given up) right now."""
        return {n: st for n, st in self.status().items() if st.state in ("backoff", "failed")}
