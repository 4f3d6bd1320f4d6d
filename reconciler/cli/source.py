"""`homelab source`: the followed remote's status, and asking for a fetch now.

`status` prints `ROOT/state/source/status.json` (written by the follower in
the supervisor, `reconciler.sources.follow`): URL without credentials,
branch, commit in force, SourceReady and the redacted error, the last
rewritten history. `fetch` asks the running follower to fetch at once
(`request_fetch`, the same call as the webhook) and, with `--wait`, waits
for the fetch to be reported.
"""

from __future__ import annotations

import time

import click
import orjson

from reconciler.cli.common import get_root, root_option
from reconciler.errors import ConfigError
from reconciler.sources.fetch_signal import request_fetch
from reconciler.sources.follow import read_status


@click.group()
def source() -> None:
    """The remote repository the control plane follows (`--repo URL`).

    \b
    Examples:
      homelab source status
      homelab source fetch --wait 30
    """


@source.command("status")
@root_option
@click.option("--json", "as_json", is_flag=True, help="Print the status document.")
def status(root: str | None, as_json: bool) -> None:
    """Show the followed remote: commit, last fetch, SourceReady and its reason.

    \b
    Example:
      homelab source status --root /opt/homelab
    """
    doc = read_status(get_root(root))
    if doc is None:
        raise ConfigError("no remote is followed here (the repository is a local folder)")
    if as_json:
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
        return
    ready = "True" if doc.get("ready") else f"False: {doc.get('error')}"
    click.echo(f"url:          {doc.get('url')}")
    click.echo(f"branch:       {doc.get('branch') or '(remote HEAD, not fetched yet)'}")
    click.echo(f"commit:       {doc.get('commit') or 'none'}")
    click.echo(f"last fetch:   {doc.get('lastFetchAt')} ({doc.get('lastFetchSeconds')} s)")
    click.echo(f"last success: {doc.get('lastSuccessAt') or 'never'}")
    click.echo(f"SourceReady:  {ready}")
    forced = doc.get("lastForcePush")
    if isinstance(forced, dict):
        click.echo(f"rewritten:    {forced.get('from')} -> {forced.get('to')} (force push)")


@source.command("fetch")
@root_option
@click.option("--wait", "wait", type=float, default=0.0, help="Seconds to wait for the fetch.")
def fetch(root: str | None, wait: float) -> None:
    """Ask the follower to fetch now (what the webhook does).

    \b
    Example:
      homelab source fetch --wait 30
    """
    runtime = get_root(root)
    before = (read_status(runtime) or {}).get("lastFetchTs")
    request_fetch(runtime, "homelab source fetch")
    if wait <= 0:
        click.echo("fetch requested")
        return
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        doc = read_status(runtime) or {}
        if doc.get("lastFetchTs") != before:
            if doc.get("ready"):
                click.echo(f"fetched {doc.get('commit')}")
                return
            raise ConfigError(f"fetch failed: {doc.get('error')}")
        time.sleep(0.1)
    raise ConfigError(f"no fetch reported within {wait:g}s (is the supervisor running?)")
