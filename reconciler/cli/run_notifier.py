"""`homelab run notifier`: the notifier service in the foreground.

Registers its subcommand on the `run` group when imported (see
`reconciler.cli.main._register`). The timing flags exist for tests and
slow receivers; the defaults suit a homelab.
"""

from __future__ import annotations

import logging
import os

import click

from reconciler.cli.common import get_repo, get_root, repo_option, root_option
from reconciler.cli.run import run, run_service
from reconciler.errors import ConfigError
from reconciler.notifier.delivery import DeliverySettings
from reconciler.notifier.service import NotifierService, NotifierSettings

DEFAULT_UI_URL = "http://127.0.0.1:8080"


def default_ui_url() -> str:
    """Where the UI listens when no URL is given: $HOMELAB_UI_HOST:$HOMELAB_UI_PORT."""
    host = os.environ.get("HOMELAB_UI_HOST") or "127.0.0.1"
    port = os.environ.get("HOMELAB_UI_PORT") or "8080"
    return f"http://{host}:{port}"


def check_ui_url(url: str | None) -> str:
    url = url or default_ui_url()
    if not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"--ui-url {url!r}: give the UI's address, e.g. https://homelab.example.org"
        )
    return url.rstrip("/")


@run.command("notifier")
@repo_option
@root_option
@click.option(
    "--ref", default=None, help="Branch whose homelab.yaml names the targets (default: HEAD)."
)
@click.option(
    "--ui-url",
    default=None,
    envvar="HOMELAB_UI_URL",
    help="The UI's address as readers reach it (behind a proxy: the proxy's URL and path); "
    "messages link to its pages. Default: http://$HOMELAB_UI_HOST:$HOMELAB_UI_PORT, "
    f"else {DEFAULT_UI_URL}.",
)
@click.option(
    "--quiet",
    type=click.FloatRange(0.0),
    default=2.0,
    show_default=True,
    help="Seconds without news that end a burst (one message per burst).",
)
@click.option(
    "--max-wait",
    type=click.FloatRange(0.0),
    default=5.0,
    show_default=True,
    help="Longest a burst is held before it is told.",
)
@click.option(
    "--attempts",
    type=click.IntRange(1, 20),
    default=4,
    show_default=True,
    help="Tries per message and target.",
)
@click.option(
    "--backoff",
    type=click.FloatRange(0.0),
    default=1.0,
    show_default=True,
    help="Seconds before the second try; doubled for each later one (at most 30).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1),
    default=10.0,
    show_default=True,
    help="Seconds a target may take to answer one try.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every message told.")
def notifier(
    repo: str | None,
    root: str | None,
    ref: str | None,
    ui_url: str | None,
    quiet: float,
    max_wait: float,
    attempts: int,
    backoff: float,
    timeout: float,
    verbose: bool,
) -> None:
    """Tell the targets of homelab.yaml `notifications` about pending actions and failures.

    \b
    Example:
      homelab run notifier --repo ~/homelab --root /opt/homelab --ui-url https://homelab.example.org
    """
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
    )
    delivery = DeliverySettings(
        attempts=attempts, backoff=backoff, read_timeout=timeout, connect_timeout=min(4.0, timeout)
    )
    settings = NotifierSettings(
        ui_url=check_ui_url(ui_url), quiet=quiet, max_wait=max_wait, delivery=delivery
    )
    service = NotifierService(get_root(root), get_repo(repo), ref, settings)
    click.echo(f"notifier: following {service.root.events} -> targets of homelab.yaml", err=True)
    run_service(service, service.root)
