"""`homelab world rebuild [--from-scratch]`: fold the event log again into world documents.

Takes the observer's lock (so it refuses to run beside a live observer).
By default it starts from the newest snapshot under `ROOT/state/snapshots/`
that checks out and still matches the log and replays only the events after
it (a corrupt or mismatched one is set aside and the next older one used);
`--from-scratch` ignores the snapshots and folds every retained event from
the start, then writes a fresh snapshot and drops the older ones (they were
folded by the code under suspicion). Both write the documents whose bytes
changed, remove documents the log does not explain, write a fresh
checkpoint, and print what they did.
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
@click.option(
    "--from-scratch",
    is_flag=True,
    help="Ignore the snapshots and replay every retained event (when a fold bug is "
    "suspected); then write a fresh snapshot and drop the older ones.",
)
def rebuild(root: str | None, from_scratch: bool) -> None:
    """Rebuild every world document from the newest snapshot and the log after it.

    \b
    Examples:
      homelab world rebuild --root /opt/homelab
      homelab world rebuild --from-scratch --root /opt/homelab
    """
    runtime = get_root(root)
    folder = WorldBuilder(runtime)
    folder.lock()
    try:
        t0 = time.perf_counter()
        if from_scratch:
            result = folder.rebuild()
            took = time.perf_counter() - t0
            how = f"from {result.events} events, the whole log (--from-scratch: snapshots ignored)"
            folder.snapshot(wait=True)
            dropped = folder.snapshots.prune(keep=1)
        else:
            recovery = folder.recover()
            result = recovery.result
            took = time.perf_counter() - t0
            how = recovery.describe()
            dropped = []
    finally:
        folder.unlock()
    click.echo(
        f"rebuilt {len(folder.state.docs)} world documents {how} "
        f"({result.written} written, {result.bad_lines} corrupt lines quarantined) in {took:.2f} s"
    )
    if from_scratch:
        if folder.last_snapshot is not None:
            meta, size, _, write = folder.last_snapshot
            click.echo(
                f"wrote snapshot {meta.name} ({size / 1e6:.1f} MB in {write:.2f} s); "
                f"dropped {len(dropped)} older snapshots"
            )
        else:
            click.echo(f"could not write a snapshot: {folder.snapshot_error}")
