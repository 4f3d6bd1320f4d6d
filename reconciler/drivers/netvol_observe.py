"""Networks and volumes as the engine has them, mapped to the comparable specs.

Shared by the collector (`observer/collectors/netvol.py`) and the drivers'
stale-plan checks (`drivers/network.py`, `drivers/volume.py`), so both
compute the same observation. Pure: works on inspect dicts.

Ownership, for a network or volume on a node:

* labelled by this runtime root for this node (`homelab.reconciler/*`, the
  labels `managed_labels` writes at create): managed, last-applied the
  `homelab.reconciler/spec` label, unless the registry record says it was
  *released* (a Volume deleted under `deletionPolicy: Retain`: it stays on
  the node, unmanaged);
* recorded in the registry (`ROOT/state/adopted/<Kind>/<name>.json`, written
  at create, adopt and update, by the object's identity: a network's id, a
  volume's name and creation time): managed, last-applied the record's spec;
* anything else (built-in networks and anonymous volumes aside): observed
  unmanaged, keyed by a DNS label made from its engine name (`key_name`),
  so the planner can adopt it when a manifest names it (`planning/netvol.py`
  matches by engine name, not by key).

Three-way defaults: a subnet the engine chose is not observed when
last-applied set none; `com.docker.compose.*` labels (compose stamps them on
what it creates) are observed only when last-applied had them;
`deletionPolicy` is not on the node and comes from last-applied.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from reconciler.resources.normalize import spec_hash

PREFIX = "homelab.reconciler"
MANAGED_BY = "homelab-reconciler"
SPEC_LABEL = f"{PREFIX}/spec"
COMPOSE_LABELS = "com.docker.compose."
BUILTIN_NETWORKS = frozenset({"bridge", "host", "none", "ingress", "docker_gwbridge"})
_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def managed_labels(
    kind: str, name: str, node: str, desired: dict[str, Any], action_id: str, instance: str
) -> dict[str, str]:
    """The labels a created network or volume carries (the container labels' keys)."""
    return {
        f"{PREFIX}/managed-by": MANAGED_BY,
        f"{PREFIX}/instance": instance,
        f"{PREFIX}/kind": kind,
        f"{PREFIX}/name": name,
        f"{PREFIX}/node": node,
        f"{PREFIX}/spec-hash": spec_hash(desired),
        f"{PREFIX}/action-id": action_id,
        SPEC_LABEL: orjson.dumps(desired, option=orjson.OPT_SORT_KEYS).decode(),
    }


def identity(kind: str, attrs: Mapping[str, Any]) -> str:
    """What tells this object from another of the same name: network id, volume name@created."""
    if kind == "Network":
        return str(attrs.get("Id") or "")
    return f"{attrs.get('Name') or ''}@{attrs.get('CreatedAt') or ''}"


def key_name(engine_name: str, taken: set[str] | frozenset[str] = frozenset()) -> str:
    """A DNS label for an unmanaged object's world document (its engine name when it is one)."""
    plain = _NOT_DNS.sub("-", engine_name.lower()).strip("-")[:63].strip("-") or "x"
    if plain == engine_name and plain not in taken:
        return plain
    suffix = hashlib.sha256(engine_name.encode()).hexdigest()[:6]
    return f"{plain[:56].strip('-')}-{suffix}"


def ignored(kind: str, attrs: Mapping[str, Any]) -> bool:
    """Built-in networks and anonymous volumes: never resources."""
    name = str(attrs.get("Name") or "")
    if kind == "Network":
        return name in BUILTIN_NETWORKS or attrs.get("Scope") == "swarm"
    return bool(_ANONYMOUS.match(name)) or name == ""


@dataclass(frozen=True)
class Owned:
    name: str
    managed: bool
    last_applied: dict[str, Any] | None
    reason: str  # LabelRead, RegistryRecord, Released, NotManaged


def _label_spec(labels: Mapping[str, str]) -> dict[str, Any] | None:
    raw = labels.get(SPEC_LABEL)
    if raw is None:
        return None
    try:
        spec = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return spec if isinstance(spec, dict) else None


def record_names(record: Mapping[str, Any] | None, kind: str, attrs: Mapping[str, Any]) -> bool:
    """Whether a registry record is about this very object (identity and node)."""
    if not isinstance(record, Mapping):
        return False
    return bool(record.get("id")) and record.get("id") == identity(kind, attrs)


def owner(
    kind: str,
    attrs: Mapping[str, Any],
    node: str,
    instance: str,
    records: Mapping[str, Mapping[str, Any]],
) -> Owned | None:
    """Which resource an inspected network/volume is (see the module docstring), or None."""
    if ignored(kind, attrs):
        return None
    labels = attrs.get("Labels") or {}
    by_id = {
        name: rec
        for name, rec in records.items()
        if record_names(rec, kind, attrs) and rec.get("node", node) == node
    }
    if labels.get(f"{PREFIX}/managed-by") == MANAGED_BY:
        if labels.get(f"{PREFIX}/instance") != instance:
            return None  # another control plane's, on a shared engine
        if labels.get(f"{PREFIX}/kind") != kind or labels.get(f"{PREFIX}/node") != node:
            return None
        name = labels.get(f"{PREFIX}/name") or ""
        record = by_id.get(name)
        if record is not None and record.get("released"):
            return Owned("", False, None, "Released")
        if record is not None and isinstance(record.get("spec"), dict):
            return Owned(name, True, dict(record["spec"]), "RegistryRecord")
        return Owned(name, True, _label_spec(labels), "LabelRead") if name else None
    for name, record in sorted(by_id.items()):
        if not record.get("released") and isinstance(record.get("spec"), dict):
            return Owned(name, True, dict(record["spec"]), "RegistryRecord")
    return Owned("", False, None, "NotManaged")


def _labels(held: Mapping[str, Any] | None, last: Mapping[str, Any] | None) -> dict[str, str]:
    applied = (last or {}).get("labels") or {}
    out = {}
    for key, value in sorted((held or {}).items()):
        if str(key).startswith(f"{PREFIX}/"):
            continue
        if str(key).startswith(COMPOSE_LABELS) and last is not None and key not in applied:
            continue
        out[str(key)] = str(value)
    return out


def observed_network_spec(
    attrs: Mapping[str, Any], last: Mapping[str, Any] | None, node: str
) -> dict[str, Any]:
    ipam = attrs.get("IPAM") or {}
    subnets = []
    for entry in ipam.get("Config") or []:
        if not entry.get("Subnet"):
            continue
        item = {"subnet": str(entry["Subnet"])}
        if entry.get("Gateway"):
            item["gateway"] = str(entry["Gateway"])
        if entry.get("IPRange"):
            item["ipRange"] = str(entry["IPRange"])
        subnets.append(item)
    applied = ((last or {}).get("ipam") or {}).get("subnets")
    if last is not None and not applied:
        subnets = []  # the engine's choice: last-applied asked for none
    return {
        "node": node,
        "name": str(attrs.get("Name") or ""),
        "driver": str(attrs.get("Driver") or "bridge"),
        "internal": bool(attrs.get("Internal")),
        "attachable": bool(attrs.get("Attachable")),
        "ipam": {"subnets": sorted(subnets, key=lambda s: s["subnet"])},
        "labels": _labels(attrs.get("Labels"), last),
        "options": {str(k): str(v) for k, v in sorted((attrs.get("Options") or {}).items())},
    }


def observed_volume_spec(
    attrs: Mapping[str, Any], last: Mapping[str, Any] | None, node: str
) -> dict[str, Any]:
    return {
        "node": node,
        "name": str(attrs.get("Name") or ""),
        "driver": str(attrs.get("Driver") or "local"),
        "driverOpts": {str(k): str(v) for k, v in sorted((attrs.get("Options") or {}).items())},
        "labels": _labels(attrs.get("Labels"), last),
        "deletionPolicy": str((last or {}).get("deletionPolicy") or "Retain"),
    }


def observed_spec(
    kind: str, attrs: Mapping[str, Any], last: Mapping[str, Any] | None, node: str
) -> dict[str, Any]:
    if kind == "Network":
        return observed_network_spec(attrs, last, node)
    return observed_volume_spec(attrs, last, node)


def network_runtime(attrs: Mapping[str, Any]) -> dict[str, Any]:
    containers = attrs.get("Containers") or {}
    return {
        "id": str(attrs.get("Id") or "")[:12],
        "containers": sorted(str((c or {}).get("Name") or k) for k, c in containers.items()),
    }


def volume_runtime(attrs: Mapping[str, Any], usage: Mapping[str, Any] | None) -> dict[str, Any]:
    """Creation time, and (when measured) the bytes it holds and how many containers use it."""
    out: dict[str, Any] = {"createdAt": str(attrs.get("CreatedAt") or "")}
    if usage is not None:
        out["usage"] = dict(usage)
    return out
