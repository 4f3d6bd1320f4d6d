"""`homelab events tail` and `homelab events compact`.

`tail` prints the last events of the log, optionally following it. It reads
`ROOT/events` through `reconciler.events.reader.LogReader` (so torn lines
are never printed half, and compressed days read like the others) and
filters by type (a glob like `action.*`) and by `KIND/NAME`; it never writes.
`compact` runs the observer's retention by hand
(reconciler/observer/compaction.py) and prints what it did.
"""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path
from typing import Any

import click
import orjson

from reconciler.cli.common import get_root, root_option
from reconciler.errors import ConfigError
from reconciler.events.reader import LogEvent, LogReader
from reconciler.observer.compaction import RetentionPolicy, compact, describe
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitSource


@click.group()
def events() -> None:
    """Read the event log (ROOT/events).

    \b
    Example:
      homelab events tail --follow --type 'action.*' --root /opt/homelab
    """


def _matches(ev: LogEvent, type_glob: str | None, ref: ResourceKey | None) -> bool:
    if type_glob and not fnmatch.fnmatchcase(ev.type, type_glob):
        return False
    return ref is None or (
        ev.ref is not None and ev.ref.kind.lower() == ref[0].lower() and ev.ref.name == ref[1]
    )


def _show(ev: LogEvent, as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(ev.to_dict()).decode())
        return
    ref = f"{ev.ref.kind}/{ev.ref.name}" if ev.ref else "-"
    data: Any = orjson.dumps(ev.data).decode()
    click.echo(f"{ev.ts}  {ev.source:<12} {ev.type:<20} {ref:<28} {data[:120]}")


def _new(reader: LogReader) -> list[LogEvent]:
    out = [ev for batch in reader.batches() for ev in batch.events]
    out.sort(key=lambda ev: ev.id)
    return out


@events.command("tail")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new events.")
@click.option("--type", "type_glob", metavar="T", help="Only this type (glob, e.g. 'action.*').")
@click.option("--ref", metavar="KIND/NAME", help="Only events about this resource.")
@click.option("-n", "--lines", type=int, default=20, show_default=True)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@root_option
def tail(
    follow: bool,
    type_glob: str | None,
    ref: str | None,
    lines: int,
    output: str,
    root: str | None,
) -> None:
    """Print the last events, oldest first.

    \b
    Examples:
      homelab events tail --type 'action.*' -n 50
      homelab events tail --follow --ref Container/web
    """
    pair = None
    if ref is not None:
        kind, sep, name = ref.partition("/")
        if not sep or not kind or not name:
            raise ConfigError(f"--ref {ref!r}: expected KIND/NAME, e.g. Container/web")
        pair = ResourceKey(kind, name)
    runtime: RuntimeRoot = get_root(root)
    reader = LogReader(runtime)
    shown = [ev for ev in _new(reader) if _matches(ev, type_glob, pair)]
    for ev in shown[-lines:] if lines > 0 else []:
        _show(ev, output == "json")
    while follow:
        time.sleep(0.2)
        for ev in _new(reader):
            if _matches(ev, type_glob, pair):
                _show(ev, output == "json")


@events.command("compact")
@click.option(
    "--older-than",
    type=click.IntRange(min=0),
    default=None,
    metavar="DAYS",
    help="Compress closed days older than this (default: homelab.yaml's "
    "eventLog.compressAfterDays, else 90). Today and yesterday are never touched.",
)
@click.option(
    "--delete-after",
    type=click.IntRange(min=1),
    default=None,
    metavar="DAYS",
    help="Delete days older than this except their action.* events (default: "
    "homelab.yaml's eventLog.deleteAfterDays, else never).",
)
@click.option(
    "--delete-audit-after",
    type=click.IntRange(min=1),
    default=None,
    metavar="DAYS",
    help="Delete days older than this whole, audit trail included (default: "
    "homelab.yaml's eventLog.deleteAuditAfterDays, else never).",
)
@click.option(
    "--repo",
    metavar="PATH",
    default=None,
    help="Repository whose homelab.yaml (at its tip) gives the bounds not set here.",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@root_option
def compact_command(
    older_than: int | None,
    delete_after: int | None,
    delete_audit_after: int | None,
    repo: str | None,
    output: str,
    root: str | None,
) -> None:
    """Compress old, covered days of the event log; delete past the bounds set.

    Only days the observer's durable record covers to their end are touched
    (the others are listed as skipped). Safe to run while the observer runs.

    \b
    Examples:
      homelab events compact --older-than 30
      homelab events compact --repo /srv/homelab-config -o json
    """
    policy = RetentionPolicy()
    if repo is not None:
        policy = RetentionPolicy.from_config(GitSource(_repo_path(repo)).load().config.eventLog)
    policy = RetentionPolicy(
        policy.compress_after_days if older_than is None else older_than,
        policy.delete_after_days if delete_after is None else delete_after,
        policy.delete_audit_after_days if delete_audit_after is None else delete_audit_after,
    ).check()
    runtime = get_root(root)
    if not runtime.events.is_dir():
        raise ConfigError(f"no event log at {runtime.events} (is --root right?)")
    report = compact(runtime, policy)
    if output == "json":
        doc = {
            "policy": describe(policy),
            "busy": report.busy,
            "days": [vars(d) for d in report.days],
            "repaired": report.repaired,
            "skipped": report.skipped,
            "bytesBefore": report.bytes_before,
            "bytesAfter": report.bytes_after,
        }
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    click.echo(f"policy: {describe(policy)}")
    for line in report.lines():
        click.echo(line)
    if report.busy:
        raise SystemExit(1)


def _repo_path(repo: str) -> Path:
    path = Path(repo).expanduser()
    if not path.is_dir():
        raise ConfigError(f"--repo {repo}: no such folder")
    return path
