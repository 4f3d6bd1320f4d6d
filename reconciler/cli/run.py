"""`homelab run <service>`: one service in the foreground, as in compose.yaml.

Each service module defines its subcommand on the `run` group (listed in
`SERVICES`, imported only when used) and calls `run_service`, which runs it
under the same supervision as `homelab up` (reconciler/cli/supervise.py):
restarted with backoff on a failure, its health in
`ROOT/state/services/<name>.json` (what the container's healthcheck, `homelab
health <service>`, reads), SIGTERM/SIGINT end it cleanly, and past the
failure bound (HOMELAB_MAX_FAILURES within HOMELAB_FAILURE_WINDOW seconds)
the process exits 3 so the container is restarted.
"""

from __future__ import annotations

import threading
from typing import Protocol

import click

from reconciler.cli.common import LazyGroup
from reconciler.cli.supervise import bound_from_env, supervise
from reconciler.runtime_root import RuntimeRoot


class Service(Protocol):
    name: str

    def run(self, stop: threading.Event) -> None: ...


SERVICES = {
    "observer": "reconciler.cli.run_observer:observer",
    "supervisor": "reconciler.cli.run_supervisor:supervisor",
    "executor": "reconciler.cli.run_executor:executor",
    "ui": "reconciler.cli.run_ui:run_ui",
    # The Compose stack's split of the observer's engine access (compose.yaml):
    "collector": "reconciler.cli.run_collector:collector",
    "docker-proxy": "reconciler.cli.run_docker_proxy:docker_proxy",
    "notifier": "reconciler.cli.run_notifier:notifier",
}


@click.group(cls=LazyGroup, lazy=SERVICES)
def run() -> None:
    """Run one service in the foreground (observer, supervisor, executor, ui,
    notifier, collector, docker-proxy).

    \b
    Example:
      homelab run observer --root /opt/homelab
    """


def run_service(service: Service, root: RuntimeRoot) -> None:
    """Run `service` until SIGTERM or SIGINT, supervised; SystemExit non-zero after a failure."""
    supervise([service], root, bound_from_env(), label=service.name)
