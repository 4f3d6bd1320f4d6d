"""`homelab run docker-proxy`: the read-only Docker API proxy, as in compose.yaml.

Registers itself on the `run` group (`reconciler.cli.run`); the service is
`reconciler.observer.docker_proxy.DockerProxyService`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from reconciler.cli.common import get_root, root_option
from reconciler.cli.run import run, run_service
from reconciler.errors import ConfigError
from reconciler.observer.collectors.node import DEFAULT_HOST
from reconciler.observer.docker_proxy import DockerProxyService


@run.command("docker-proxy")
@root_option
@click.option(
    "--listen",
    metavar="PATH",
    required=True,
    help="Unix socket to serve the read-only API on (created mode 0600).",
)
@click.option(
    "--engine",
    metavar="URL",
    default=None,
    help="The engine's unix socket  [default: $DOCKER_HOST, else unix:///var/run/docker.sock]",
)
def docker_proxy(root: str | None, listen: str, engine: str | None) -> None:
    """Serve the engine's API read-only: GET/HEAD on containers, images, networks,
    volumes, events, info, version and _ping; everything else is refused (403).

    \b
    Example:
      homelab run docker-proxy --listen /run/homelab-engine/docker.sock
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    url = engine or os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    if not url.startswith("unix://"):
        raise ConfigError(f"--engine {url}: the proxy reads a local engine's unix socket")
    runtime = get_root(root)
    runtime.path.mkdir(parents=True, exist_ok=True)
    service = DockerProxyService(Path(listen).expanduser().absolute(), url)
    run_service(service, runtime)
