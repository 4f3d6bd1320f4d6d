"""`homelab run supervisor`: the supervisor service in the foreground.

Registers its subcommand on the `run` group when imported (see
`reconciler.cli.main._register`).
"""

from __future__ import annotations

import logging

import click

from reconciler.cli.common import (
    follow_options,
    follow_settings,
    get_remote,
    get_repo,
    get_root,
    repo_option,
    root_option,
)
from reconciler.cli.run import run, run_service
from reconciler.supervisor.service import Supervisor, SupervisorSettings


@run.command("supervisor")
@repo_option
@root_option
@follow_options
@click.option(
    "--ref", default=None, help="Branch (or ref) to track (default: the current branch, HEAD)."
)
@click.option(
    "--resync",
    type=click.FloatRange(min=1.0),
    default=60.0,
    show_default=True,
    help="Seconds between full resyncs, on top of the change-triggered passes.",
)
@click.option(
    "--flap-threshold",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Successes of the same patch within the window that mark a resource Flapping.",
)
@click.option(
    "--flap-window",
    type=click.FloatRange(min=1.0),
    default=3600.0,
    show_default=True,
    help="Seconds the flap guard looks back.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every pass.")
def supervisor(
    repo: str | None,
    root: str | None,
    ref: str | None,
    resync: float,
    flap_threshold: int,
    flap_window: float,
    verbose: bool,
) -> None:
    """Propose actions for every drifted resource, woken by commits and world changes.

    Pending actions land in DIR/queue/pending/; approve them with
    `homelab actions approve` or in the UI.

    \b
    Example:
      homelab run supervisor --repo ~/homelab --root /opt/homelab --resync 60
      homelab run supervisor --repo git@git.lan:me/homelab.git --branch main --poll 60
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    settings = SupervisorSettings(
        resync=resync, flap_threshold=flap_threshold, flap_window=flap_window
    )
    repo_path = get_repo(repo)
    service = Supervisor(
        repo_path, get_root(root), ref, settings, remote=get_remote(), follow=follow_settings()
    )
    click.echo(f"supervisor: watching {service.repo} -> {service.root.path}", err=True)
    run_service(service, service.root)
