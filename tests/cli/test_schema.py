"""The checked-in JSON Schemas match the models, and the examples validate against them."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import orjson
import yaml
from referencing import Registry, Resource

from reconciler.cli.schema import export_schemas, render_schema

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"
MANIFESTS = Path(__file__).resolve().parents[2] / "manifests"


def test_checked_in_schemas_are_current() -> None:
    expected = export_schemas()
    on_disk = {p.name for p in SCHEMAS.glob("*.json")}
    assert on_disk == set(expected), "run: homelab schema export --out schemas"
    for name, schema in expected.items():
        assert (SCHEMAS / name).read_bytes() == render_schema(schema), (
            f"schemas/{name} is stale: run `homelab schema export --out schemas`"
        )


def test_example_manifests_validate_against_the_schema_and_name_it() -> None:
    docs = {p.name: orjson.loads(p.read_bytes()) for p in SCHEMAS.glob("*.json")}
    registry: Registry = Registry().with_resources(
        (name, Resource.from_contents(doc)) for name, doc in docs.items()
    )
    validator = jsonschema.Draft7Validator(docs["homelab.json"], registry=registry)
    files = sorted(MANIFESTS.rglob("*.yaml"))
    assert files
    for path in files:
        assert path.read_text().startswith("# yaml-language-server: $schema="), path
        for doc in yaml.safe_load_all(path.read_text()):
            errors = list(validator.iter_errors(doc))
            assert errors == [], (path, errors)
