"""`homelab health SERVICE`: exit 0 only while that service runs; the containers' healthcheck.

Reads `ROOT/state/services/SERVICE.json`, which `homelab run SERVICE` keeps
current (reconciler/cli/service_report.py), and judges it with
`reconciler.service_health.judge`: a service in backoff after a failure,
given up, or whose heartbeat is older than `--max-age` makes it exit 1 with
one line saying why, so Docker marks the container unhealthy. `--url` also
requires an HTTP 200 from that address (the UI's /healthz). Used by every
healthcheck in compose.yaml; registered in reconciler/cli/main.py.
"""

from __future__ import annotations

import time
import urllib.request

import click

from reconciler.cli.common import get_root, root_option
from reconciler.cli.run import SERVICES
from reconciler.service_health import STALE_AFTER_SECONDS, judge, read_status, status_path


@click.command()
@click.argument(
    "service",
    type=click.Choice(sorted(SERVICES)),  # every service `homelab run` knows
)
@root_option
@click.option(
    "--max-age",
    type=float,
    default=STALE_AFTER_SECONDS,
    show_default=True,
    metavar="SECONDS",
    help="Oldest heartbeat still taken as a running service.",
)
@click.option("--url", default=None, metavar="URL", help="Also require HTTP 200 from this URL.")
def health(service: str, root: str | None, max_age: float, url: str | None) -> None:
    """Exit 0 when SERVICE is running (its health document is current), else 1.

    \b
    Example:
      homelab health observer --root /opt/homelab
      homelab health ui --url http://127.0.0.1:8080/healthz
    """
    runtime = get_root(root)
    doc = read_status(runtime, service)
    if doc is None:
        where = status_path(runtime, service)
        click.echo(f"{service}: no health document at {where} (is it running?)", err=True)
        raise SystemExit(1)
    healthy, why = judge(doc, time.time(), stale_after=max_age)
    if not healthy:
        click.echo(f"{service}: {why}", err=True)
        raise SystemExit(1)
    if url is not None:
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with direct.open(url, timeout=4) as response:
                ok = response.status == 200
        except OSError as exc:
            click.echo(f"{service}: {url} does not answer ({exc})", err=True)
            raise SystemExit(1) from None
        if not ok:
            click.echo(f"{service}: {url} answered {response.status}", err=True)
            raise SystemExit(1)
    click.echo(f"{service}: {why}")
