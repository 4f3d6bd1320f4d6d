"""`homelab up`: the whole product in one process, for a first look or a small homelab.

Runs the five services (observer, supervisor, executor, UI, notifier) in threads through
`reconciler.cli.supervise.supervise`, so one failing loop is restarted with
backoff and reported (log, `state/services/<name>.json`, a `service.failed`
event, the UI's `/readyz` and `/summary`), never taking the others down;
Ctrl-C or SIGTERM stops them all. It exits 0 only when stopped while every
service ran, 1 when stopped while one was failing and 3 when one failed
more often than `--max-failures` within `--failure-window`. Without
`--repo` it creates and commits an example repository under the runtime
root (reconciler/cli/example.py). It prints the UI address and the login
token in a box (the token only on the start that creates it; later starts
say where it is kept; reconciler/cli/up_output.py) and how to change the
desired state, and keeps log lines short. A service whose code is not
installed is named as missing, never pretended. The soft descriptor limit is
raised to the hard one and the UI's connections capped below it
(`reconciler.api.limits`), so a flood on the UI leaves the other services
descriptors to work with. Registered in
reconciler/cli/main.py; `make run` calls it.
"""

from __future__ import annotations

import os
import threading
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from reconciler.cli.common import (
    follow_options,
    follow_settings,
    get_remote,
    get_repo,
    get_root,
    root_option,
)
from reconciler.cli.example import DEFAULT_DOCKER_HOST, create_example_repo
from reconciler.cli.service_runner import Bound, Service, ServiceRunner
from reconciler.cli.supervise import bound_options, supervise
from reconciler.cli.up_output import login_box, login_lines, short_logging
from reconciler.errors import ConfigError
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.follow import FollowSettings
from reconciler.sources.remote import Remote, is_remote
from reconciler.sources.signatures import ENV_REQUIRE

SERVICE_ORDER = ("observer", "supervisor", "executor", "ui", "notifier")


@dataclass(frozen=True)
class UpConfig:
    root: RuntimeRoot
    repo: Path
    host: str
    port: int
    docker_host: str
    remote: Remote | None = None
    follow: FollowSettings | None = None
    base_path: str = ""  # the UI under a sub-path, e.g. "/homelab" (reconciler.api.error_pages)


Factory = Callable[[UpConfig], Service]


def _observer(cfg: UpConfig) -> Service:
    from reconciler.observer.service import ObserverService

    return ObserverService(cfg.root, cfg.repo)


def _supervisor(cfg: UpConfig) -> Service:
    from reconciler.supervisor.service import Supervisor

    return Supervisor(cfg.repo, cfg.root, remote=cfg.remote, follow=cfg.follow)


def _executor(cfg: UpConfig) -> Service:
    from reconciler.executor.service import Executor

    return Executor(cfg.root, cfg.repo)


def _ui(cfg: UpConfig) -> Service:
    from reconciler.api.config import UISettings
    from reconciler.api.server import UIService

    return UIService(
        UISettings(
            root=cfg.root, repo=cfg.repo, host=cfg.host, port=cfg.port, base_path=cfg.base_path
        )
    )


def _notifier(cfg: UpConfig) -> Service:
    from reconciler.notifier.service import NotifierService, NotifierSettings

    ui_url = os.environ.get("HOMELAB_UI_URL") or f"http://{cfg.host}:{cfg.port}{cfg.base_path}"
    return NotifierService(cfg.root, cfg.repo, None, NotifierSettings(ui_url=ui_url.rstrip("/")))


FACTORIES: dict[str, Factory] = {
    "observer": _observer,
    "supervisor": _supervisor,
    "executor": _executor,
    "ui": _ui,
    "notifier": _notifier,
}


def build_services(cfg: UpConfig) -> tuple[list[Service], dict[str, str]]:
    """Every service that is installed, and why each missing one is missing."""
    services: list[Service] = []
    missing: dict[str, str] = {}
    for name in SERVICE_ORDER:
        try:
            services.append(FACTORIES[name](cfg))
        except (ImportError, AttributeError) as exc:
            missing[name] = f"{type(exc).__name__}: {exc}"
    return services, missing


def docker_reachable(host: str) -> str | None:
    """None when the engine answers a ping, else why not (one line)."""
    try:
        import docker

        client = docker.DockerClient(base_url=host, timeout=3)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        text = " ".join(str(exc).split())
        return text[:160] or type(exc).__name__
    return None


def _wait_for_ui(url: str, stop: threading.Event, timeout: float = 20.0) -> bool:
    """True once GET {url}healthz answers 200 (or False after `timeout` or on stop)."""
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(int(timeout / 0.2)):
        try:
            with direct.open(f"{url}healthz", timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        if stop.wait(0.2):
            return False
    return False


def _prepare(repo_flag: str | None, root_flag: str | None, docker_host: str) -> UpConfig:
    root = get_root(root_flag).ensure()
    chosen = repo_flag or os.environ.get("HOMELAB_REPO")
    if chosen and is_remote(chosen):
        repo = get_repo(chosen, root=root)  # a first fetch when the mirror has none
        remote = get_remote()
        return UpConfig(root, repo, "", 0, docker_host, remote, follow_settings())
    if repo_flag:
        repo = get_repo(repo_flag)
        if not (repo / ".git").exists():
            raise ConfigError(f"{repo} is not a git repository (git init, then commit manifests)")
        return UpConfig(root, repo, "", 0, docker_host)
    repo, created = create_example_repo(root, docker_host)
    click.echo(f"{'Created' if created else 'Using'} the example repository {repo}")
    click.echo(
        f"  change it:  cd {repo} && $EDITOR manifests/apps/web.yaml && git commit -am 'my change'"
    )
    return UpConfig(root, repo, "", 0, docker_host)


@click.command()
@click.option(
    "--repo",
    "repo",
    metavar="PATH|URL",
    default=None,
    help="Git repository with the manifests, a folder or a URL followed through a mirror "
    "under ROOT/git (default: an example one under the runtime root).",
)
@click.option(
    "--branch",
    default=None,
    expose_value=False,
    callback=lambda ctx, _p, v: ctx.meta.__setitem__("homelab.branch", v),
    help="Branch of a remote --repo (default: the remote's HEAD).",
)
@root_option
@follow_options
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the UI listens on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--base-path",
    default="",
    metavar="/PREFIX",
    help="Serve the UI under this sub-path, e.g. /homelab (directly, or behind a proxy "
    "that keeps or strips it).",
)
@click.option(
    "--require-signed-commits",
    "require_signed",
    is_flag=True,
    help="Plan and apply only commits signed by a key under ROOT/signing/ "
    f"(the same as ${ENV_REQUIRE}=1).",
)
@bound_options
def up(
    repo: str | None,
    root: str | None,
    host: str,
    port: int,
    base_path: str,
    require_signed: bool,
    max_failures: int,
    failure_window: float,
) -> None:
    """Run observer, supervisor, executor, UI and notifier in one process (Ctrl-C stops).

    \b
    Examples:
      homelab up                                # example repository, per-user state
      homelab up --repo ~/homelab --root /opt/homelab --port 8080
      homelab up --repo https://git.lan/me/homelab.git --branch main --poll 60
      homelab up --base-path /homelab          # the UI at http://127.0.0.1:8080/homelab/
    """
    prefix = base_path.rstrip("/")
    if prefix and (not prefix.startswith("/") or "//" in prefix):
        raise ConfigError(f"--base-path {base_path!r}: start it with '/', e.g. /homelab")
    if require_signed:
        os.environ[ENV_REQUIRE] = "1"  # read by every service's SignedCommitGate
    short_logging()
    docker_host = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    base = _prepare(repo, root, docker_host)
    cfg = UpConfig(base.root, base.repo, host, port, docker_host, base.remote, base.follow, prefix)
    shown = cfg.repo if cfg.remote is None else f"{cfg.remote.shown_url} (mirror {cfg.repo})"
    click.echo(f"Runtime root {cfg.root.path}  ·  repository {shown}")
    why = docker_reachable(docker_host)
    if why:
        click.echo(
            f"No Docker engine at {docker_host} ({why}): Docker-backed resources will show "
            "NodeNotReady; File resources still apply. Set DOCKER_HOST to use another engine."
        )
    services, missing = build_services(cfg)
    for name, reason in missing.items():
        click.echo(f"Not installed yet: the {name} service ({reason})", err=True)
    if not services:
        raise ConfigError("no service is installed; nothing to run")
    token, created = None, False
    if "ui" not in missing:
        from reconciler.api.limits import (
            RESERVED_DESCRIPTORS,
            connection_cap,
            raise_descriptor_limit,
        )
        from reconciler.api.sessions import load_or_create_token

        soft, _ = raise_descriptor_limit()
        click.echo(
            f"Descriptors: {soft}; the UI holds at most {connection_cap()} connections, "
            f"{RESERVED_DESCRIPTORS} stay for the other services"
        )
        token, created = load_or_create_token(cfg.root)

    def _started(runner: ServiceRunner) -> None:
        click.echo(f"Running: {', '.join(s.name for s in runner.services)}  (Ctrl-C stops)")
        if token is not None:
            url = f"http://{cfg.host}:{cfg.port}{cfg.base_path}/"
            answering = _wait_for_ui(url, runner.stop_event)
            where = str(cfg.root.state / "ui_token")
            # The token is shown once, when created: terminals and their logs keep it.
            lines = login_lines(url, answering, token if created else None, where)
            click.echo(login_box(lines))

    supervise(services, cfg.root, Bound(max_failures, failure_window), started=_started)
