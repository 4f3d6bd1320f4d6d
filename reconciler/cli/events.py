"""`homelab events tail`: the last events of the log, optionally following it.

Reads `ROOT/events` through `reconciler.events.reader.LogReader` (so torn
lines are never printed half) and filters by type (a glob like `action.*`)
and by `KIND/NAME`. Never writes.
"""

from __future__ import annotations

import fnmatch
import time
from typing import Any

import click
import orjson

from reconciler.cli.common import get_root, root_option
from reconciler.errors import ConfigError
from reconciler.events.reader import LogEvent, LogReader
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot


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
