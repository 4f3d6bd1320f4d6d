"""`homelab get KIND [NAME]`: the observed world, as a table, JSON or YAML.

Reads world documents through `reconciler.world.WorldReader`; never writes.
"""

from __future__ import annotations

from typing import Any

import click
import orjson
import yaml

from reconciler.cli.common import get_root, root_option
from reconciler.errors import ConfigError
from reconciler.resources.kinds import KINDS
from reconciler.world import WorldReader
from reconciler.world.doc import WorldDoc, world_doc_to_dict


def _kind(text: str) -> str:
    for kind in KINDS:
        if text.lower() in (kind.lower(), kind.lower() + "s"):
            return kind
    raise ConfigError(f"unknown kind {text!r}; expected one of {', '.join(KINDS)}")


def _row(doc: WorldDoc) -> list[str]:
    status = doc.status
    last = status.last_action
    ready = status.condition("Ready")
    return [
        doc.metadata.name,
        status.node or "-",
        "yes" if status.exists else "no",
        status.health + (f" (Ready={ready.status})" if ready else ""),
        status.observed_at or "-",
        f"{last.operation} {last.state}" if last else "-",
    ]


@click.command("get")
@click.argument("kind")
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Choice(["table", "json", "yaml"]), default="table")
@root_option
def get(kind: str, name: str | None, output: str, root: str | None) -> None:
    """Show observed resources of KIND (Node, Container, File, ComposeStack, Network, Volume).

    \b
    Examples:
      homelab get containers
      homelab get Container web -o yaml
    """
    wanted = _kind(kind)
    world = WorldReader(get_root(root)).read()
    docs = [doc for (k, n), doc in sorted(world.items()) if k == wanted and name in (None, n)]
    plain = [world_doc_to_dict(doc) for doc in docs]  # the documents as on disk
    if name and not docs:
        raise ConfigError(f"{wanted}/{name} is not in the world (not observed yet?)")
    if output == "json":
        data: Any = plain[0] if name else plain
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
        return
    if output == "yaml":
        click.echo(yaml.safe_dump(plain[0] if name else plain, sort_keys=True).rstrip())
        return
    rows = [["NAME", "NODE", "EXISTS", "HEALTH", "OBSERVED", "LAST ACTION"]]
    rows += [_row(doc) for doc in docs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
