"""A Container's networks and named volumes: create arguments, connects, observation.

`networks: [{network, aliases, ipv4Address}]`: the first network is given at
create (`network` + `networking_config`: the container's network mode is
that network), the others are connected after create, before the start
(`connect_networks`, idempotent: a network already joined is skipped), so
the container starts with all of them. Named volumes (`volumes: [{volume:
NAME, target, readOnly, subpath}]`) are `mounts` of type volume; a bind or
an engine volume given as `source` stays a `volumes` entry as before.

Observed back from `docker inspect` (`observed_networks`,
`observed_mounts`): every network the container is attached to, the one of
its network mode first, then by name, with its aliases (less the short id
the engine adds) and its static IPv4; a container in the default network
mode (`bridge`) attached only to it has none. A network disconnected or
connected by hand is therefore drift. Pure but for `require_present` and `connect_networks`.
Used by the Docker driver (create) and `container_observe`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import docker.errors
import docker.types

from reconciler.errors import PermanentError, TemporaryError

DEFAULT_MODES = ("default", "bridge")
SUBPATH_API = (1, 45)


def _endpoint(attachment: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if attachment.get("aliases"):
        out["Aliases"] = list(attachment["aliases"])
    if attachment.get("ipv4Address"):
        out["IPAMConfig"] = {"IPv4Address": attachment["ipv4Address"]}
    return out


def attach_kwargs(kwargs: dict[str, Any], spec: Mapping[str, Any]) -> dict[str, Any]:
    """`containers.create` arguments with the first network and the named-volume mounts."""
    networks = spec.get("networks") or []
    if networks:
        first = networks[0]
        kwargs.pop("network_mode", None)
        kwargs["network"] = first["network"]
        kwargs["networking_config"] = {first["network"]: _endpoint(first)}
    mounts = []
    for mount in spec.get("volumes") or []:
        if not mount.get("volume"):
            continue
        options = {"Subpath": mount["subpath"]} if mount.get("subpath") else None
        item = docker.types.Mount(
            target=mount["target"],
            source=mount["volume"],
            type="volume",
            read_only=bool(mount.get("readOnly")),
        )
        if options:
            item["VolumeOptions"] = options
        mounts.append(item)
    if mounts:
        kwargs["mounts"] = mounts
    return kwargs


def require_present(client: Any, spec: Mapping[str, Any]) -> None:
    """The networks and named volumes a container uses must exist before its create
    (and a volume `subpath` needs an engine that knows it).

    The engine would create a missing named volume by itself, unlabelled (the
    Volume resource's create would then find it taken); a missing network
    fails the create. Both are temporary errors: a Network or Volume action of
    the same plan usually creates them meanwhile, and the executor retries.
    """
    if any(m.get("subpath") for m in spec.get("volumes") or []):
        version = tuple(int(x) for x in str(client.api.api_version).split(".")[:2])
        if version < SUBPATH_API:
            raise PermanentError(
                f"volumes: subpath needs Docker Engine API 1.45 or later; this engine "
                f"speaks {client.api.api_version}"
            )
    missing = []
    for attachment in spec.get("networks") or []:
        name = attachment["network"]
        if not any(n.get("Name") == name for n in client.api.networks(names=[name])):
            missing.append(f"network {name}")
    for mount in spec.get("volumes") or []:
        if mount.get("volume"):
            try:
                client.api.inspect_volume(mount["volume"])
            except docker.errors.NotFound:
                missing.append(f"volume {mount['volume']}")
    if missing:
        raise TemporaryError(
            f"{', '.join(missing)} not on the node yet (create the Network/Volume first, or "
            "by hand; the action is retried)"
        )


def connect_networks(client: Any, container_id: str, spec: Mapping[str, Any]) -> list[str]:
    """Connect the networks after the first (before the start); the ones connected."""
    networks = spec.get("networks") or []
    attrs = client.api.inspect_container(container_id)
    joined = set(((attrs.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    done = []
    for attachment in networks[1:]:
        if attachment["network"] in joined:
            continue
        client.api.connect_container_to_network(
            container_id,
            attachment["network"],
            aliases=list(attachment.get("aliases") or []) or None,
            ipv4_address=attachment.get("ipv4Address"),
        )
        done.append(attachment["network"])
    return done


def repair_networks(client: Any, container_id: str, spec: Mapping[str, Any]) -> list[str]:
    """Join the desired networks the container left, leave the ones it joined by hand.

    For a container already at its desired spec whose networks drifted (`docker
    network disconnect/connect` by hand): done in place, no recreate. The
    steps done, for the action's output.
    """
    attrs = client.api.inspect_container(container_id)
    mode = str((attrs.get("HostConfig") or {}).get("NetworkMode") or "default")
    joined = set(((attrs.get("NetworkSettings") or {}).get("Networks") or {}).keys())
    wanted = {a["network"]: a for a in spec.get("networks") or []}
    steps = []
    for name in sorted(joined - set(wanted)):
        if (mode in DEFAULT_MODES and name == "bridge" and not wanted) or name == mode:
            continue  # the network of the container's own mode (default, host, none)
        client.api.disconnect_container_from_network(container_id, name)
        steps.append(f"disconnected from network {name}")
    for name, attachment in wanted.items():
        if name in joined:
            continue
        client.api.connect_container_to_network(
            container_id,
            name,
            aliases=list(attachment.get("aliases") or []) or None,
            ipv4_address=attachment.get("ipv4Address"),
        )
        steps.append(f"connected to network {name}")
    return steps


def observed_networks(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    host = attrs.get("HostConfig") or {}
    mode = str(host.get("NetworkMode") or "default")
    attached = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    short = str(attrs.get("Id") or "")[:12]
    # The engine adds the container's hostname (default: its short id) as an alias itself.
    own = {short, str((attrs.get("Config") or {}).get("Hostname") or short)}
    out = []
    for name, endpoint in attached.items():
        if (mode in DEFAULT_MODES and name == "bridge") or (name == mode in ("host", "none")):
            continue  # the network of a built-in mode (networkMode says it): none joined
        endpoint = endpoint or {}
        aliases = sorted({str(a) for a in endpoint.get("Aliases") or [] if a and a not in own})
        static = (endpoint.get("IPAMConfig") or {}).get("IPv4Address") or None
        out.append({"network": str(name), "aliases": aliases, "ipv4Address": static})
    out.sort(key=lambda a: (a["network"] != mode, a["network"]))
    return out


def observed_network_mode(attrs: Mapping[str, Any], mode: str) -> str:
    """`bridge` for a container whose network mode is one of its joined networks."""
    attached = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    if mode not in ("host", "none") and not mode.startswith("container:") and mode in attached:
        return "bridge"
    return mode


def named_bind(entry: dict[str, Any], last: Mapping[str, Any] | None) -> dict[str, Any]:
    """A `Binds` entry of a named volume (`proj_data:/data:rw`, as docker-compose v1 and
    the `{source: NAME}` form write it) as `{volume: NAME}`, unless last-applied had
    `{source: NAME}` at that target (the manifest's own form wins)."""
    source = str(entry["source"])
    if source.startswith("/"):
        return entry
    for mount in (last or {}).get("volumes") or []:
        same = isinstance(mount, Mapping) and mount.get("target") == entry["target"]
        if same and mount.get("source") == source:
            return entry
    return {"volume": source, "target": entry["target"], "readOnly": entry["readOnly"]}


def observed_mounts(host: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The `Mounts` of a container: named volumes as `{volume}`, binds as `{source}`."""
    out = []
    for mount in host.get("Mounts") or []:
        kind = mount.get("Type", "bind")
        if kind not in ("bind", "volume") or not mount.get("Source"):
            continue
        item: dict[str, Any]
        if kind == "volume":
            item = {"volume": str(mount["Source"]), "target": str(mount.get("Target") or "")}
            item["readOnly"] = bool(mount.get("ReadOnly"))
            subpath = (mount.get("VolumeOptions") or {}).get("Subpath")
            if subpath:
                item["subpath"] = str(subpath)
        else:
            item = {
                "source": str(mount["Source"]),
                "target": str(mount.get("Target") or ""),
                "readOnly": bool(mount.get("ReadOnly")),
            }
        out.append(item)
    return out
