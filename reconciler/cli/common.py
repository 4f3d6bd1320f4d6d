"""Shared CLI plumbing: the root group, common options and error reporting.

Every command takes `--repo` and `--root` (see `reconciler.runtime_root` for the
defaults), prints errors to stderr with a non-zero exit and never a
traceback unless `--debug` was given. `--repo` may name a remote by URL
(`reconciler.sources.remote`; `--branch`, default the remote's HEAD): `get_repo`
then answers the path of the control plane's mirror under `ROOT/git/`,
fetching it first when it has no commit yet (`homelab plan` and `validate`
fetch every time), and `get_remote()` the `Remote` itself. Used by every module in
`reconciler.cli`.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.errors import ConfigError, HomelabError
from reconciler.runtime_root import RuntimeRoot, resolve_repo, resolve_root
from reconciler.sources.follow import DEFAULT_POLL, Follower, FollowSettings
from reconciler.sources.remote import Remote, is_remote

F = TypeVar("F", bound=Callable[..., Any])


class HomelabGroup(click.Group):
    """Turns known errors into one line on stderr and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HomelabError as exc:
            if ctx.meta.get("homelab.debug"):
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:
            # The reader went away (`homelab actions show ID | head`): what it wanted
            # it has. Nothing more may reach the closed pipe, not even at exit's flush.
            quiet_stdout()
            ctx.exit(0)
        except Exception as exc:
            if ctx.meta.get("homelab.debug"):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {exc} (rerun with --debug)", err=True
            )
            ctx.exit(1)


def quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush meets no closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # stdout is not a real file (tests capture it): nothing to flush into a pipe
    finally:
        os.close(devnull)


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when used.

    `lazy` maps a command name to "module:attribute". Importing every command
    (Docker SDK, Litestar, ...) would cost every `homelab` call a second.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attr = self.lazy[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


class HomelabRootGroup(HomelabGroup, LazyGroup):
    """The root `homelab` group: lazy subcommands and error reporting."""


def _remember(key: str) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> Any:
        ctx.meta[f"homelab.{key}"] = value
        return value

    return callback


def repo_option(f: F) -> F:
    f = click.option(
        "--branch",
        "branch",
        metavar="NAME",
        default=None,
        expose_value=False,
        callback=_remember("branch"),
        help="Branch of a remote --repo to follow (default: $HOMELAB_BRANCH, else the "
        "remote's HEAD).",
    )(f)
    return click.option(
        "--repo",
        "repo",
        metavar="PATH|URL",
        default=None,
        help="Git repository with the manifests: a folder, or a URL (https://, ssh://, "
        "git@host:path, git://, file://) followed through a mirror under ROOT/git "
        "(default: $HOMELAB_REPO, else the current folder).",
    )(f)


def root_option(f: F) -> F:
    return click.option(
        "--root",
        "root",
        metavar="DIR",
        default=None,
        callback=_remember("root"),
        help="Runtime root (default: $HOMELAB_ROOT, else /opt/homelab when writable, "
        "else ~/.local/state/homelab).",
    )(f)


def engine_watch_options(f: F) -> F:
    """`--repo` (its Nodes name the engines) and `--resync`, for the observer and the collector."""
    f = click.option(
        "--resync",
        type=float,
        default=30.0,
        show_default=True,
        help="Seconds between full re-lists of each engine.",
    )(f)
    return click.option(
        "--repo",
        metavar="PATH|URL",
        default=None,
        help="Repository (a folder, or a URL read through its mirror under ROOT/git) whose "
        "Node manifests (at its tip) name the engines to watch; "
        "without it, the node `local` at $DOCKER_HOST.",
    )(f)


def follow_options(f: F) -> F:
    """`--poll`, `--fetch-timeout`, `--trust-new-host-key` for a service that follows a remote."""
    f = click.option(
        "--trust-new-host-key",
        is_flag=True,
        default=None,
        expose_value=False,
        callback=_remember("trust"),
        help="Pin an SSH host key not yet in ROOT/git/known_hosts on first use "
        "(default: refuse it; $HOMELAB_GIT_TRUST_NEW_HOST_KEY=1).",
    )(f)
    f = click.option(
        "--fetch-timeout",
        type=click.FloatRange(min=1.0),
        default=None,
        expose_value=False,
        callback=_remember("fetch_timeout"),
        help="Seconds one fetch of a remote --repo may take (default: $HOMELAB_FETCH_TIMEOUT, "
        "else 60).",
    )(f)
    return click.option(
        "--poll",
        type=click.FloatRange(min=0.5),
        default=None,
        expose_value=False,
        callback=_remember("poll"),
        help=f"Seconds between fetches of a remote --repo, ±10 % jitter (default: "
        f"$HOMELAB_POLL, else {DEFAULT_POLL:g}).",
    )(f)


def _meta(key: str) -> Any:
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(f"homelab.{key}") if ctx is not None else None


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"${name}={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise ConfigError(f"${name} must be positive, not {raw}")
    return value


def follow_settings() -> FollowSettings:
    """The follower's settings from the flags, else the environment (the Compose stack)."""
    poll = _meta("poll") or _env_float("HOMELAB_POLL", DEFAULT_POLL)
    timeout = _meta("fetch_timeout") or _env_float("HOMELAB_FETCH_TIMEOUT", 60.0)
    return FollowSettings(poll=poll, timeout=timeout)


def get_remote() -> Remote | None:
    """The remote that the last `get_repo` call of this command resolved, if any."""
    remote: Remote | None = _meta("remote")
    return remote


def get_repo(flag: str | None, *, fetch: str = "missing", root: RuntimeRoot | None = None) -> Path:
    """The repository folder: a local one, or the mirror of a remote `--repo URL`.

    `fetch` for a remote: "missing" fetches only when the mirror has no commit
    yet (a service start; the supervisor's follower keeps it current),
    "always" fetches now (`plan`, `validate`: the answer is about the remote
    as it is); a failure then leaves the last fetched commit in force and is
    reported, or raised when there is no commit at all.
    """
    chosen = flag or os.environ.get("HOMELAB_REPO") or ""
    if not is_remote(chosen):
        return resolve_repo(flag)
    runtime = (root or resolve_root(_meta("root"))).ensure()
    trust = _meta("trust") or os.environ.get("HOMELAB_GIT_TRUST_NEW_HOST_KEY") == "1"
    branch = _meta("branch") or os.environ.get("HOMELAB_BRANCH") or None
    remote = Remote(chosen, runtime, branch, trust_new_host_key=trust)
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta["homelab.remote"] = remote
    if fetch == "always" or remote.tip() is None:
        follower = Follower(remote, runtime, follow_settings(), emit=_cli_events(runtime))
        if not follower.fetch_once("cli") and fetch == "always":
            error = follower.status.get("error")
            if remote.tip() is None:
                raise ConfigError(f"cannot fetch {remote.shown_url}: {error}")
            click.echo(
                f"warning: SourceReady=False: {error}; using the last fetched commit "
                f"{(remote.tip() or '')[:12]}",
                err=True,
            )
    return remote.mirror


def optional_repo(flag: str | None) -> Path | None:
    """For services whose `--repo` is optional: None, a folder, or a remote's mirror."""
    if not flag:
        return None
    if is_remote(flag):
        return get_repo(flag)
    return Path(flag).expanduser().absolute()


def _cli_events(root: RuntimeRoot) -> Callable[[str, dict[str, Any]], None]:
    """Record the follower's events of a command-line fetch as producer `cli-source`.

    Two commands fetching at once (services starting together) take turns on
    the producer's lock, which each holds only for one append.
    """

    def emit(type: str, data: dict[str, Any]) -> None:
        import time

        from reconciler.events.log import EventLog

        for attempt in range(100):
            log = EventLog(root, "cli-source")
            try:
                log.append(type, None, data, sync=True)
                return
            except ConfigError:  # another command holds the producer: wait for its turn
                if attempt == 99:
                    raise
                time.sleep(0.05)
            finally:
                log.close()

    return emit


def get_root(flag: str | None) -> RuntimeRoot:
    return resolve_root(flag)


def cache_dir(root: RuntimeRoot) -> Path | None:
    """The manifest cache folder, when the root exists and is writable."""
    if root.path.is_dir() and os.access(root.path, os.W_OK):
        root.cache.mkdir(exist_ok=True)
        return root.cache
    return None


def use_colour() -> bool:
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")
