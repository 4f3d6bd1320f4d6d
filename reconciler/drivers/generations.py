"""Container generations of a safe replace: their engine names and the decisions on them.

A replace keeps the old container beside the new one until the new one has
proved itself (`reconciler.drivers.safe_replace`). While it runs, a
resource's containers are told apart by name alone, since the engine cannot
relabel a container: the one at the resource's container name (`homelab-web`)
is the resource; `homelab-web.old-<action>` is the previous generation
(renamed there by action `<action>`, the first 12 characters of its id), and
`homelab-web.failed-<action>` a new generation that failed and is being
removed while the old one is restored. Neither is ever the resource: the
collector skips both (`is_leftover`), and a restarted executor reads from
these names, and from the `replaces-state` label that the new generation
carries, where an interrupted replace stopped. `needs_stop` decides whether
the old container must stop before the new one starts (it holds host ports,
a static address or a device the new one needs). Pure functions, no I/O;
used by the Docker driver and the Docker collector.
"""

from __future__ import annotations

from typing import Any

OLD = ".old-"
FAILED = ".failed-"
PREFIX = "homelab.reconciler"
REPLACES_LABEL = f"{PREFIX}/replaces"  # on a new generation: the id of the old container
REPLACES_STATE_LABEL = f"{PREFIX}/replaces-state"  # its run state when the replace began
_ANY_IP = ("", "0.0.0.0", "::")


def short_action(action_id: str) -> str:
    return action_id[:12]


def old_name(cname: str, action_id: str) -> str:
    """Where action `action_id` parks the previous generation of `cname`."""
    return f"{cname}{OLD}{short_action(action_id)}"


def failed_name(cname: str, action_id: str) -> str:
    """Where action `action_id` parks its own new generation when it failed."""
    return f"{cname}{FAILED}{short_action(action_id)}"


def is_leftover(engine_name: str) -> bool:
    """True for a parked generation (`.old-` or `.failed-`): never a resource's container."""
    name = engine_name.lstrip("/")
    return OLD in name or FAILED in name


def generation_of(engine_name: str, cname: str) -> tuple[str, str] | None:
    """("old"|"failed", short action id) for a parked generation of `cname`, else None."""
    name = engine_name.lstrip("/")
    for marker, what in ((OLD, "old"), (FAILED, "failed")):
        head = f"{cname}{marker}"
        if name.startswith(head) and name[len(head) :]:
            return what, name[len(head) :]
    return None


def name_filter(cname: str) -> str:
    """The engine's `name` filter (a regular expression) for the parked generations."""
    escaped = "".join(f"\\{c}" if not c.isalnum() else c for c in cname)
    return f"^/{escaped}\\.(old|failed)-"


def _bindings(attrs: dict[str, Any]) -> set[tuple[str, str, str]]:
    """(protocol, host port, host IP) of the old container's published ports."""
    out = set()
    bindings = (attrs.get("HostConfig") or {}).get("PortBindings") or {}
    for key, hosts in bindings.items():
        proto = key.split("/", 1)[1] if "/" in key else "tcp"
        for host in hosts or []:
            port = str(host.get("HostPort") or "")
            if port:
                out.add((proto, port, str(host.get("HostIp") or "")))
    return out


def _wanted_ports(spec: dict[str, Any]) -> set[tuple[str, str, str]]:
    out = set()
    for port in spec.get("ports") or []:
        if port.get("hostPort"):
            host_ip = str(port.get("hostIP") or "")
            out.add((str(port.get("protocol") or "tcp"), str(port["hostPort"]), host_ip))
    return out


def _overlap(held: set[tuple[str, str, str]], wanted: set[tuple[str, str, str]]) -> list[str]:
    found = []
    for proto, port, ip in sorted(wanted):
        for h_proto, h_port, h_ip in held:
            if (proto, port) == (h_proto, h_port) and (
                ip in _ANY_IP or h_ip in _ANY_IP or ip == h_ip
            ):
                found.append(f"host port {port}/{proto}")
                break
    return found


def _device_paths(spec: dict[str, Any]) -> set[str]:
    out = set()
    for dev in spec.get("devices") or []:
        if isinstance(dev, dict):
            out.add(str(dev.get("hostPath") or ""))
        elif isinstance(dev, str):
            out.add(dev.split(":", 1)[0])
    return out - {""}


def _static_addresses(attrs: dict[str, Any]) -> dict[str, str]:
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    out = {}
    for net, info in networks.items():
        ipam = (info or {}).get("IPAMConfig") or {}
        if ipam.get("IPv4Address"):
            out[net] = str(ipam["IPv4Address"])
    return out


def needs_stop(old_attrs: dict[str, Any], spec: dict[str, Any]) -> list[str]:
    """What the old container holds that the new one (comparable spec) needs; [] = none.

    Host network on both sides (or on one side, with published ports on the
    other) counts as a conflict: the ports a host-network service binds are
    not declared anywhere, and a new one that cannot bind would only crash.
    """
    held = _bindings(old_attrs)
    reasons = _overlap(held, _wanted_ports(spec))
    old_mode = str((old_attrs.get("HostConfig") or {}).get("NetworkMode") or "")
    new_mode = str(spec.get("networkMode") or "bridge")
    if (new_mode == "host" and (old_mode == "host" or held)) or (
        old_mode == "host" and _wanted_ports(spec)
    ):
        reasons.append("the host network")
    old_devices = {
        str(d.get("PathOnHost") or "")
        for d in (old_attrs.get("HostConfig") or {}).get("Devices") or []
    }
    reasons += [f"device {path}" for path in sorted(_device_paths(spec) & old_devices)]
    statics = _static_addresses(old_attrs)
    for net in spec.get("networks") or []:
        name = net.get("network") if isinstance(net, dict) else None
        address = net.get("ipv4Address") if isinstance(net, dict) else None
        if name and address and statics.get(name) == address:
            reasons.append(f"address {address} on {name}")
    return reasons


def run_state_label(attrs: dict[str, Any]) -> str:
    """`running` (or paused) or `stopped`: what a rollback brings the old container back to."""
    state = attrs.get("State") or {}
    return "running" if state.get("Running") or state.get("Paused") else "stopped"
