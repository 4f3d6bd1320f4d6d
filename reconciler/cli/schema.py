"""`homelab schema export`: JSON Schemas of every kind, for editors and CI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson

from reconciler.resources.kinds import KINDS
from reconciler.resources.repo import RepoConfig


def export_schemas() -> dict[str, dict[str, Any]]:
    """File name -> schema: one per kind, one for homelab.yaml, one combined."""
    out: dict[str, dict[str, Any]] = {}
    for kind, model in KINDS.items():
        schema = model.model_json_schema()
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        out[f"{kind.lower()}.json"] = schema
    config = RepoConfig.model_json_schema()
    config["$schema"] = "http://json-schema.org/draft-07/schema#"
    out["repository-config.json"] = config
    out["homelab.json"] = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "homelab-reconciler manifest (any kind)",
        "oneOf": [{"$ref": f"{kind.lower()}.json"} for kind in KINDS],
    }
    return out


def render_schema(schema: dict[str, Any]) -> bytes:
    return orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


@click.group()
def schema() -> None:
    """JSON Schemas of the manifest kinds.

    \b
    Example:
      homelab schema export --out schemas
    """


@schema.command("export")
@click.option("--out", "out", default="schemas", show_default=True, help="Folder to write into.")
def export(out: str) -> None:
    """Write schemas/<kind>.json and schemas/homelab.json from the models.

    \b
    Example:
      homelab schema export --out schemas
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in export_schemas().items():
        (folder / name).write_bytes(render_schema(doc))
        click.echo(f"wrote {folder / name}")
