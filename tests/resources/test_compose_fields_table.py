"""docs/compose-fields.md stays true against the compose schema and the Container schema.

Every service property of the compose specification (tests/data/compose-spec.json)
is a row exactly once, nothing else is; every field a row names exists in the
Container JSON schema `homelab schema` exports (a dotted name through the
nested models); a mapped row names a field, a left-out row says why. Prints
`compose coverage: N of 92` (pytest -s), the figure the README quotes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from reconciler.cli.schema import export_schemas

TOP = Path(__file__).resolve().parents[2]
TABLE = TOP / "docs" / "compose-fields.md"
SPEC = TOP / "tests" / "data" / "compose-spec.json"
_ROW = re.compile(
    r"^\| `(?P<compose>[a-z_]+)` \| (?P<status>[a-z ]+) \| (?P<fields>[^|]*) \| (?P<notes>.*)\|$"
)


def _rows() -> list[dict[str, str]]:
    rows = []
    for line in TABLE.read_text().splitlines():
        if line.startswith("| `"):
            match = _ROW.match(line)
            assert match, f"docs/compose-fields.md: a row that does not parse: {line}"
            rows.append({k: v.strip() for k, v in match.groupdict().items()})
    return rows


def _compose_properties() -> list[str]:
    return sorted(json.loads(SPEC.read_text())["definitions"]["service"]["properties"])


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow $ref and anyOf/allOf wrappers to the object schema that has properties."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _resolve(root["$defs"][name], root)
    for key in ("anyOf", "allOf", "oneOf"):
        for option in schema.get(key, []):
            found = _resolve(option, root)
            if "properties" in found or found.get("type") == "array":
                return found
    if schema.get("type") == "array" and "items" in schema:
        return _resolve(schema["items"], root)
    return schema


def _field_exists(root: dict[str, Any], dotted: str) -> bool:
    node = _resolve(root["$defs"]["ContainerSpec"], root)
    for part in dotted.split("."):
        props = node.get("properties") or {}
        if part not in props:
            return False
        node = _resolve(props[part], root)
    return True


def test_the_table_names_every_compose_property_exactly_once() -> None:
    names = [row["compose"] for row in _rows()]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
    assert sorted(names) == _compose_properties()
    assert names == sorted(names)  # alphabetical, so a new property is easy to place


def test_every_mapped_field_exists_in_the_container_schema_and_coverage_is_printed() -> None:
    root = export_schemas()["container.json"]
    mapped = 0
    for row in _rows():
        fields = re.findall(r"`([A-Za-z.]+)`", row["fields"])
        assert row["status"] in ("mapped", "partly", "left out"), row
        if row["status"] == "left out":
            assert row["fields"] == "—" and len(row["notes"]) > 10, f"{row['compose']}: why?"
            continue
        assert fields, f"{row['compose']}: a {row['status']} row names no field"
        for field in fields:
            assert _field_exists(root, field), f"{row['compose']}: {field} is not a Container field"
        mapped += 1
    assert not _field_exists(root, "resources.nothing")  # the check can fail
    total = len(_compose_properties())
    print(f"\ncompose coverage: {mapped} of {total}")
    assert total == 92 and mapped >= 60
