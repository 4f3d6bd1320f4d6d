"""The guard rails as they apply on one node: where bind sources lead there.

The rules themselves (`reconciler.resources.guardrails`) are pure; this
module gives them a `PathResolver` for a node. A `unix://` node's engine runs
on this machine, so its paths are resolved here (`realpath`, and `stat` for
the file's identity, which also catches a hard link or a bind mount of the
engine socket under another name); an `ssh://` or `tcp://` node's filesystem
cannot be read from here, so its paths are judged as written (normalised).
`container_findings_on(docker_host, spec)` is the one entry point for a
Container (and `compose_findings_on` for a compose file); the planner's
guard-rail check, the executor's pre-apply check and the drivers all call
them, so the same spec gets the same answer everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from reconciler.resources.compose_guardrails import compose_findings
from reconciler.resources.guardrails import (
    Finding,
    HostPath,
    PathResolver,
    container_findings,
    lexical,
)


def socket_path(docker_host: str | None) -> str | None:
    """The unix socket path of a `unix://` docker host URL, else None."""
    if docker_host and docker_host.startswith("unix://"):
        path = docker_host.removeprefix("unix://")
        return path if path.startswith("/") else None
    return None


def local_host_path(path: str) -> HostPath:
    """Where `path` leads on this machine; as written when it cannot be read."""
    try:
        real = os.path.realpath(path)
    except (OSError, ValueError):
        return HostPath(path)
    try:
        st = os.stat(real)
    except (OSError, ValueError):
        return HostPath(real)
    return HostPath(real, (st.st_dev, st.st_ino))


def resolver_for(docker_host: str | None) -> PathResolver:
    """The resolver for a node: this machine's filesystem for a local engine."""
    return local_host_path if socket_path(docker_host) else lexical


def container_findings_on(docker_host: str | None, spec: Mapping[str, Any]) -> list[Finding]:
    """The guard-rail findings for `spec` on the node whose engine is `docker_host`."""
    socket = socket_path(docker_host)
    return container_findings(
        spec, node_sockets=(socket,) if socket else (), resolve=resolver_for(docker_host)
    )


def compose_findings_on(docker_host: str | None, compose: Any, base: str) -> list[Finding]:
    """The guard-rail findings for one parsed compose file of a stack kept in `base`."""
    socket = socket_path(docker_host)
    return compose_findings(
        compose, base, node_sockets=(socket,) if socket else (), resolve=resolver_for(docker_host)
    )
