"""Map the running containers of an engine to Container, Network and Volume manifests.

A container's spec is the observer's own reading of it
(`reconciler.drivers.container_observe.observed_container_spec` with no
last-applied spec: what the engine runs, minus what the image gives), so the
imported manifest is by construction what `homelab plan` will compare it
with; fields at their ContainerSpec default are left out, the engine name
goes to `containerName`, the container's own short id is dropped from its
network aliases, a named volume mount becomes `{volume: NAME, target}`, and
the compose bookkeeping labels go to `policy.ignoreDifferences`. Containers
of this control plane (managed labels) are skipped. The networks and named
volumes the containers use are imported beside them (predefined networks and
anonymous volumes are not). Pure: the caller passes inspect documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from reconciler.drivers.container_observe import MANAGED_BY, observed_container_spec
from reconciler.importing.compose_map import ordered_spec
from reconciler.importing.model import (
    COMPOSE_LABEL_PREFIX,
    Imported,
    ImportResult,
    dns_name,
    ignore_compose_labels,
)
from reconciler.resources.kinds import ContainerSpec

PREDEFINED_NETWORKS = frozenset({"bridge", "host", "none"})
_ANONYMOUS = re.compile(r"^[0-9a-f]{64}$")
_COMPOSE_PROJECT = "com.docker.compose.project"
_COMPOSE_SERVICE = "com.docker.compose.service"


def _defaults() -> dict[str, Any]:
    out = {}
    for name, info in ContainerSpec.model_fields.items():
        if info.is_required():
            continue
        default = info.get_default(call_default_factory=True)
        out[name] = default.model_dump(mode="json") if hasattr(default, "model_dump") else default
    return out


def resource_name(attrs: Mapping[str, Any]) -> str:
    """metadata.name: `project-service` for a compose container, else its engine name."""
    labels = (attrs.get("Config") or {}).get("Labels") or {}
    project, service = labels.get(_COMPOSE_PROJECT), labels.get(_COMPOSE_SERVICE)
    if project and service:
        p, s = dns_name(project), dns_name(service)
        return s if p == s else dns_name(f"{p}-{s}")
    name = str(attrs.get("Name", "")).lstrip("/")
    return dns_name(name.removeprefix("homelab-"))


def _env(entries: list[dict[str, Any]]) -> Any:
    if all(e.get("valueFrom") is None for e in entries):
        return {e["name"]: e["value"] for e in entries}
    return [
        {"name": e["name"], "valueFrom": {"secret": e["valueFrom"]["secret"]}}
        if e.get("valueFrom")
        else {"name": e["name"], "value": e["value"]}
        for e in entries
    ]


def _networks(attrs: Mapping[str, Any]) -> list[dict[str, Any]]:
    short = str(attrs.get("Id", ""))[:12]
    # The engine's own aliases: the short id and the hostname (default: the short id).
    own = {short, str((attrs.get("Config") or {}).get("Hostname") or short)}
    out = []
    for name, endpoint in ((attrs.get("NetworkSettings") or {}).get("Networks") or {}).items():
        if name in PREDEFINED_NETWORKS:
            continue
        endpoint = endpoint or {}
        aliases = sorted({str(a) for a in endpoint.get("Aliases") or [] if a not in own})
        attachment: dict[str, Any] = {"network": name, "aliases": aliases}
        ipv4 = (endpoint.get("IPAMConfig") or {}).get("IPv4Address")
        if ipv4:
            attachment["ipv4Address"] = ipv4
        out.append(attachment)
    return sorted(out, key=lambda a: a["network"])


def _volumes(spec: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for mount in spec.get("volumes") or []:
        key = "source" if str(mount.get("source") or "").startswith("/") else "volume"
        entry = {key: mount.get("source") or mount.get("volume"), "target": mount["target"]}
        if mount.get("subpath"):
            entry["subpath"] = mount["subpath"]
        if mount.get("readOnly"):
            entry["readOnly"] = True
        out.append(entry)
    return out


def _ports(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Ports without the keys at their defaults (tcp, no host IP, no host port)."""
    out = []
    for port in spec.get("ports") or []:
        entry = {"containerPort": port["containerPort"]}
        if port.get("hostPort") is not None:
            entry["hostPort"] = port["hostPort"]
        if port.get("protocol", "tcp") != "tcp":
            entry["protocol"] = port["protocol"]
        if port.get("hostIP"):
            entry["hostIP"] = port["hostIP"]
        out.append(entry)
    return out


class DockerMapper:
    """Collects the manifests of one node's containers (`add`), then `result()`."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.out = ImportResult()
        self._defaults = _defaults()
        self._networks: dict[str, Mapping[str, Any]] = {}
        self._volumes: dict[str, Mapping[str, Any]] = {}

    def add(
        self,
        attrs: Mapping[str, Any],
        image: Mapping[str, Any] | None,
        networks: Mapping[str, Mapping[str, Any]],
        volumes: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """One container (inspect), its image and the inspects of networks and volumes by name."""
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        engine_name = str(attrs.get("Name", "")).lstrip("/")
        if labels.get("homelab.reconciler/managed-by") == MANAGED_BY:
            self.out.warnings.append(f"container {engine_name}: managed by homelab already")
            return
        observed = observed_container_spec(
            dict(attrs), dict(image) if image else None, None, self.node
        )
        spec = self._spec(observed, attrs)
        name = resource_name(attrs)
        depends = []
        for attachment in spec.get("networks") or []:
            network = networks.get(attachment["network"])
            if network is not None:
                self._networks[attachment["network"]] = network
                depends.append(f"Network/{dns_name(attachment['network'])}")
        for mount in spec.get("volumes") or []:
            if "volume" not in mount:
                continue
            if _ANONYMOUS.match(mount["volume"]):
                self.out.warnings.append(
                    f"container {engine_name}: {mount['target']}: an anonymous volume is not "
                    "imported (the manifest mounts it by its id; give it a name)"
                )
                continue
            volume = volumes.get(mount["volume"])
            if volume is not None:
                self._volumes[mount["volume"]] = volume
                depends.append(f"Volume/{dns_name(mount['volume'])}")
        if depends:
            spec["dependsOn"] = sorted(set(depends))
        ignored = ignore_compose_labels(labels)
        if ignored:
            spec["policy"] = {"ignoreDifferences": ignored}
        short = str(attrs.get("Id", ""))[:12]
        self.out.add(
            f"{self.node}/{name}.yaml",
            Imported(
                "Container",
                name,
                spec,
                f"container {short} on node {self.node}",
                f"docker:{self.node}/{engine_name}",
            ),
        )

    def _spec(self, observed: dict[str, Any], attrs: Mapping[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = {"node": self.node}
        engine_name = str(attrs.get("Name", "")).lstrip("/")
        if engine_name != f"homelab-{resource_name(attrs)}":
            spec["containerName"] = engine_name
        for key, value in observed.items():
            if key in ("node", "state") and value in (self.node, "running"):
                continue
            if key in self._defaults and self._defaults[key] == value:
                continue
            spec[key] = value
        if "env" in spec:
            spec["env"] = _env(spec["env"])
        if "labels" in spec:
            kept = {
                k: v for k, v in spec["labels"].items() if not k.startswith(COMPOSE_LABEL_PREFIX)
            }
            spec["labels"] = kept
            if not kept:
                del spec["labels"]
        networks = _networks(attrs)
        if networks:
            spec["networks"] = networks
            spec.pop("networkMode", None)
        if "volumes" in spec:
            spec["volumes"] = _volumes(spec)
        if "ports" in spec:
            spec["ports"] = _ports(spec)
        return ordered_spec(spec)

    def result(self) -> ImportResult:
        for name, attrs in sorted(self._networks.items()):
            self.out.add(f"{self.node}/networks.yaml", self._network(name, attrs))
        for name, attrs in sorted(self._volumes.items()):
            self.out.add(f"{self.node}/volumes.yaml", self._volume(name, attrs))
        return self.out

    def _network(self, name: str, attrs: Mapping[str, Any]) -> Imported:
        labels = dict(attrs.get("Labels") or {})
        spec: dict[str, Any] = {"node": self.node, "name": name}
        if attrs.get("Driver") not in (None, "bridge"):
            spec["driver"] = attrs["Driver"]
        for key, field in (("Internal", "internal"), ("Attachable", "attachable")):
            if attrs.get(key):
                spec[field] = True
        own = {k: v for k, v in labels.items() if not k.startswith(COMPOSE_LABEL_PREFIX)}
        if own:
            spec["labels"] = own
        if attrs.get("Options"):
            spec["options"] = dict(attrs["Options"])
        ignored = ignore_compose_labels(labels)
        if ignored:
            spec["policy"] = {"ignoreDifferences": ignored}
        short = str(attrs.get("Id", ""))[:12]
        return Imported(
            "Network",
            dns_name(name),
            spec,
            f"network {short} on node {self.node}",
            f"docker:{self.node}/networks/{name}",
        )

    def _volume(self, name: str, attrs: Mapping[str, Any]) -> Imported:
        labels = dict(attrs.get("Labels") or {})
        spec: dict[str, Any] = {"node": self.node, "name": name}
        if attrs.get("Driver") not in (None, "local"):
            spec["driver"] = attrs["Driver"]
        if attrs.get("Options"):
            spec["driverOpts"] = dict(attrs["Options"])
        own = {k: v for k, v in labels.items() if not k.startswith(COMPOSE_LABEL_PREFIX)}
        if own:
            spec["labels"] = own
        ignored = ignore_compose_labels(labels)
        if ignored:
            spec["policy"] = {"ignoreDifferences": ignored}
        return Imported(
            "Volume",
            dns_name(name),
            spec,
            f"volume {name} on node {self.node}",
            f"docker:{self.node}/volumes/{name}",
        )
