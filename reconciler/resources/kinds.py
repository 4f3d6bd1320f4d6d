"""The resource kinds: Node, Container, File, ComposeStack, Network, Volume (pydantic v2 models).

Each kind is a model of its `spec` plus class-level facts the planner needs:
which spec fields can change in place (`IN_PLACE`) and whether the kind is
applied at all (`APPLIED`; a Node is only observed). Defaults are filled and
collections sorted so a manifest always normalizes to the same document.
Pure: no I/O. Used by the loader, the planner and the drivers.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)

from reconciler.resources.guardrails import container_findings
from reconciler.resources.meta import DnsLabel, Labels, Metadata, StrictModel
from reconciler.resources.netvol import NetworkFields, VolumeFields, VolumeMount, check_attachments

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE = re.compile(
    r"^(?:(?:[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)+(?::[0-9]+)?|[a-zA-Z0-9-]+:[0-9]+|localhost)/)?"
    r"[a-z0-9]+(?:[._-]{1,2}[a-z0-9]+)*"
    r"(?:/[a-z0-9]+(?:[._-]{1,2}[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@sha256:[0-9a-f]{64})?$"
)
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DOCKER_HOST = re.compile(r"^(unix|ssh|tcp)://.+$")


def _duration(value: Any) -> Any:
    """Accept 30, "30", "30s", "1m30s"; normalize to whole seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 1m or a number of seconds")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
        match = _DURATION.match(text)
        if match and text:
            hours, minutes, seconds = (int(g or 0) for g in match.groups())
            return hours * 3600 + minutes * 60 + seconds
    raise ValueError(f"expected a duration like 30s, 1m or a number of seconds, got {value!r}")


_DURATION_SCHEMA = {
    "anyOf": [
        {"type": "integer", "minimum": 0, "maximum": 86400},
        {"type": "string", "pattern": r"^(\d+h)?(\d+m)?(\d+s)?$|^\d+$"},
    ],
    "description": "Seconds, or a duration like 30s, 1m30s, 1h.",
}
Seconds = Annotated[
    int, BeforeValidator(_duration), Field(ge=0, le=86400), WithJsonSchema(_DURATION_SCHEMA)
]


def _image(value: str) -> str:
    if not _IMAGE.match(value):
        raise ValueError(f"{value!r} is not a valid image reference (e.g. local/busybox:1)")
    return value


ImageRef = Annotated[str, AfterValidator(_image)]


def _abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"{value!r} must be an absolute path")
    if "\x00" in value:
        raise ValueError("path must not contain NUL")
    return value


AbsPath = Annotated[str, AfterValidator(_abs_path)]


def _repo_path(value: str) -> str:
    parts = value.split("/")
    if value.startswith("/") or ".." in parts or not value or "\x00" in value:
        raise ValueError(f"{value!r} must be a relative path inside the repository (no '..')")
    return "/".join(p for p in parts if p not in ("", "."))


RepoPath = Annotated[str, AfterValidator(_repo_path)]


def _mode(value: Any) -> Any:
    """Accept '0644', '644' or 644. The loader keeps 0644 (YAML 1.1 octal) as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and re.fullmatch(r"0?[0-7]{3}", value):
        return "0" + value[-3:]
    raise ValueError(f"expected a file mode like '0644', got {value!r}")


FileMode = Annotated[
    str,
    BeforeValidator(_mode),
    WithJsonSchema(
        {"type": ["string", "integer"], "pattern": "^0?[0-7]{3}$", "description": "e.g. '0644'"}
    ),
]


_ACCOUNT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?$")
_MAX_ID = 4294967294  # (uid_t)-1 means "unchanged" to chown(2)


def _account(value: Any) -> Any:
    """Accept a user/group name or a numeric id (1000 or "1000"); ids are kept as text."""
    text = value if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    if text is not None:
        text = text.strip()
        if text.isdigit() and text.isascii():
            if int(text) > _MAX_ID:
                raise ValueError(f"id {text} is out of range (0..{_MAX_ID})")
            return str(int(text))
        if _ACCOUNT_NAME.match(text):
            return text
    raise ValueError(
        f"expected a user or group name (like www-data) or a numeric id (like 1000), got {value!r}"
    )


Account = Annotated[
    str,
    BeforeValidator(_account),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0, "maximum": _MAX_ID},
                {"type": "string", "pattern": r"^(\d+|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$"},
            ],
            "description": "A name (www-data) or a numeric id (1000).",
        }
    ),
]


class Policy(StrictModel):
    """How the supervisor treats this resource (never part of the diff)."""

    autoApprove: bool = Field(
        default=False, description="Approve create/update/replace without a person."
    )
    ignoreDifferences: list[str] = Field(
        default_factory=list,
        description="JSON pointers into spec whose drift is ignored, e.g. /labels/tier.",
    )

    @model_validator(mode="after")
    def _pointers(self) -> Policy:
        for pointer in self.ignoreDifferences:
            if not pointer.startswith("/"):
                raise ValueError(
                    f"ignoreDifferences: {pointer!r} must be a JSON pointer like /image"
                )
        return self


_DEPENDENCY = re.compile(r"^(?P<kind>[A-Z][A-Za-z]+)/(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)$")


def _dependency(value: Any) -> Any:
    """Accept the shorthand "Kind/name" as well as {resource: Kind/name, condition: ...}."""
    return {"resource": value} if isinstance(value, str) else value


class Dependency(StrictModel):
    """One entry of `dependsOn`: another resource of this repository that must be applied first.

    `condition: healthy` (Containers only) waits until the dependency reports
    healthy, as compose's `depends_on: {condition: service_healthy}` does.
    Never part of the comparable spec: changing it changes no container.
    """

    resource: str = Field(description="Kind/name of a resource in this repository.")
    condition: Literal["applied", "healthy"] = "applied"

    @model_validator(mode="after")
    def _ref(self) -> Dependency:
        if not _DEPENDENCY.match(self.resource):
            raise ValueError(f"dependsOn: {self.resource!r} must be Kind/name, e.g. Container/db")
        return self


DependsOn = Annotated[
    list[Annotated[Dependency, BeforeValidator(_dependency)]],
    Field(default_factory=list, description="Resources applied before this one (Kind/name)."),
]


class SecretRef(StrictModel):
    """A value kept outside git, in ROOT/secrets/<secret>."""

    secret: DnsLabel


class EnvVar(StrictModel):
    name: str
    value: str | None = None
    valueFrom: SecretRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if not _ENV_NAME.match(self.name):
            raise ValueError(f"env name {self.name!r} must match [A-Za-z_][A-Za-z0-9_]*")
        if (self.value is None) == (self.valueFrom is None):
            raise ValueError(f"env {self.name}: give exactly one of value or valueFrom")
        return self


def _env(value: Any) -> Any:
    """Accept a literal map {NAME: value} as well as a list of EnvVar."""
    if isinstance(value, dict):
        return [
            {"name": str(k), "value": v if isinstance(v, str) else _scalar_text(v)}
            for k, v in value.items()
        ]
    return value


def _scalar_text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


class Port(StrictModel):
    containerPort: int = Field(ge=1, le=65535)
    hostPort: int | None = Field(default=None, ge=1, le=65535)
    protocol: Literal["tcp", "udp"] = "tcp"
    hostIP: str | None = None


def _attachment(value: Any) -> Any:
    """Accept the shorthand "proxy" as well as {network: proxy, aliases: [...]}."""
    return {"network": value} if isinstance(value, str) else value


class NetworkAttachment(StrictModel):
    """One network a Container joins (compose `networks:`)."""

    network: str = Field(
        min_length=1,
        description="Engine name of the network: a Network resource's spec.name "
        "(default its metadata.name), or a network that exists on the node.",
    )
    aliases: list[str] = Field(default_factory=list)
    ipv4Address: str | None = Field(default=None, description="A static IPv4 in the subnet.")


class Healthcheck(StrictModel):
    test: list[str] = Field(min_length=1, description='e.g. ["CMD", "wget", "-q", "-O-", "..."]')
    interval: Seconds = 30
    timeout: Seconds = 10
    retries: int = Field(default=3, ge=1, le=100)
    startPeriod: Seconds = 0


def _env_map_schema(schema: dict[str, Any]) -> None:
    """The JSON Schema also admits env as a literal map, as the validator does."""
    env = schema["properties"]["env"]
    literal = {"type": "object", "additionalProperties": {"type": ["string", "number", "boolean"]}}
    schema["properties"]["env"] = {"anyOf": [env, literal], "description": "List or map."}


class ContainerSpec(StrictModel):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_env_map_schema)

    node: DnsLabel = "local"
    image: ImageRef
    imagePullPolicy: Literal["IfNotPresent", "Always", "Never"] = "IfNotPresent"
    command: list[str] | None = None
    args: list[str] | None = None
    env: Annotated[list[EnvVar], BeforeValidator(_env)] = Field(default_factory=list)
    ports: list[Port] = Field(default_factory=list)
    volumes: list[VolumeMount] = Field(default_factory=list)
    restartPolicy: Literal["no", "always", "unless-stopped", "on-failure"] = "unless-stopped"
    labels: Labels = Field(default_factory=dict)
    healthcheck: Healthcheck | None = None
    networkMode: str = "bridge"
    user: str | None = None
    workingDir: AbsPath | None = None
    privileged: bool = False
    pidMode: Literal["host"] | None = None
    capAdd: list[str] = Field(default_factory=list)
    capDrop: list[str] = Field(default_factory=list)
    networks: list[Annotated[NetworkAttachment, BeforeValidator(_attachment)]] = Field(
        default_factory=list
    )
    state: Literal["running", "stopped"] = Field(
        default="running",
        description="Whether the container should run; stopped/paused by hand is drift.",
    )
    dependsOn: DependsOn
    policy: Policy = Field(default_factory=Policy)

    @model_validator(mode="after")
    def _normalize(self) -> ContainerSpec:
        names = [e.name for e in self.env]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"env: duplicate names {dupes}")
        targets = [v.target for v in self.volumes]
        if len(set(targets)) != len(targets):
            raise ValueError("volumes: two volumes mount the same target")
        check_attachments(self.networks, self.networkMode)
        # Sorting makes the normalized spec independent of manifest order.
        object.__setattr__(self, "env", sorted(self.env, key=lambda e: e.name))
        object.__setattr__(
            self, "ports", sorted(self.ports, key=lambda p: (p.containerPort, p.protocol))
        )
        object.__setattr__(self, "volumes", sorted(self.volumes, key=lambda v: v.target))
        object.__setattr__(self, "capAdd", sorted({c.upper() for c in self.capAdd}))
        object.__setattr__(self, "capDrop", sorted({c.upper() for c in self.capDrop}))
        return self

    def dangerous(self) -> list[str]:
        """What the guard rails refuse unless the repository allows it (paths as written)."""
        return [str(f) for f in container_findings(self.model_dump(mode="json"))]


class FileSpec(StrictModel):
    node: DnsLabel = "local"
    path: AbsPath
    content: str | None = None
    source: RepoPath | None = Field(default=None, description="A file in this repository.")
    secret: DnsLabel | None = Field(default=None, description="A file under ROOT/secrets/.")
    mode: FileMode = "0644"
    owner: Account | None = Field(default=None, description="Owning user; unset: not managed.")
    group: Account | None = Field(default=None, description="Owning group; unset: not managed.")
    dependsOn: DependsOn
    policy: Policy = Field(default_factory=Policy)

    @model_validator(mode="after")
    def _one_source(self) -> FileSpec:
        given = [x for x in (self.content, self.source, self.secret) if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of content, source or secret")
        return self


class ComposeStackSpec(StrictModel):
    node: DnsLabel = "local"
    project: DnsLabel | None = Field(default=None, description="Defaults to metadata.name.")
    files: list[RepoPath] = Field(min_length=1, description="Compose files in this repository.")
    dependsOn: DependsOn
    policy: Policy = Field(default_factory=Policy)


class NetworkSpec(NetworkFields):
    dependsOn: DependsOn
    policy: Policy = Field(default_factory=Policy)


class VolumeSpec(VolumeFields):
    dependsOn: DependsOn
    policy: Policy = Field(default_factory=Policy)


class NodeSpec(StrictModel):
    dockerHost: str = Field(
        default="unix:///var/run/docker.sock",
        description="unix:///path, ssh://user@host[:port] or tcp://host:port",
    )
    labels: Labels = Field(default_factory=dict)
    allowedRoots: list[AbsPath] = Field(
        default_factory=lambda: ["/srv/homelab"],
        description="Folders File resources on this node may write into.",
    )

    @model_validator(mode="after")
    def _host(self) -> NodeSpec:
        if not _DOCKER_HOST.match(self.dockerHost):
            raise ValueError(
                f"dockerHost {self.dockerHost!r} must start with unix://, ssh:// or tcp://"
            )
        return self


class Resource(StrictModel):
    """Common envelope; subclasses fix `kind` and `spec`."""

    apiVersion: Literal["homelab.reconciler/v1alpha1"] = "homelab.reconciler/v1alpha1"
    metadata: Metadata

    IN_PLACE: ClassVar[frozenset[str]] = frozenset()
    APPLIED: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def policy(self) -> Policy:
        return getattr(self.spec, "policy", Policy())  # type: ignore[attr-defined]


class Node(Resource):
    kind: Literal["Node"] = "Node"
    spec: NodeSpec = Field(default_factory=NodeSpec)
    APPLIED: ClassVar[bool] = False


class Container(Resource):
    kind: Literal["Container"] = "Container"
    spec: ContainerSpec
    # Docker can change the restart policy of a running container (docker update).
    IN_PLACE: ClassVar[frozenset[str]] = frozenset({"restartPolicy"})


class File(Resource):
    kind: Literal["File"] = "File"
    spec: FileSpec
    IN_PLACE: ClassVar[frozenset[str]] = frozenset(
        {"mode", "owner", "group", "sha256", "source", "secret"}
    )


class ComposeStack(Resource):
    kind: Literal["ComposeStack"] = "ComposeStack"
    spec: ComposeStackSpec
    # New files: `up -d` again; `state` (a service down or outdated): `up -d` alone.
    IN_PLACE: ClassVar[frozenset[str]] = frozenset({"files", "state"})


class Network(Resource):
    kind: Literal["Network"] = "Network"
    spec: NetworkSpec = Field(default_factory=lambda: NetworkSpec.model_validate({}))
    # Docker changes nothing of a network in place: every field forces a replacement.


class Volume(Resource):
    kind: Literal["Volume"] = "Volume"
    spec: VolumeSpec = Field(default_factory=lambda: VolumeSpec.model_validate({}))
    # deletionPolicy changes nothing on the node: only the registry record is rewritten.
    IN_PLACE: ClassVar[frozenset[str]] = frozenset({"deletionPolicy"})


KINDS: dict[str, type[Resource]] = {
    "Node": Node,
    "Container": Container,
    "File": File,
    "ComposeStack": ComposeStack,
    "Network": Network,
    "Volume": Volume,
}
