"""Nodes: which Docker engines to watch, and what an engine's ping/info says.

`node_targets` reads the Node manifests at the repository tip (through
`GitSource`; `targets_from_state` those of a commit already loaded) or,
without a repository, returns the implicit node `local` at $DOCKER_HOST (or
the default socket). `probe_node` turns an engine's ping/info into the
`node.status` event data: `ready`, a `reason`, a `message` and a short
`info`. The File manifests at the tip become `DesiredFile`s: the paths the
File collector checks, with the owner/group notation to report and whether a
file's text may be shown (not for secrets). Called by the observer service,
the Docker collector and `homelab plan --refresh`.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.sources.git import DesiredState, GitSource

DEFAULT_HOST = "unix:///var/run/docker.sock"


@dataclass(frozen=True)
class NodeTarget:
    name: str
    docker_host: str
    # (engine name, resource name) of the Containers on this node with a `containerName`.
    claims: tuple[tuple[str, str], ...] = ()

    @property
    def local(self) -> bool:
        """Files of this node are on this machine (the engine is a local socket)."""
        return self.docker_host.startswith("unix://")


@dataclass(frozen=True)
class DesiredFile:
    """A File the collector checks: where, which owner/group notation, may its text show.

    `owner`/`group` are the manifest's values (None: not managed, not
    observed). `show_content` is True only for a manifest giving `content` or
    `source`: a secret-backed file, or one known only from the world, never
    has its text read into an observation.
    """

    name: str
    node: str
    path: str
    owner: str | None = None
    group: str | None = None
    show_content: bool = False

    @classmethod
    def from_spec(cls, name: str, spec: dict[str, Any]) -> DesiredFile:
        """From a File manifest's normalized spec."""
        return cls(
            name,
            str(spec.get("node") or "local"),
            str(spec["path"]),
            _text(spec.get("owner")),
            _text(spec.get("group")),
            spec.get("secret") is None,
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def implicit_local() -> NodeTarget:
    return NodeTarget("local", os.environ.get("DOCKER_HOST") or DEFAULT_HOST)


def node_targets(
    repo: Path | None, source: GitSource | None = None, ref: str | None = None
) -> tuple[dict[str, NodeTarget], list[DesiredFile]]:
    """Nodes to watch and the desired File paths, from `ref` (default: the repository tip).

    A caller that asks again and again passes its own `source` (with a blob
    cache), so only manifests that changed since are parsed again.
    """
    if repo is None:
        return {"local": implicit_local()}, []
    return targets_from_state((source or GitSource(repo)).load(ref))


def targets_from_state(state: DesiredState) -> tuple[dict[str, NodeTarget], list[DesiredFile]]:
    """Nodes to watch and the desired File paths of one loaded commit."""
    nodes: dict[str, NodeTarget] = {}
    files: list[DesiredFile] = []
    claims: dict[str, list[tuple[str, str]]] = {}
    for (kind, name), manifest in state.manifests.items():
        spec = manifest.doc.get("spec") or {}
        if kind == "Node":
            nodes[name] = NodeTarget(name, str(spec.get("dockerHost") or DEFAULT_HOST))
        elif kind == "File":
            files.append(DesiredFile.from_spec(name, spec))
        elif kind == "Container" and spec.get("containerName"):
            claims.setdefault(str(spec.get("node") or "local"), []).append(
                (str(spec["containerName"]).lstrip("/"), name)
            )
    if "local" not in nodes:
        nodes["local"] = implicit_local()
    for node, named in claims.items():
        if node in nodes:
            nodes[node] = dataclasses.replace(nodes[node], claims=tuple(sorted(named)))
    return nodes, files


def probe_node(client: Any) -> dict[str, Any]:
    """`node.status` data from a connected client (ping, then info)."""
    client.ping()
    info = client.info()
    return {
        "ready": True,
        "reason": "EngineReachable",
        "message": f"Docker {info.get('ServerVersion', '?')} on {info.get('OperatingSystem', '?')}",
        "info": {
            "serverVersion": info.get("ServerVersion"),
            "operatingSystem": info.get("OperatingSystem"),
            "architecture": info.get("Architecture"),
            "cpus": info.get("NCPU"),
            "memoryBytes": info.get("MemTotal"),
            "containers": info.get("Containers"),
        },
    }


def unreachable(exc: BaseException) -> dict[str, Any]:
    return {
        "ready": False,
        "reason": "EngineUnreachable",
        "message": f"{type(exc).__name__}: {exc}"[:500],
        "info": {},
    }
