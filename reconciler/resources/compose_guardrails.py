"""The guard rails for compose files: every service judged like a Container.

A `ComposeStack` deploys whatever its compose files say, so the same rules
as for Containers (`reconciler.resources.guardrails`) apply to each service:
`privileged`, host `pid`/`ipc`/`uts` namespaces, `cap_add`, bind mounts in
both the short (`/src:/dst:ro`) and the long syntax (`type: bind`), and —
compose has them, the Container kind not yet — `devices` of block disks
(rule `block-device`). A relative bind source is judged where compose will
resolve it: against the folder the stack's files are written to on the node
(`ROOT/stacks/<name>/`), so `../../..` cannot climb out unseen; `~` is the
home of the user that runs compose. Findings name the compose file and the
service. Pure: the only I/O is the resolver the caller gives. Called by the
planner (`reconciler.planning.guardrails`) and the compose driver.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.resources.guardrails import (
    BLOCK_DEVICE,
    Finding,
    PathResolver,
    container_findings,
    lexical,
)

_BLOCK = BLOCK_DEVICE  # whole disks and partitions (character devices stay ordinary)
_NAMESPACES = {"pid": "pidMode", "ipc": "ipcMode", "uts": "utsMode"}


def _bind_source(volume: Any) -> str | None:
    """The host path a compose volume entry binds, or None (a named volume, tmpfs…)."""
    if isinstance(volume, str):
        source = volume.split(":", 1)[0] if ":" in volume else ""
        return source if source[:1] in ("/", ".", "~") else None
    if isinstance(volume, Mapping) and volume.get("type", "volume") == "bind":
        given = volume.get("source")
        return str(given) if given else None
    return None


def _absolute(source: str, base: str) -> str:
    if source.startswith("~"):
        source = os.path.expanduser(source)
    return posixpath.normpath(posixpath.join(base, source))


def service_spec(service: Mapping[str, Any], base: str) -> dict[str, Any]:
    """The Container-shaped spec of one compose service, for the shared rules."""
    spec: dict[str, Any] = {"privileged": bool(service.get("privileged"))}
    for key, field in _NAMESPACES.items():
        if service.get(key) == "host":
            spec[field] = "host"
    caps = service.get("cap_add")
    spec["capAdd"] = [str(c) for c in caps] if isinstance(caps, list) else []
    volumes = service.get("volumes")
    sources = [_bind_source(v) for v in volumes] if isinstance(volumes, list) else []
    spec["volumes"] = [{"source": _absolute(s, base)} for s in sources if s]
    return spec


def _devices(name: str, service: Mapping[str, Any], resolve: PathResolver) -> list[Finding]:
    found = []
    devices = service.get("devices")
    for index, entry in enumerate(devices if isinstance(devices, list) else []):
        text = str(entry.get("source", "")) if isinstance(entry, Mapping) else str(entry)
        host = text.split(":", 1)[0]
        if not host.startswith("/"):
            continue
        real = posixpath.normpath(resolve(host).path)
        if _BLOCK.match(posixpath.normpath(host)) or _BLOCK.match(real):
            field = f"services.{name}.devices[{index}]"
            found.append(Finding("block-device", field, f"device {host}: a block disk"))
    return found


def _renamed(finding: Finding, name: str, index_of: list[int]) -> Finding:
    """A Container-spec finding as the compose field it came from."""
    field = finding.field.removeprefix("spec.")
    if field.startswith("volumes["):
        position = int(field[len("volumes[") : field.index("]")])
        field = f"volumes[{index_of[position]}]"
    field = {"pidMode": "pid", "ipcMode": "ipc", "utsMode": "uts"}.get(field, field)
    field = field.replace("capAdd", "cap_add")
    return Finding(finding.rule, f"services.{name}.{field}", finding.message)


def compose_findings(
    compose: Any,
    base: str,
    *,
    node_sockets: Iterable[str] = (),
    resolve: PathResolver = lexical,
) -> list[Finding]:
    """Every guard-rail finding for one parsed compose file whose stack lives in `base`."""
    services = compose.get("services") if isinstance(compose, Mapping) else None
    if not isinstance(services, Mapping):
        return []
    sockets = tuple(node_sockets)
    found: list[Finding] = []
    for name, service in services.items():
        if not isinstance(service, Mapping):
            continue
        volumes = service.get("volumes")
        index_of = [
            i for i, v in enumerate(volumes if isinstance(volumes, list) else []) if _bind_source(v)
        ]
        spec = service_spec(service, base)
        for finding in container_findings(spec, node_sockets=sockets, resolve=resolve):
            found.append(_renamed(finding, str(name), index_of))
        found.extend(_devices(str(name), service, resolve))
    return found
