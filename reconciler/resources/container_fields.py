"""The Container fields a compose file writes, beyond the first few (compose parity).

`ContainerFields` is the base of `ContainerSpec` (reconciler.resources.kinds):
every field here has a default that means "not set", and `compact` drops
unset values from the comparable spec, so a manifest that sets none of them
keeps the comparable spec (and the spec hash) it always had. Values are
normalized where the engine would store them differently: sizes to bytes
(`64Mi`, `512m`, `1g`, docker's 1024-based units), cpus to a number (`1.5`,
`"1500m"`), durations to seconds, compose's shorthands (`"/dev/dri:/dev/dri"`,
`"host:ip"`, `"/run:size=64m"`, `nofile: 1024`) to their long form. The
names are the camelCase of the compose properties (docs/compose-fields.md).
Pure: no I/O. The Docker driver maps them to the engine
(reconciler.drivers.container_fields) and observes them back.
"""

from __future__ import annotations

import math
import posixpath
import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from reconciler.resources.meta import DnsLabel, StrictModel

# ---------------------------------------------------------------------------
# Units

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)$", re.IGNORECASE)
_SIZE_FACTOR = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(value: Any) -> int:
    """Bytes of `64Mi`, `512m`, `1g`, `1.5G`, `2048` (docker's units: all 1024-based)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a size like 64Mi, 512m or 1g, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"a size must not be negative, got {value}")
        return value
    if isinstance(value, str):
        match = _SIZE.match(value.strip())
        if match:
            number, unit, _binary, _b = match.groups()
            return int(float(number) * _SIZE_FACTOR[unit.lower()])
    raise ValueError(f"expected a size like 64Mi, 512m or 1g (bytes: 1024-based), got {value!r}")


_SIZE_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0},
        {"type": "string", "pattern": r"^\d+(\.\d+)?\s*([kKmMgGtTpP]i?)?[bB]?$"},
    ],
    "description": "Bytes, or a size like 64Mi, 512m, 1g (1024-based, as docker reads it).",
}
Size = Annotated[int, BeforeValidator(parse_size), WithJsonSchema(_SIZE_SCHEMA)]


def _signed_size(value: Any) -> Any:
    """A size, or -1 (unlimited), as memorySwap takes it."""
    if value == -1 or value == "-1":
        return -1
    return parse_size(value)


SwapSize = Annotated[
    int,
    BeforeValidator(_signed_size),
    WithJsonSchema({"anyOf": [_SIZE_SCHEMA, {"const": -1}], "description": "A size, or -1."}),
]


def _number(value: float) -> int | float:
    """2.0 -> 2, so desired and observed serialize alike."""
    return int(value) if float(value).is_integer() else float(value)


def parse_cpus(value: Any) -> int | float:
    """`1.5`, `"1.5"`, `"1500m"` (milli-cpus, as Kubernetes writes them) -> 1.5."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number of cpus like 1.5, got {value!r}")
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
        except ValueError:
            number = None
    if number is None or number != number or number <= 0 or number > 1024:
        raise ValueError(f"expected a number of cpus like 1.5 or '500m' (0 < cpus), got {value!r}")
    return _number(round(number, 9))


Cpus = Annotated[
    float,
    BeforeValidator(parse_cpus),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "exclusiveMinimum": 0},
                {"type": "string", "pattern": r"^\d+(\.\d+)?m?$"},
            ],
            "description": "CPUs: 1.5, or milli-cpus like '500m'.",
        }
    ),
]

_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?$")


def parse_duration(value: Any) -> int | float:
    """Seconds of `10`, `"10s"`, `"1m30s"`, `"1.5s"`, `"500ms"` (compose durations)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 10s or 1m30s, got {value!r}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"a duration must not be negative, got {value}")
        return _number(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return parse_duration(float(text))
        except ValueError:
            pass
        match = _DURATION.match(text)
        if match and text:
            hours, minutes, seconds, millis = match.groups()
            total = (
                int(hours or 0) * 3600
                + int(minutes or 0) * 60
                + float(seconds or 0)
                + int(millis or 0) / 1000
            )
            return _number(round(total, 3))
    raise ValueError(f"expected a duration like 10s, 1m30s or a number of seconds, got {value!r}")


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^(\d+h)?(\d+m)?(\d+(\.\d+)?s)?(\d+ms)?$|^\d+$"},
            ],
            "description": "Seconds, or a duration like 10s, 1m30s, 500ms.",
        }
    ),
]

# ---------------------------------------------------------------------------
# Names and shorthands

_CONTAINER_NAME = re.compile(r"^/?[a-zA-Z0-9][a-zA-Z0-9_.-]{0,253}$")


def _container_name(value: Any) -> Any:
    if isinstance(value, str) and _CONTAINER_NAME.match(value):
        return value.lstrip("/")
    raise ValueError(
        f"containerName {value!r} is not a container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
    )


ContainerName = Annotated[str, BeforeValidator(_container_name)]


def _repo_path(value: Any) -> Any:
    """A path inside the repository, as `File.source` takes it (no `..`, not absolute)."""
    if not isinstance(value, str):
        return value
    parts = value.split("/")
    if value.startswith("/") or ".." in parts or not value.strip() or "\x00" in value:
        raise ValueError(f"{value!r} must be a relative path inside the repository (no '..')")
    return "/".join(p for p in parts if p not in ("", "."))


_PERMISSIONS = re.compile(r"^(?!.*(.).*\1)[rwm]{1,3}$")


def _device(value: Any) -> Any:
    """Accept "/dev/dri", "/dev/ttyUSB0:/dev/zigbee" and "host:container:rwm"."""
    if not isinstance(value, str):
        return value
    parts = value.split(":")
    if len(parts) > 3 or not parts[0]:
        raise ValueError(f"device {value!r}: expected HOST[:CONTAINER[:PERMISSIONS]]")
    out: dict[str, Any] = {"hostPath": parts[0]}
    if len(parts) >= 2:
        if _PERMISSIONS.match(parts[1]) and len(parts) == 2:
            out["permissions"] = parts[1]
        else:
            out["containerPath"] = parts[1]
    if len(parts) == 3:
        out["permissions"] = parts[2]
    return out


class Device(StrictModel):
    """A host device in the container (compose `devices:`)."""

    hostPath: str = Field(description="The device on the node, e.g. /dev/dri or /dev/ttyUSB0.")
    containerPath: str | None = Field(default=None, description="Default: hostPath.")
    permissions: str = Field(default="rwm", description="Any of r, w, m (read, write, mknod).")

    @model_validator(mode="after")
    def _check(self) -> Device:
        for key in ("hostPath", "containerPath"):
            path = getattr(self, key)
            if path is not None and (not path.startswith("/") or "\x00" in path):
                raise ValueError(f"{key} {path!r} must be an absolute path")
        if not _PERMISSIONS.match(self.permissions):
            raise ValueError(f"permissions {self.permissions!r}: expected r, w, m (e.g. rwm)")
        if self.containerPath is None:
            object.__setattr__(self, "containerPath", self.hostPath)
        perms = "".join(c for c in "rwm" if c in self.permissions)
        object.__setattr__(self, "permissions", perms)
        return self


class Resources(StrictModel):
    """Resource limits (compose `mem_limit`, `cpus`, `pids_limit`..., `deploy.resources`)."""

    memory: Size | None = Field(default=None, description="Hard memory limit (mem_limit).")
    memoryReservation: Size | None = Field(default=None, description="Soft limit.")
    memorySwap: SwapSize | None = Field(
        default=None, description="Memory plus swap (memswap_limit); -1: unlimited swap."
    )
    memorySwappiness: int | None = Field(default=None, ge=0, le=100)
    cpus: Cpus | None = Field(default=None, description="CPUs, e.g. 1.5.")
    cpuShares: int | None = Field(default=None, ge=2, le=262144, description="Relative weight.")
    cpuset: str | None = Field(
        default=None, pattern=r"^\d+(-\d+)?(,\d+(-\d+)?)*$", description="CPUs allowed: 0-2,4"
    )
    cpuPeriod: int | None = Field(default=None, ge=1000, le=1_000_000, description="µs")
    cpuQuota: int | None = Field(default=None, ge=1000, description="µs per cpuPeriod")
    pids: int | None = Field(default=None, ge=-1, description="Max processes (pids_limit).")
    oomKillDisable: bool | None = None
    oomScoreAdj: int | None = Field(default=None, ge=-1000, le=1000)

    @model_validator(mode="after")
    def _check(self) -> Resources:
        if self.pids == 0:
            raise ValueError("pids: 0 means no limit to the engine; leave it out or use -1")
        if self.memory is not None and self.memory < 6 * (1 << 20):
            raise ValueError(f"memory {self.memory} bytes is below the engine's minimum of 6Mi")
        if self.memorySwap not in (None, -1):
            if self.memory is None:
                raise ValueError("memorySwap needs memory")
            if self.memorySwap < self.memory:
                raise ValueError("memorySwap (memory plus swap) must be at least memory")
        return self


class Logging(StrictModel):
    """Where the container's output goes (compose `logging:`)."""

    driver: str = Field(default="json-file", pattern=r"^[a-z0-9][a-z0-9_.:/-]*$")
    options: dict[str, str] = Field(default_factory=dict)

    @field_validator("options", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): _text(v) for k, v in value.items()}
        return value


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_IPV4 = r"(\d{1,3}\.){3}\d{1,3}"
_IP = re.compile(rf"^({_IPV4}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*|host-gateway)$")


def _extra_hosts(value: Any) -> Any:
    """Accept compose's list ("host:ip", "host=ip") and map ({host: ip}) forms."""
    if isinstance(value, dict):
        items: list[Any] = []
        for host, ips in value.items():
            for ip in ips if isinstance(ips, list) else [ips]:
                items.append({"hostname": str(host), "ip": str(ip)})
        return items
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            if isinstance(item, str):
                sep = "=" if "=" in item else ":"
                host, found, ip = item.partition(sep)
                if not found:
                    raise ValueError(f"extraHosts {item!r}: expected HOST:IP")
                out.append({"hostname": host, "ip": ip.strip("[]")})
            else:
                out.append(item)
        return out
    return value


class ExtraHost(StrictModel):
    hostname: str
    ip: str

    @model_validator(mode="after")
    def _check(self) -> ExtraHost:
        if not _HOSTNAME.match(self.hostname):
            raise ValueError(f"extraHosts: {self.hostname!r} is not a host name")
        if not _IP.match(self.ip):
            raise ValueError(f"extraHosts {self.hostname}: {self.ip!r} is not an IP address")
        return self


class Ulimit(StrictModel):
    soft: int = Field(ge=-1)
    hard: int = Field(ge=-1)

    @model_validator(mode="after")
    def _check(self) -> Ulimit:
        if self.hard != -1 and (self.soft == -1 or self.soft > self.hard):
            raise ValueError(f"ulimit soft {self.soft} is above hard {self.hard}")
        return self


def _ulimit(value: Any) -> Any:
    """`nofile: 1024` is soft = hard = 1024."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"soft": value, "hard": value}
    return value


_ULIMIT_NAMES = frozenset(
    [
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
        "as",
    ]
)


def _tmpfs(value: Any) -> Any:
    """Accept "/run", "/run:size=64m,mode=1777" and a map {target: options}."""
    if isinstance(value, str):
        target, _, options = value.partition(":")
        out: dict[str, Any] = {"target": target}
        for option in filter(None, options.split(",")):
            key, _, raw = option.partition("=")
            if key in ("size", "mode"):
                out[key] = raw
            else:
                raise ValueError(f"tmpfs {value!r}: only size= and mode= are understood")
        return out
    return value


class Tmpfs(StrictModel):
    target: str
    size: Size | None = None
    mode: str | None = Field(default=None, description="Octal, e.g. 1777.")

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is None:
            return None
        if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3,4}", value):
            return value.lstrip("0").rjust(3, "0") if len(value) > 3 else value
        raise ValueError(f"tmpfs mode {value!r}: expected octal like 1777 or 0755")

    @model_validator(mode="after")
    def _check(self) -> Tmpfs:
        if not self.target.startswith("/"):
            raise ValueError(f"tmpfs target {self.target!r} must be an absolute path")
        return self


_SIGNAL = re.compile(r"^(SIG[A-Z0-9+-]+|[A-Z][A-Z0-9+-]*|\d{1,2})$")


def _signal(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and _SIGNAL.match(value.upper()):
        text = value.upper()
        return text if text.isdigit() or text.startswith("SIG") else "SIG" + text
    raise ValueError(f"stopSignal {value!r}: expected a signal like SIGTERM or 15")


Signal = Annotated[str, BeforeValidator(_signal)]

_MODE = re.compile(r"^(host|private|shareable|none|container:[a-zA-Z0-9][a-zA-Z0-9_.-]*)$")
_MAC = re.compile(r"^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(/[a-z0-9]+)?$")
_SYSCTL = re.compile(r"^[a-z0-9_]+(\.[a-zA-Z0-9_-]+)+$")
_CGROUP_RULE = re.compile(r"^[acb] (\d+|\*):(\d+|\*) [rwm]{1,3}$")
_VOLUMES_FROM = re.compile(r"^(container:)?[a-zA-Z0-9][a-zA-Z0-9_.-]*(:(ro|rw))?$")


def _string_list(value: Any) -> Any:
    """A compose field that takes a string or a list of strings."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list):
        return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
    return value


StringList = Annotated[list[str], BeforeValidator(_string_list)]


def _sysctls(value: Any) -> Any:
    """Accept the map and compose's list ("net.core.somaxconn=1024")."""
    if isinstance(value, list):
        out = {}
        for item in value:
            key, found, raw = str(item).partition("=")
            if not found:
                raise ValueError(f"sysctls {item!r}: expected NAME=VALUE")
            out[key] = raw
        return out
    if isinstance(value, dict):
        return {str(k): _text(v) for k, v in value.items()}
    return value


def _healthcheck_test(value: Any) -> Any:
    """Compose's string form is CMD-SHELL; `["NONE"]` disables the image's check."""
    if isinstance(value, str):
        return ["CMD-SHELL", value]
    return value


class HealthcheckFields(StrictModel):
    """What `healthcheck` takes beyond test/interval/timeout/retries/startPeriod."""

    disable: bool = Field(default=False, description="Turn the image's HEALTHCHECK off.")


def _secret_mount(value: Any) -> Any:
    """Accept the shorthand "db-pass" for {secret: db-pass}."""
    return {"secret": value} if isinstance(value, str) else value


class SecretMount(StrictModel):
    """A file from ROOT/secrets/<secret> in the container (compose `secrets:`).

    Copied into the container before it starts (so it works on remote nodes
    too); its value never enters git, events, world documents or the UI:
    the comparable spec holds its fingerprint.
    """

    secret: DnsLabel = Field(description="A file under ROOT/secrets/.")
    target: str | None = Field(default=None, description="Default /run/secrets/<secret>.")
    mode: str = Field(default="0444", description="File mode, e.g. '0400'.")

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3}", value):
            return "0" + value[-3:]
        raise ValueError(f"secret mode {value!r}: expected octal like '0400'")

    @model_validator(mode="after")
    def _target(self) -> SecretMount:
        target = self.target or f"/run/secrets/{self.secret}"
        if not target.startswith("/") or target.endswith("/") or "\x00" in target:
            raise ValueError(f"secret target {target!r} must be an absolute file path")
        object.__setattr__(self, "target", posixpath.normpath(target))
        return self


def _mode_value(value: str | None, field: str) -> str | None:
    if value is not None and not _MODE.match(value):
        raise ValueError(
            f"{field} {value!r}: expected host, private, shareable, none or container:NAME"
        )
    return value


class ContainerFields(StrictModel):
    """The compose-parity fields of a Container spec (all unset by default)."""

    envFile: list[Annotated[str, BeforeValidator(_repo_path)]] = Field(
        default_factory=list,
        description="Files in this repository with NAME=value lines (compose env_file), "
        "read when the manifests are loaded; `env` wins over them.",
    )
    secrets: list[Annotated[SecretMount, BeforeValidator(_secret_mount)]] = Field(
        default_factory=list, description='e.g. ["db-pass", {secret: api-key, mode: "0400"}]'
    )
    containerName: ContainerName | None = Field(
        default=None,
        description="The engine's container name (compose container_name). "
        "Default: homelab-<metadata.name>.",
    )
    hostname: str | None = Field(default=None, description="Default: the container id.")
    domainname: str | None = None
    devices: list[Annotated[Device, BeforeValidator(_device)]] = Field(
        default_factory=list, description='e.g. ["/dev/dri", "/dev/ttyUSB0:/dev/zigbee"]'
    )
    deviceCgroupRules: list[str] = Field(default_factory=list, description="e.g. 'c 188:* rwm'")
    groupAdd: StringList = Field(default_factory=list, description="Extra groups (names or ids).")
    resources: Resources | None = None
    logging: Logging | None = None
    extraHosts: Annotated[list[ExtraHost], BeforeValidator(_extra_hosts)] = Field(
        default_factory=list, description='Extra /etc/hosts entries: ["nas:10.0.0.5"] or a map.'
    )
    dns: StringList = Field(default_factory=list)
    dnsSearch: StringList = Field(default_factory=list)
    dnsOptions: StringList = Field(default_factory=list)
    securityOpt: list[str] = Field(default_factory=list, description="e.g. no-new-privileges")
    ulimits: dict[str, Annotated[Ulimit, BeforeValidator(_ulimit)]] = Field(
        default_factory=dict, description="e.g. {nofile: {soft: 1024, hard: 4096}, nproc: 512}"
    )
    sysctls: Annotated[dict[str, str], BeforeValidator(_sysctls)] = Field(default_factory=dict)
    tmpfs: list[Annotated[Tmpfs, BeforeValidator(_tmpfs)]] = Field(
        default_factory=list, description='e.g. ["/run:size=64m", {target: /tmp, mode: 1777}]'
    )
    shmSize: Size | None = Field(default=None, description="/dev/shm size (engine default 64Mi).")
    init: bool = Field(default=False, description="Run an init process as PID 1.")
    readOnly: bool = Field(default=False, description="Mount the root filesystem read-only.")
    stopSignal: Signal | None = None
    stopGracePeriod: Duration | None = Field(
        default=None, description="Seconds the engine waits after stopSignal before SIGKILL."
    )
    ipcMode: str | None = None
    utsMode: Literal["host"] | None = None
    usernsMode: Literal["host"] | None = None
    cgroup: Literal["host", "private"] | None = Field(
        default=None, description="The cgroup namespace."
    )
    cgroupParent: str | None = None
    stdinOpen: bool = False
    tty: bool = False
    macAddress: str | None = None
    platform: str | None = Field(default=None, description="e.g. linux/amd64")
    runtime: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
    volumesFrom: list[str] = Field(
        default_factory=list, description="Containers whose volumes to mount: NAME[:ro]."
    )

    @field_validator("stopGracePeriod", mode="after")
    @classmethod
    def _whole_seconds(cls, value: float | None) -> int | None:
        """The engine keeps whole seconds: 1.5s waits 2."""
        return None if value is None else math.ceil(value)

    @model_validator(mode="after")
    def _fields(self) -> ContainerFields:
        self._check_texts()
        self._check_lists()
        self._sort()
        return self

    def _check_texts(self) -> None:
        _mode_value(self.ipcMode, "ipcMode")
        for key in ("hostname", "domainname"):
            value = getattr(self, key)
            if value is not None and not _HOSTNAME.match(value):
                raise ValueError(f"{key} {value!r} is not a host name")
        if self.macAddress is not None and not _MAC.match(self.macAddress):
            raise ValueError(f"macAddress {self.macAddress!r}: expected 02:42:ac:11:00:02")
        if self.platform is not None and not _PLATFORM.match(self.platform):
            raise ValueError(f"platform {self.platform!r}: expected os/arch like linux/amd64")
        if self.cgroupParent is not None and "\x00" in self.cgroupParent:
            raise ValueError("cgroupParent must not contain NUL")
        if self.shmSize == 0:
            raise ValueError("shmSize must be above 0")

    def _check_lists(self) -> None:
        for rule in self.deviceCgroupRules:
            if not _CGROUP_RULE.match(rule):
                raise ValueError(f"deviceCgroupRules {rule!r}: expected 'c MAJOR:MINOR rwm'")
        for key in self.sysctls:
            if not _SYSCTL.match(key):
                raise ValueError(f"sysctls {key!r} is not a sysctl name (like net.core.somaxconn)")
        for name in self.ulimits:
            if name not in _ULIMIT_NAMES:
                raise ValueError(f"ulimits {name!r}: expected one of {sorted(_ULIMIT_NAMES)}")
        for source in self.volumesFrom:
            if not _VOLUMES_FROM.match(source):
                raise ValueError(f"volumesFrom {source!r}: expected NAME[:ro|:rw]")
        secret_targets = [m.target for m in self.secrets]
        if len(set(secret_targets)) != len(secret_targets):
            raise ValueError("secrets: two secrets have the same target")
        if self.secrets and self.readOnly:
            raise ValueError("secrets are copied into the container: they need readOnly: false")
        targets = [t.target for t in self.tmpfs]
        if len(set(targets)) != len(targets):
            raise ValueError("tmpfs: two entries mount the same target")

    def _sort(self) -> None:
        # Sorted so that the normalized spec does not depend on the manifest's order.
        object.__setattr__(
            self, "devices", sorted(self.devices, key=lambda d: (d.containerPath, d.hostPath))
        )
        object.__setattr__(self, "groupAdd", sorted(set(self.groupAdd)))
        object.__setattr__(
            self, "extraHosts", sorted(self.extraHosts, key=lambda h: (h.hostname, h.ip))
        )
        object.__setattr__(self, "securityOpt", sorted(set(self.securityOpt)))
        object.__setattr__(self, "tmpfs", sorted(self.tmpfs, key=lambda t: t.target))
        object.__setattr__(self, "secrets", sorted(self.secrets, key=lambda m: m.target or ""))
        object.__setattr__(self, "deviceCgroupRules", sorted(set(self.deviceCgroupRules)))


# The limits `docker update` changes on a live container (Container.IN_PLACE).
UPDATABLE = frozenset(
    f"resources.{k}"
    for k in (
        "memory",
        "memoryReservation",
        "memorySwap",
        "cpus",
        "cpuShares",
        "cpuset",
        "cpuPeriod",
        "cpuQuota",
        "pids",
    )
)

# The fields above and their "unset" values: dropped from the comparable spec.
FIELDS: tuple[str, ...] = tuple(ContainerFields.model_fields)
_UNSET: tuple[Any, ...] = (None, False, [], {})


def compact(spec: dict[str, Any]) -> dict[str, Any]:
    """Drop the unset compose-parity fields (and unset keys inside them) from a spec dict.

    Applied to the desired comparable spec and to the observed one alike, so
    an unset field never shows as `null` in a diff.
    """
    for key in FIELDS:
        if key not in spec:
            continue
        value = spec[key]
        if isinstance(value, dict) and key in ("resources", "logging"):
            value = {
                k: v
                for k, v in value.items()
                if v is not None and v is not False and not (k == "oomScoreAdj" and v == 0)
            }
            if key == "logging" and not value.get("options"):
                value.pop("options", None)
            spec[key] = value
        if isinstance(value, list) and key == "tmpfs":
            spec[key] = [{k: v for k, v in t.items() if v is not None} for t in value]
        if spec[key] in _UNSET:
            del spec[key]
    check = spec.get("healthcheck")
    if isinstance(check, dict):
        if check.get("disable"):
            spec["healthcheck"] = {"disable": True}  # nothing else of it reaches the engine
        else:
            spec["healthcheck"] = {k: v for k, v in check.items() if k != "disable"}
    return spec
