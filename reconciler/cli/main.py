"""The `homelab` command: the root group and the list of subcommands.

Each subcommand lives in its own module of `reconciler.cli` and is
registered here. Called by the console script (`homelab = reconciler.cli.main:main`).
"""

from __future__ import annotations

import click

from reconciler import __version__
from reconciler.cli.common import HomelabGroup


@click.group(cls=HomelabGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


def _register() -> None:
    from reconciler.cli import plan, run, schema, validate

    cli.add_command(validate.validate)
    cli.add_command(plan.plan)
    cli.add_command(schema.schema)
    cli.add_command(run.run)
    from reconciler.cli import events, get, run_observer, world  # noqa: F401 - run_observer registers

    cli.add_command(events.events)
    cli.add_command(get.get)
    cli.add_command(world.world)
    from reconciler.cli import actions, run_supervisor  # noqa: F401 - run_supervisor registers

    cli.add_command(actions.actions)
    from reconciler.cli import up

    cli.add_command(up.up)
    # Each service module adds its `homelab run <service>` subcommand on import.
    from reconciler.cli import run_executor, run_ui  # noqa: F401 - each registers itself


_register()


def main() -> None:
    cli(prog_name="homelab")
