"""`homelab run <service>`: one service in the foreground, as in compose.yaml.

Each service module defines its subcommand on the `run` group (listed in
`SERVICES`, imported only when used) and calls `run_service`, which turns
SIGTERM/SIGINT into the service's stop event so `docker stop` and Ctrl-C end
it cleanly.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Protocol

import click

from reconciler.cli.common import LazyGroup


class Service(Protocol):
    name: str

    def run(self, stop: threading.Event) -> None: ...


SERVICES = {
    "observer": "reconciler.cli.run_observer:observer",
    "supervisor": "reconciler.cli.run_supervisor:supervisor",
    "executor": "reconciler.cli.run_executor:executor",
    "ui": "reconciler.cli.run_ui:run_ui",
}


@click.group(cls=LazyGroup, lazy=SERVICES)
def run() -> None:
    """Run one service in the foreground (observer, supervisor, executor, ui).

    \b
    Example:
      homelab run observer --root /opt/homelab
    """


def run_service(service: Service) -> None:
    """Run `service` until SIGTERM or SIGINT."""
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        click.echo(f"{service.name}: stopping ({signal.Signals(signum).name})", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    service.run(stop)
