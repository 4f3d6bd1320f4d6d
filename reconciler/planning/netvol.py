"""Planning rules of the Network and Volume kinds: adoption by engine name, plan notes.

An unmanaged network or volume is observed under a key made from its engine
name (`drivers.netvol_observe.key_name`), which need not be the manifest's
metadata.name (`proj_data` may be `Volume/data`). `adoption_candidates`
therefore matches a desired Network/Volume that the project does not manage
yet with the unmanaged one of the same engine name on the same node, and
offers it under the desired key: the plan says `adopt`, not `create`. What
the node cannot show is taken from the manifest for that comparison: the
`deletionPolicy`, a subnet the engine chose when the manifest asks for none,
and the `com.docker.compose.*` labels compose stamps on what it creates.
An unmanaged one under a desired key but with another engine name is no
candidate (the manifest's one is created).

`attach_notes` adds what a person must know before approving: a Volume
delete says whether the volume is retained (`deletionPolicy: Retain`, the
default) or deleted and what it holds (`runtime.usage` of the world
document); a replace that the driver will refuse says so. Pure.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from reconciler.diff import Plan
from reconciler.drivers.netvol_observe import COMPOSE_LABELS
from reconciler.drivers.volume import holds_text
from reconciler.resources.key import ResourceKey
from reconciler.world.doc import WorldDoc

KINDS = ("Network", "Volume")


def _as_desired(kind: str, observed: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    out = dict(observed)
    labels = {
        k: v
        for k, v in (observed.get("labels") or {}).items()
        if not k.startswith(COMPOSE_LABELS) or k in (want.get("labels") or {})
    }
    out["labels"] = labels
    if kind == "Volume":
        out["deletionPolicy"] = want.get("deletionPolicy", "Retain")
    elif not (want.get("ipam") or {}).get("subnets"):
        out["ipam"] = {**(observed.get("ipam") or {}), "subnets": []}
    return out


def adoption_candidates(
    unmanaged: dict[ResourceKey, dict[str, Any]],
    desired: dict[ResourceKey, dict[str, Any]],
    world: dict[ResourceKey, WorldDoc],
) -> dict[ResourceKey, dict[str, Any]]:
    """`unmanaged` with Networks/Volumes keyed by the desired resource they are."""
    out = {
        ref: _mount_forms(spec, desired[ref])
        if ref.kind == "Container" and ref in desired
        else spec
        for ref, spec in unmanaged.items()
        if ref.kind not in KINDS
    }
    by_name = {
        (ref.kind, spec.get("node"), spec.get("name")): spec
        for ref, spec in sorted(unmanaged.items())
        if ref.kind in KINDS
    }
    for ref, want in desired.items():
        if ref.kind not in KINDS:
            continue
        doc = world.get(ref)
        if doc is not None and doc.status.managed and doc.status.exists:
            continue
        found = by_name.get((ref.kind, want.get("node"), want.get("name")))
        if found is not None:
            out[ref] = _as_desired(ref.kind, found, want)
    return out


def _mount_forms(observed: dict[str, Any], want: dict[str, Any]) -> dict[str, Any]:
    """A named volume observed as `{volume: N}` in the form the manifest writes it.

    A container with no last-applied spec cannot tell `{source: N}` (the older
    form) from `{volume: N}`: both are the same mount on the engine.
    """
    written = {
        (m.get("target"), m.get("source"))
        for m in want.get("volumes") or []
        if isinstance(m, dict) and m.get("source")
    }
    volumes = []
    for mount in observed.get("volumes") or []:
        if isinstance(mount, dict) and (mount.get("target"), mount.get("volume")) in written:
            mount = {
                "source": mount["volume"],
                "target": mount["target"],
                "readOnly": mount["readOnly"],
            }
        volumes.append(mount)
    return {**observed, "volumes": volumes} if "volumes" in observed else observed


def _runtime(doc: WorldDoc | None) -> dict[str, Any]:
    runtime = doc.status.runtime if doc is not None else None
    return runtime if isinstance(runtime, dict) else {}


def _notes(
    kind: str, operation: str, observed: dict[str, Any], runtime: dict[str, Any]
) -> list[str]:
    name = observed.get("name", "?")
    if kind == "Volume":
        holds = holds_text(runtime.get("usage") if isinstance(runtime.get("usage"), dict) else None)
        policy = observed.get("deletionPolicy", "Retain")
        if operation == "delete":
            if policy == "Delete":
                return [f"deletes volume {name} ({holds}): deletionPolicy Delete"]
            return [
                f"retained: deletionPolicy Retain; volume {name} ({holds}) stays on the node "
                "and leaves management"
            ]
        if operation == "replace" and policy != "Delete":
            return [
                f"refused when approved: recreating volume {name} deletes its data ({holds}) "
                "and its deletionPolicy is Retain"
            ]
        if operation == "replace":
            return [f"deletes and recreates volume {name} ({holds})"]
    if kind == "Network" and operation in ("replace", "delete"):
        users = runtime.get("containers") or []
        if users:
            verb = "refused when approved" if operation == "replace" else "waits"
            return [f"{verb}: containers {', '.join(users)} are attached to network {name}"]
    return []


def attach_notes(plan: Plan, world: dict[ResourceKey, WorldDoc]) -> None:
    for i, change in enumerate(plan.changes):
        if change.kind not in KINDS or change.observed is None:
            continue
        notes = _notes(
            change.kind, change.operation, change.observed, _runtime(world.get(change.ref))
        )
        if notes:
            plan.changes[i] = dataclasses.replace(change, notes=tuple(notes))
