"""`homelab world rebuild`: fold the whole event log again into world documents.

Takes the observer's lock (so it refuses to run beside a live observer),
folds every event from the start, writes documents whose bytes changed,
removes documents the log does not explain, and writes a fresh checkpoint.
"""

from __future__ import annotations

import time

import click

from reconciler.cli.common import get_root, root_option
from reconciler.observer.world_builder import WorldBuilder


@click.group()
def world() -> None:
    """Maintain the observed world (ROOT/world).

    \b
    Example:
      homelab world rebuild --root /opt/homelab
    """


@world.command("rebuild")
@root_option
def rebuild(root: str | None) -> None:
    """Rebuild every world document from the event log.

    \b
    Example:
      homelab world rebuild --root /opt/homelab
    """
    runtime = get_root(root)
    folder = WorldBuilder(runtime)
    folder.lock()
    try:
        t0 = time.perf_counter()
        result = folder.rebuild()
        took = time.perf_counter() - t0
    finally:
        folder.unlock()
    click.echo(
        f"rebuilt {len(folder.state.docs)} world documents from {result.events} events "
        f"({result.written} written, {result.bad_lines} corrupt lines quarantined) in {took:.2f} s"
    )
