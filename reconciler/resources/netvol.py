"""The fields of the `Network` and `Volume` kinds and a Container's volume mounts.

`NetworkFields` and `VolumeFields` are the engine-facing parts of the two
specs (kinds.py adds `dependsOn` and `policy` and registers the kinds);
`VolumeMount` is one entry of a Container's `volumes:`: the bind form
`{source: /abs/path, target}` (or an engine volume named in `source`, as
before) or the named-volume form `{volume: NAME, target, readOnly,
subpath}`. Engine names (`spec.name`, a mount's `volume`, an attachment's
`network`) follow Docker's rule `[A-Za-z0-9][A-Za-z0-9_.-]*` and may
contain `_` and `.` (compose calls them `project_default`); a resource's
metadata.name stays a DNS label. `comparable_network` / `comparable_volume`
are the normalize builders. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from reconciler.resources.meta import DnsLabel, Labels, StrictModel

_ENGINE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
DELETION_POLICIES = ("Retain", "Delete")


def check_engine_name(value: str) -> str:
    if not _ENGINE_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an engine name: letters, digits, '_', '.' and '-', "
            "starting with a letter or digit, at most 255 characters"
        )
    return value


EngineName = Annotated[str, AfterValidator(check_engine_name)]


def _network_text(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError(f"{value!r} is not a subnet in CIDR form (like 10.5.0.0/24)") from None


def _address_text(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address (like 10.5.0.1)") from None


Subnet = Annotated[str, AfterValidator(_network_text)]
Address = Annotated[str, AfterValidator(_address_text)]


class IpamSubnet(StrictModel):
    subnet: Subnet
    gateway: Address | None = None
    ipRange: Subnet | None = Field(default=None, description="Addresses handed out (CIDR).")

    @model_validator(mode="after")
    def _inside(self) -> IpamSubnet:
        net = ipaddress.ip_network(self.subnet)
        if self.gateway is not None and ipaddress.ip_address(self.gateway) not in net:
            raise ValueError(f"gateway {self.gateway} is not in subnet {self.subnet}")
        if self.ipRange is not None and not ipaddress.ip_network(self.ipRange).subnet_of(
            net  # type: ignore[arg-type]
        ):
            raise ValueError(f"ipRange {self.ipRange} is not inside subnet {self.subnet}")
        return self


class Ipam(StrictModel):
    subnets: list[IpamSubnet] = Field(default_factory=list)


class NetworkFields(StrictModel):
    """A Docker network (compose `networks:` top-level entry)."""

    name: EngineName | None = Field(default=None, description="Engine name; default metadata.name.")
    node: DnsLabel = "local"
    driver: str = Field(default="bridge", min_length=1)
    internal: bool = False
    attachable: bool = False
    ipam: Ipam = Field(default_factory=Ipam)
    labels: Labels = Field(default_factory=dict)
    options: dict[str, str] = Field(default_factory=dict, description="Driver options.")


class VolumeFields(StrictModel):
    """A Docker named volume (compose `volumes:` top-level entry)."""

    name: EngineName | None = Field(default=None, description="Engine name; default metadata.name.")
    node: DnsLabel = "local"
    driver: str = Field(default="local", min_length=1)
    driverOpts: dict[str, str] = Field(default_factory=dict)
    labels: Labels = Field(default_factory=dict)
    deletionPolicy: Literal["Retain", "Delete"] = Field(
        default="Retain",
        description="Retain: a delete (manifest removed) leaves the volume and its data on the "
        "node, unmanaged. Delete: the volume is removed with its data.",
    )


class VolumeMount(StrictModel):
    """One mount of a Container: a bind (`source`) or a named volume (`volume`)."""

    source: str | None = Field(
        default=None, description="Absolute host path (bind), or an engine volume's name."
    )
    volume: EngineName | None = Field(
        default=None, description="A Volume resource's spec.name or an existing engine volume."
    )
    target: str
    readOnly: bool = False
    subpath: str | None = Field(default=None, description="A folder inside the volume.")

    @model_validator(mode="after")
    def _one_source(self) -> VolumeMount:
        if (self.source is None) == (self.volume is None):
            raise ValueError("give exactly one of source (a host path) or volume (a volume name)")
        if not self.target.startswith("/") or "\x00" in self.target:
            raise ValueError(f"target {self.target!r} must be an absolute path")
        if self.subpath is not None:
            parts = self.subpath.split("/")
            if self.volume is None:
                raise ValueError("subpath applies to a named volume (volume:) only")
            if self.subpath.startswith("/") or ".." in parts or "\x00" in self.subpath:
                raise ValueError(f"subpath {self.subpath!r} must be relative, without '..'")
        return self

    @property
    def is_bind(self) -> bool:
        return self.source is not None and self.source.startswith("/")


def check_attachments(networks: list[Any], network_mode: str) -> None:
    """A Container's `networks:`: each joined once, and only in the bridge network mode."""
    names = [a.network for a in networks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"networks: {dupes} listed twice")
    if networks and network_mode != "bridge":
        raise ValueError(
            f"networks: a container in networkMode {network_mode!r} cannot join networks "
            "(leave networkMode at bridge)"
        )
    for attachment in networks:
        check_engine_name(attachment.network)
        if attachment.ipv4Address is not None:
            try:
                ipaddress.IPv4Address(attachment.ipv4Address)
            except ValueError:
                raise ValueError(
                    f"networks: {attachment.network}: ipv4Address "
                    f"{attachment.ipv4Address!r} is not an IPv4 address"
                ) from None


def mount_comparable(mount: dict[str, Any]) -> dict[str, Any]:
    """A mount in comparable shape: unset keys left out (a bind keeps its old shape)."""
    return {
        k: v for k, v in mount.items() if not (v is None and k in ("source", "volume", "subpath"))
    }


def comparable_network(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    subnets = [
        {k: v for k, v in s.items() if v is not None}
        for s in (spec.get("ipam") or {}).get("subnets") or []
    ]
    return {
        "node": spec.get("node") or "local",
        "name": spec.get("name") or name,
        "driver": spec.get("driver") or "bridge",
        "internal": bool(spec.get("internal")),
        "attachable": bool(spec.get("attachable")),
        "ipam": {"subnets": sorted(subnets, key=lambda s: str(s["subnet"]))},
        "labels": dict(sorted((spec.get("labels") or {}).items())),
        "options": dict(sorted((spec.get("options") or {}).items())),
    }


def comparable_volume(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "node": spec.get("node") or "local",
        "name": spec.get("name") or name,
        "driver": spec.get("driver") or "local",
        "driverOpts": dict(sorted((spec.get("driverOpts") or {}).items())),
        "labels": dict(sorted((spec.get("labels") or {}).items())),
        "deletionPolicy": spec.get("deletionPolicy") or "Retain",
    }


def sorted_networks(networks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The comparable order: the first (the create network) stays, the rest by name."""
    if not networks:
        return networks
    rest = sorted(networks[1:], key=lambda a: str(a["network"]))
    return [{**a, "aliases": sorted(set(a.get("aliases") or []))} for a in [networks[0], *rest]]
