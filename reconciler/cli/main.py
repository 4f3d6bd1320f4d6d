"""The `homelab` command: the root group and the list of subcommands.

Each subcommand lives in its own module of `reconciler.cli` and is listed
in `COMMANDS`, imported only when used (see `LazyGroup`). Called by the
console script (`homelab = reconciler.cli.main:main`).
"""

from __future__ import annotations

import os

import click

from reconciler import __version__
from reconciler.cli.common import HomelabRootGroup

COMMANDS = {
    "validate": "reconciler.cli.validate:validate",
    "plan": "reconciler.cli.plan:plan",
    "schema": "reconciler.cli.schema:schema",
    "run": "reconciler.cli.run:run",
    "events": "reconciler.cli.events:events",
    "get": "reconciler.cli.get:get",
    "world": "reconciler.cli.world:world",
    "actions": "reconciler.cli.actions:actions",
    "up": "reconciler.cli.up:up",
    "tokens": "reconciler.cli.tokens:tokens",
    "health": "reconciler.cli.health:health",
    "notify": "reconciler.cli.notify:notify",
    "source": "reconciler.cli.source:source",
    "import": "reconciler.cli.importing:import_",
}


@click.group(
    cls=HomelabRootGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="homelab")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """GitOps control plane for a homelab: commit YAML, review a plan, approve it.

    \b
    Examples:
      homelab validate --repo ~/homelab
      homelab plan --repo ~/homelab --root /opt/homelab
    """
    ctx.meta["homelab.debug"] = debug
    # The runtime tree is private (reconciler/runtime_root.py): whatever a command
    # creates there, a mkdir deep in a service included, is for this user only.
    os.umask(0o077)


def main() -> None:
    cli(prog_name="homelab")
