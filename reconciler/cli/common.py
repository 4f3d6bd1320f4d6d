"""Shared CLI plumbing: the root group, common options and error reporting.

Every command takes `--repo` and `--root` (see `reconciler.runtime_root` for the
defaults), prints errors to stderr with a non-zero exit and never a
traceback unless `--debug` was given. Used by every module in
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

from reconciler.errors import HomelabError
from reconciler.runtime_root import RuntimeRoot, resolve_repo, resolve_root

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


def repo_option(f: F) -> F:
    return click.option(
        "--repo",
        "repo",
        metavar="PATH",
        default=None,
        help="Git repository with the manifests (default: $HOMELAB_REPO, else the current folder).",
    )(f)


def root_option(f: F) -> F:
    return click.option(
        "--root",
        "root",
        metavar="DIR",
        default=None,
        help="Runtime root (default: $HOMELAB_ROOT, else /opt/homelab when writable, "
        "else ~/.local/state/homelab).",
    )(f)


def get_repo(flag: str | None) -> Path:
    return resolve_repo(flag)


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
