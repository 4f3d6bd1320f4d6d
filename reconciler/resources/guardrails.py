"""The guard rails: which Container options reach the host, judged by meaning.

A bind source is judged by the path it names on the node, not by its text:
it is normalised (`//`, `.` and `..` collapsed, `/var/run` read as `/run`)
and, through the `PathResolver` the caller passes in, resolved on the node
(symlinks followed, file identity read) where that node's filesystem can be
read. Each rule has a short id (docs/guardrails.md lists them); a finding
names the rule, the spec field and the value. Pure: the only I/O is the
resolver the caller gives. Called by the planner (through
`reconciler.planning.guardrails`) and by the executor and the Docker
driver (through `reconciler.drivers.hostpaths`), so a plan and an apply are
judged by the same rules.
"""

from __future__ import annotations

import functools
import posixpath
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SOCKET_NAMES = frozenset(
    {"docker.sock", "containerd.sock", "podman.sock", "crio.sock", "dockershim.sock"}
)
KNOWN_SOCKETS = (
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
    "/run/crio/crio.sock",
    "/run/dockershim.sock",
)
# Whole trees that hold engine sockets or engine state: refused with anything inside.
SOCKET_TREES = ("/run/docker", "/run/containerd", "/run/podman", "/run/crio")
HOST_TREES = (
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/root",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/var/lib/containers",
    "/var/lib/kubelet",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh",
    "/run/systemd",
    "/run/dbus",
)
# Refused themselves (and every folder above them), but not what is inside:
# /etc/localtime or /home/me/media stay ordinary binds.
HOST_ROOTS = ("/etc", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/home", "/var/lib", "/run")
CAPABILITIES = frozenset(
    {
        "ALL",
        "SYS_ADMIN",
        "SYS_MODULE",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_BOOT",
        "SYS_TIME",
        "DAC_READ_SEARCH",
        "NET_ADMIN",
        "BPF",
        "PERFMON",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
    }
)
NAMESPACES = ("pidMode", "ipcMode", "utsMode", "usernsMode", "cgroup")
# Whole disks and partitions, by the kernel's names; character devices
# (/dev/dri, /dev/ttyUSB0, /dev/net/tun) stay ordinary.
BLOCK_DEVICE = re.compile(
    r"^/dev/(sd[a-z]+\d*|hd[a-z]+\d*|vd[a-z]+\d*|xvd[a-z]+\d*|nvme\d+(n\d+(p\d+)?)?|"
    r"mmcblk\d+(p\d+)?|loop\d+|md\d+|dm-\d+|nbd\d+|mapper/.+|disk/.+)$"
)
# Character devices that are the host's memory, I/O ports or kernel log.
HOST_MEMORY_DEVICES = frozenset({"/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg"})
# securityOpt values that turn a confinement off.
UNCONFINED = frozenset(
    {
        "seccomp=unconfined",
        "apparmor=unconfined",
        "label=disable",
        "label=type:spc_t",
        "label=type:unconfined_t",
        "systempaths=unconfined",
    }
)


@dataclass(frozen=True)
class HostPath:
    """A path as the node sees it: symlinks followed, and the file's identity if it exists."""

    path: str
    identity: tuple[int, int] | None = None  # (st_dev, st_ino)


PathResolver = Callable[[str], HostPath]


def lexical(path: str) -> HostPath:
    """The resolver for a node whose filesystem cannot be read from here."""
    return HostPath(path)


@dataclass(frozen=True)
class Finding:
    """One refused option: the rule's id, the spec field (as written), and why."""

    rule: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: [{self.rule}] {self.message}"


def normalize_path(path: str) -> str:
    """Collapse `//`, `.` and `..` the way the kernel walks an absolute path."""
    text = posixpath.normpath("/" + path.lstrip("/"))
    text = "/" + text.lstrip("/")  # normpath keeps a leading `//`
    if text == "/var/run" or text.startswith("/var/run/"):
        text = "/run" + text[len("/var/run") :]  # a symlink to /run on every modern distro
    return text


def normalize_capability(name: str) -> str:
    text = name.strip().upper()
    return text.removeprefix("CAP_")


@functools.lru_cache(maxsize=4096)
def _ancestors(path: str) -> frozenset[str]:
    """`path` and every folder above it (a normalised absolute path)."""
    out = {path}
    while path != "/":
        path = posixpath.dirname(path)
        out.add(path)
    return frozenset(out)


_HOST_TREES = frozenset(HOST_TREES)
_SOCKET_TREES = frozenset(SOCKET_TREES)
# Every folder that is a host root or above one: binding it exposes that root.
_ABOVE_HOST_ROOTS = frozenset().union(*(_ancestors(r) for r in HOST_ROOTS))


def _socket_reason(path: str, sockets: Iterable[str]) -> str | None:
    if posixpath.basename(path) in SOCKET_NAMES:
        return "an engine socket"
    for socket in sockets:
        if path == socket:
            return "the node's engine socket" if socket not in KNOWN_SOCKETS else "an engine socket"
        if path in _ancestors(socket):
            return f"a folder that contains the engine socket {socket}"
    above = _ancestors(path)
    for tree in SOCKET_TREES if _SOCKET_TREES & above else ():
        if tree in above:
            return f"the engine's runtime folder {tree}"
    return None


def _host_reason(path: str) -> str | None:
    if path == "/":
        return "the host's root folder"
    above = _ancestors(path)
    for tree in HOST_TREES if _HOST_TREES & above else ():
        if tree in above:
            return f"the host's {tree}"
    if path in _ABOVE_HOST_ROOTS:
        return f"a host system folder ({path})"
    return None


def _candidates(source: str, resolve: PathResolver) -> tuple[list[str], tuple[int, int] | None]:
    """The normalised path and, where the node can be read, where it really leads."""
    plain = normalize_path(source)
    real = resolve(source)
    paths = [plain]
    resolved = normalize_path(real.path)
    if resolved != plain:
        paths.append(resolved)
    return paths, real.identity


def _bind(
    index: int,
    source: str,
    sockets: tuple[str, ...],
    socket_ids: set[tuple[int, int]],
    resolve: PathResolver,
) -> list[Finding]:
    field = f"spec.volumes[{index}].source"
    paths, identity = _candidates(source, resolve)
    shown = source if paths[-1] == source else f"{source} (that is {paths[-1]})"
    found = []
    reasons = [r for p in paths if (r := _socket_reason(p, sockets))]
    if identity is not None and identity in socket_ids:
        reasons.append("the node's engine socket under another name")
    if reasons:
        found.append(Finding("docker-socket", field, f"bind of {shown}: {reasons[0]}"))
    host = [r for p in paths if (r := _host_reason(p))]
    if host:
        found.append(Finding("host-root", field, f"bind of {shown}: {host[0]}"))
    return found


def container_findings(
    spec: Mapping[str, Any],
    *,
    node_sockets: Iterable[str] = (),
    resolve: PathResolver = lexical,
) -> list[Finding]:
    """Every guard-rail finding for a Container spec (plain data: manifest or action).

    `node_sockets` are the unix socket paths of the node's own engine (from its
    `dockerHost`); `resolve` maps a bind source to where it leads on the node.
    """
    found: list[Finding] = []
    if spec.get("privileged"):
        found.append(Finding("privileged", "spec.privileged", "privileged mode"))
    for key in NAMESPACES:
        if spec.get(key) == "host":
            what = {"usernsMode": "user", "cgroup": "cgroup"}.get(key, key.removesuffix("Mode"))
            what = what.upper() if key in ("pidMode", "ipcMode", "utsMode") else what
            found.append(Finding("host-namespace", f"spec.{key}", f"the host's {what} namespace"))
    found.extend(_device_findings(spec, resolve))
    for index, option in enumerate(spec.get("securityOpt") or []):
        text = str(option).strip().replace(":", "=", 1)
        if text in UNCONFINED:
            found.append(
                Finding("security-opt", f"spec.securityOpt[{index}]", f"{option}: no confinement")
            )
    for index, cap in enumerate(spec.get("capAdd") or []):
        name = normalize_capability(str(cap))
        if name in CAPABILITIES:
            found.append(
                Finding("dangerous-capability", f"spec.capAdd[{index}]", f"capability {name}")
            )
    own = [normalize_path(s) for s in node_sockets]
    sockets = tuple(dict.fromkeys([*own, *KNOWN_SOCKETS]))  # the node's own named first
    socket_ids = {i for s in node_sockets if (i := resolve(s).identity) is not None}
    for index, volume in enumerate(spec.get("volumes") or []):
        source = str(volume.get("source") or "") if isinstance(volume, Mapping) else ""
        if source.startswith("/"):
            found.extend(_bind(index, source, sockets, socket_ids, resolve))
    return found


def _device_reason(path: str) -> str | None:
    if path == "/dev" or not path.startswith("/dev/"):
        return f"{path} is not one device under /dev"
    if BLOCK_DEVICE.match(path):
        return f"{path}: a block disk of the host"
    if path in HOST_MEMORY_DEVICES:
        return f"{path}: the host's memory, I/O ports or kernel log"
    return None


def _device_findings(spec: Mapping[str, Any], resolve: PathResolver) -> list[Finding]:
    """`devices` of whole /dev, host disks or host memory; cgroup rules that allow them."""
    found = []
    for index, device in enumerate(spec.get("devices") or []):
        host = str(device.get("hostPath") or "") if isinstance(device, Mapping) else str(device)
        written = host.split(":", 1)[0]
        paths, _ = _candidates(written, resolve)
        # Where it really leads, by every rule; the written path too for disks and memory.
        reason = _device_reason(paths[-1])
        if reason is None and len(paths) > 1 and _device_reason(paths[0]):
            reason = _device_reason(paths[0]) if paths[0].startswith("/dev/") else None
        if reason:
            shown = f"{written} (that is {paths[-1]}): " if paths[-1] != written else ""
            found.append(Finding("host-device", f"spec.devices[{index}].hostPath", shown + reason))
    for index, rule in enumerate(spec.get("deviceCgroupRules") or []):
        kind, _, rest = str(rule).partition(" ")
        if kind in ("a", "b") or rest.startswith("*"):
            what = "every device" if kind == "a" or rest.startswith("*") else "block devices"
            found.append(
                Finding("host-device", f"spec.deviceCgroupRules[{index}]", f"{rule!r}: {what}")
            )
    return found


def refusal(name: str, findings: list[Finding]) -> str:
    """The message for a refused Container: rules, fields and how to allow it."""
    listed = "; ".join(str(f) for f in findings)
    return (
        f"Container/{name} refused by the guard rails: {listed}. If this container really "
        f"needs it, allow it with allowDangerous: [{name}] in homelab.yaml "
        "(see docs/guardrails.md)"
    )
