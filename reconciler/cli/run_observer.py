"""`homelab run observer`: the observer service in the foreground.

Registers itself on the `run` group (`reconciler.cli.run`) when imported
by `reconciler.cli.main`.
"""

from __future__ import annotations

import logging
import shlex

import click

from reconciler.cli.common import engine_watch_options, get_root, optional_repo, root_option
from reconciler.cli.run import run, run_service
from reconciler.observer.recovery import SnapshotPolicy
from reconciler.observer.service import ObserverService, ObserverSettings


@run.command("observer")
@root_option
@engine_watch_options
@click.option(
    "--docker/--no-docker",
    default=True,
    show_default=True,
    envvar="HOMELAB_OBSERVE_DOCKER",
    help="Watch the nodes' Docker engines (off where the observer has no socket).",
)
@click.option(
    "--compose-command",
    default=None,
    envvar="HOMELAB_COMPOSE_COMMAND",
    help="Compose CLI the stack observation computes config hashes with, the executor's "
    "(default: what is installed).",
)
@click.option(
    "--compress-after-days",
    type=click.IntRange(min=0),
    default=None,
    envvar="HOMELAB_COMPRESS_AFTER_DAYS",
    help="Compress closed event-log days older than this (default: homelab.yaml's "
    "eventLog.compressAfterDays, else 90).",
)
@click.option(
    "--compaction/--no-compaction",
    default=True,
    show_default=True,
    help="Compress (and, past homelab.yaml's bounds, delete) old event-log days.",
)
@click.option(
    "--snapshot-events",
    type=click.IntRange(min=1),
    default=SnapshotPolicy.every_events,
    show_default=True,
    envvar="HOMELAB_SNAPSHOT_EVENTS",
    help="Snapshot the folded world after this many new events (recovery replays at most "
    "about this many).",
)
@click.option(
    "--snapshot-minutes",
    type=click.FloatRange(min=0.1),
    default=SnapshotPolicy.every_seconds / 60,
    show_default=True,
    envvar="HOMELAB_SNAPSHOT_MINUTES",
    help="Snapshot also after this many minutes, when any event arrived meanwhile.",
)
@click.option(
    "--snapshot-keep",
    type=click.IntRange(min=1),
    default=SnapshotPolicy.keep,
    show_default=True,
    envvar="HOMELAB_SNAPSHOT_KEEP",
    help="Snapshots kept under ROOT/state/snapshots/ (the newest that checks out is used).",
)
def observer(
    root: str | None,
    repo: str | None,
    resync: float,
    docker: bool,
    compose_command: str | None,
    compress_after_days: int | None,
    compaction: bool,
    snapshot_events: int,
    snapshot_minutes: float,
    snapshot_keep: int,
) -> None:
    """Fold events into world documents and run the collectors.

    \b
    Examples:
      homelab run observer --root /opt/homelab
      homelab run observer --root /opt/homelab --repo /srv/homelab-config
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    runtime = get_root(root)
    runtime.path.mkdir(parents=True, exist_ok=True)
    repo_path = optional_repo(repo)
    command = tuple(shlex.split(compose_command)) if compose_command else None
    policy = SnapshotPolicy(snapshot_events, snapshot_minutes * 60, snapshot_keep)
    settings = ObserverSettings(
        resync=resync,
        docker=docker,
        compose_command=command,
        compaction=compaction,
        compress_after_days=compress_after_days,
        snapshots=policy,
    )
    run_service(ObserverService(runtime, repo_path, settings), runtime)
