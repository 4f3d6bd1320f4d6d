"""`homelab run ui`: the operator UI and HTTP API (Litestar on uvicorn).

Adds the `ui` subcommand to the `run` group; the service itself is
`reconciler.api.server.UIService`.
"""

from __future__ import annotations

import click

from reconciler.api.config import UISettings
from reconciler.api.limits import raise_descriptor_limit
from reconciler.api.server import UIService
from reconciler.cli.common import get_root, optional_repo, repo_option, root_option
from reconciler.cli.run import run, run_service
from reconciler.errors import ConfigError


@run.command("ui")
@repo_option
@root_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--auth",
    "auth_mode",
    type=click.Choice(["token", "proxy"]),
    default="token",
    show_default=True,
    help="token: log in with the operator token. proxy: also trust the identity header "
    "of --trusted-proxy addresses (Tailscale Serve, a reverse proxy).",
)
@click.option(
    "--trusted-proxy",
    "trusted_proxies",
    multiple=True,
    metavar="CIDR",
    help="Address or network of the proxy allowed to set the identity header (repeatable).",
)
@click.option(
    "--identity-header",
    default="Tailscale-User-Login",
    show_default=True,
    help="Header carrying the operator's identity in proxy mode.",
)
@click.option(
    "--base-path",
    default="",
    metavar="/PREFIX",
    help="Sub-path the UI is served under, e.g. /homelab: directly, or behind a reverse "
    "proxy that keeps or strips it.",
)
@click.option(
    "--secure-cookies/--no-secure-cookies",
    default=None,
    help="Mark the session cookie Secure (default: when the request came over TLS).",
)
@click.option(
    "--disk-warn-percent",
    default=5.0,
    show_default=True,
    type=click.FloatRange(0, 100),
    envvar="HOMELAB_DISK_WARN_PERCENT",
    help="DiskPressure when free space is below this share of the runtime root's filesystem "
    "(or below --disk-warn-bytes, whichever is smaller).",
)
@click.option(
    "--disk-warn-bytes",
    default=1 << 30,
    show_default=True,
    type=click.IntRange(0),
    envvar="HOMELAB_DISK_WARN_BYTES",
    help="DiskPressure when fewer bytes than this are free (or the share above, if smaller).",
)
def run_ui(
    repo: str | None,
    root: str | None,
    host: str,
    port: int,
    auth_mode: str,
    trusted_proxies: tuple[str, ...],
    identity_header: str,
    base_path: str,
    secure_cookies: bool | None,
    disk_warn_percent: float,
    disk_warn_bytes: int,
) -> None:
    """Serve the operator UI and HTTP API until SIGTERM/Ctrl-C.

    \b
    Example:
      homelab run ui --root /opt/homelab --host 0.0.0.0 --port 8080
      homelab run ui --auth proxy --trusted-proxy 172.18.0.2 --base-path /homelab
    """
    if auth_mode == "proxy" and not trusted_proxies:
        raise ConfigError("--auth proxy needs at least one --trusted-proxy address")
    base = base_path.rstrip("/")
    if base and not base.startswith("/"):
        raise ConfigError(f"--base-path {base_path!r}: start it with '/', e.g. /homelab")
    settings = UISettings(
        root=get_root(root),
        repo=optional_repo(repo),
        host=host,
        port=port,
        auth_mode="proxy" if auth_mode == "proxy" else "token",
        trusted_proxies=trusted_proxies,
        identity_header=identity_header,
        secure_cookies=secure_cookies,
        base_path=base,
        disk_warn_percent=disk_warn_percent,
        disk_warn_bytes=disk_warn_bytes,
    )
    raise_descriptor_limit()  # the connection cap is sized from the limit (api/limits.py)
    run_service(UIService(settings), settings.root)
