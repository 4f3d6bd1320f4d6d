"""`homelab run executor`: the executor service in the foreground.

Registers the `executor` subcommand on the `run` group; the flags map onto
`DriverSettings` and `RetryPolicy`. Imported by `reconciler.cli.main`.
"""

from __future__ import annotations

import shlex

import click

from reconciler.cli.common import get_repo, get_root, repo_option, root_option
from reconciler.cli.run import run, run_service
from reconciler.drivers.base import DriverSettings
from reconciler.drivers.compose import default_compose_command
from reconciler.executor.action_runner import RetryPolicy
from reconciler.executor.service import Executor


@run.command("executor")
@repo_option
@root_option
@click.option("--path", "path", default=None, help="Manifests folder (default: homelab.yaml's).")
@click.option(
    "--compose-command",
    default=None,
    envvar="HOMELAB_COMPOSE_COMMAND",
    help="Compose CLI, e.g. 'docker compose' or 'docker-compose' (default: what is installed).",
)
@click.option("--retry-attempts", default=5, show_default=True, type=click.IntRange(1, 50))
@click.option("--retry-initial", default=0.5, show_default=True, type=click.FloatRange(0.0, 60))
@click.option("--retry-max", default=10.0, show_default=True, type=click.FloatRange(0.0, 600))
@click.option("--stop-grace", default=10, show_default=True, type=click.IntRange(0, 600))
@click.option(
    "--dependency-timeout",
    default=300.0,
    show_default=True,
    type=click.FloatRange(0.0, 86_400),
    help="Seconds an action waits for a `condition: healthy` dependency before it fails.",
)
@click.option(
    "--replace-grace",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0.0, 600),
    help="Seconds a replaced container without a healthcheck must stay running.",
)
def executor(
    repo: str | None,
    root: str | None,
    path: str | None,
    compose_command: str | None,
    retry_attempts: int,
    retry_initial: float,
    retry_max: float,
    stop_grace: int,
    dependency_timeout: float,
    replace_grace: float,
) -> None:
    """Apply approved actions to Docker engines and files, one at a time.

    Only one executor runs per runtime root; a second one exits with a
    message naming the one that holds the lock.

    \b
    Example:
      homelab run executor --repo ~/homelab --root /opt/homelab
    """
    command = tuple(shlex.split(compose_command)) if compose_command else None
    settings = DriverSettings(
        stop_grace=stop_grace,
        compose_command=command or default_compose_command(),
        replace_grace=replace_grace,
    )
    service = Executor(
        get_root(root),
        get_repo(repo),
        manifests_path=path,
        settings=settings,
        retry=RetryPolicy(retry_attempts, retry_initial, retry_max),
        dependency_timeout=dependency_timeout,
    )
    run_service(service, service.root)
