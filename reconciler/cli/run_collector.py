"""`homelab run collector`: the Docker collectors alone, as in compose.yaml.

Registers itself on the `run` group (`reconciler.cli.run`); the service is
`reconciler.observer.collector_service.CollectorService`.
"""

from __future__ import annotations

import logging

import click

from reconciler.cli.common import engine_watch_options, get_root, optional_repo, root_option
from reconciler.cli.run import run, run_service
from reconciler.observer.collector_service import CollectorService, CollectorSettings


@run.command("collector")
@root_option
@engine_watch_options
@click.option(
    "--local-engine",
    metavar="URL",
    default=None,
    envvar="HOMELAB_LOCAL_ENGINE",
    help="Read the nodes whose dockerHost is a unix socket through this address instead "
    "(the read-only proxy of `homelab run docker-proxy`), e.g. "
    "unix:///run/homelab-engine/docker.sock.",
)
def collector(root: str | None, repo: str | None, resync: float, local_engine: str | None) -> None:
    """Watch the nodes' Docker engines and append what they show to the event log.

    For a deployment whose observer has no engine access (`homelab run
    observer --no-docker`): the observer folds these events like any other.

    \b
    Examples:
      homelab run collector --root /opt/homelab --repo /srv/homelab-config
      homelab run collector --local-engine unix:///run/homelab-engine/docker.sock
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    runtime = get_root(root)
    runtime.path.mkdir(parents=True, exist_ok=True)
    repo_path = optional_repo(repo)
    settings = CollectorSettings(resync=resync, local_engine=local_engine)
    run_service(CollectorService(runtime, repo_path, settings), runtime)
