"""Runs services under the runner until a signal or the failure bound; picks the exit status.

`supervise` is the foreground of `homelab up` (all five services,
reconciler/cli/up.py) and `homelab run <service>` (one, reconciler/cli/run.py):
it starts a `ServiceRunner` whose reporter is a `ServiceRecorder` (health
documents under ROOT/state/services/, `service.*` events), turns SIGTERM and
SIGINT into a stop, and ends the process with a status a service manager
can act on: 0 when asked to stop while every service was running, 1 when
asked to stop while one was failing or when one raised `ConfigError` (not
retried: another executor holds the lock, a flag is unusable),
`EXIT_EXHAUSTED` (3) when a service
failed more often than the bound allows (N failures within M seconds,
`--max-failures` / `--failure-window`, or HOMELAB_MAX_FAILURES /
HOMELAB_FAILURE_WINDOW). A failure never ends the process with 0.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, TypeVar

import click

from reconciler.cli.service_report import ServiceRecorder
from reconciler.cli.service_runner import Bound, Service, ServiceRunner
from reconciler.errors import ConfigError
from reconciler.runtime_root import RuntimeRoot

EXIT_FAILING = 1
EXIT_EXHAUSTED = 3
F = TypeVar("F", bound=Callable[..., Any])


def bound_options(command: F) -> F:
    """`--max-failures` and `--failure-window`, the bound past which the process gives up."""
    command = click.option(
        "--failure-window",
        type=click.FloatRange(1.0),
        default=600.0,
        show_default=True,
        envvar="HOMELAB_FAILURE_WINDOW",
        metavar="SECONDS",
        help="Window in which --max-failures failures of one service make the process exit.",
    )(command)
    return click.option(
        "--max-failures",
        type=click.IntRange(1),
        default=5,
        show_default=True,
        envvar="HOMELAB_MAX_FAILURES",
        help="Failures of one service within --failure-window after which the process "
        f"exits with status {EXIT_EXHAUSTED} (a service manager can then restart it).",
    )(command)


def bound_from_env() -> Bound:
    """The bound for `homelab run`, from HOMELAB_MAX_FAILURES / HOMELAB_FAILURE_WINDOW."""
    raw_max = os.environ.get("HOMELAB_MAX_FAILURES") or "5"
    raw_window = os.environ.get("HOMELAB_FAILURE_WINDOW") or "600"
    try:
        bound = Bound(int(raw_max), float(raw_window))
    except ValueError:
        raise ConfigError(
            f"HOMELAB_MAX_FAILURES={raw_max!r} / HOMELAB_FAILURE_WINDOW={raw_window!r}: "
            "give a whole number of failures and a number of seconds"
        ) from None
    if bound.max_failures < 1 or bound.window <= 0:
        raise ConfigError("HOMELAB_MAX_FAILURES must be at least 1 and HOMELAB_FAILURE_WINDOW > 0")
    return bound


def supervise(
    services: Sequence[Service],
    root: RuntimeRoot,
    bound: Bound,
    *,
    started: Callable[[ServiceRunner], None] | None = None,
    label: str = "",
) -> None:
    """Run `services` until stopped; raise SystemExit with a non-zero status after a failure."""
    recorder = ServiceRecorder(root)
    runner = ServiceRunner(services, report=recorder.report, bound=bound, fatal=(ConfigError,))

    # The handler runs on the main thread, which may hold the stop event's lock
    # inside `runner.wait()` at that instant: setting the event there deadlocked
    # (a process stuck on SIGTERM was seen). It only writes the signal's number to
    # a pipe (no Python lock); a thread reads it, says so and sets the event.
    read_end, write_end = os.pipe()

    def _stop(signum: int, frame: FrameType | None) -> None:
        os.write(write_end, bytes([signum]))

    # Who was failing when the stop was asked for: taken before the event is set,
    # because setting it wakes the services in backoff, which then say "stopped".
    at_stop: dict[str, Any] = {}

    def _relay() -> None:
        while data := os.read(read_end, 16):
            for signum in data:
                how = signal.Signals(signum).name
                click.echo(
                    f"{label}: stopping ({how})" if label else f"Stopping ({how})…", err=True
                )
                if not runner.stop_event.is_set():
                    at_stop.update(runner.failing())
                runner.stop_event.set()
        os.close(read_end)

    threading.Thread(target=_relay, name="stop-signal", daemon=True).start()
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    recorder.start()
    try:
        runner.start()
        if started is not None:
            started(runner)
        runner.wait()
        failing = {**at_stop, **runner.failing()}
        hung = runner.stop(timeout=15)
    finally:
        recorder.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(write_end)  # ends the relay
    if hung:
        click.echo(f"Did not stop in time: {', '.join(hung)}", err=True)
    click.echo("Stopped.")
    if runner.fatal_error is not None:
        click.echo(f"Error: {runner.fatal_error}", err=True)
        raise SystemExit(EXIT_FAILING)
    if runner.exhausted is not None:
        click.echo(f"Error: {runner.exhausted}", err=True)
        raise SystemExit(EXIT_EXHAUSTED)
    if failing:
        which = "; ".join(f"{n} failing ({st.last_error})" for n, st in failing.items())
        click.echo(f"Error: stopped while {which}", err=True)
        raise SystemExit(EXIT_FAILING)
