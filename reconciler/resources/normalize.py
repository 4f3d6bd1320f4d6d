"""The comparable spec: the normalized shape desired and observed state share.

Desired manifests and the observer's readings are both reduced to this shape,
so an unchanged resource diffs to an empty patch. Content that lives outside
the manifest (a repository file, a secret) appears only as its sha256
fingerprint, never as its value. Pure: the caller passes a `ContentResolver`
that knows the commit and the secrets folder. Used by the planner, the
supervisor, the executor's stale-plan check and the drivers' labels.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol

import orjson

from reconciler.resources.container_fields import compact
from reconciler.resources.netvol import (
    comparable_network,
    comparable_volume,
    mount_comparable,
    sorted_networks,
)


class MissingInput(Exception):
    """A referenced repository file or secret does not exist."""


class ContentResolver(Protocol):
    def repo_file_sha256(self, path: str) -> str | None: ...

    def secret_sha256(self, name: str) -> str | None: ...


def fingerprint(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# Spec fields that steer the control plane and change nothing on the node: never diffed.
NOT_COMPARED = frozenset({"policy", "dependsOn"})


def spec_hash(spec: Any) -> str:
    """A stable hash of a comparable spec (labels, action ids, bases)."""
    return hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _secret(resolver: ContentResolver, name: str) -> str:
    digest = resolver.secret_sha256(name)
    if digest is None:
        raise MissingInput(f"secret {name!r} not found under ROOT/secrets/{name}")
    return digest


def _container(name: str, spec: dict[str, Any], resolver: ContentResolver) -> dict[str, Any]:
    out = {k: v for k, v in spec.items() if k not in NOT_COMPARED}
    env = []
    for var in spec.get("env", []):
        if var.get("valueFrom"):
            secret = var["valueFrom"]["secret"]
            env.append(
                {
                    "name": var["name"],
                    "value": None,
                    "valueFrom": {"secret": secret, "sha256": _secret(resolver, secret)},
                }
            )
        else:
            env.append(var)
    out["env"] = env
    out["volumes"] = [mount_comparable(v) for v in spec.get("volumes") or []]
    out["networks"] = sorted_networks(list(spec.get("networks") or []))
    if spec.get("secrets"):  # files from ROOT/secrets: their fingerprints, never their values
        out["secrets"] = [
            {**mount, "sha256": _secret(resolver, mount["secret"])} for mount in spec["secrets"]
        ]
    if not out.get("networks"):
        out.pop("networks", None)  # none joined: the engine's default network (networkMode)
    out.pop("envFile", None)  # its values are under env: the loader merged them (sources/env_files)
    if out.get("containerName") == f"homelab-{name}":
        out.pop("containerName")  # the default name, written out
    return compact(out)  # the compose-parity fields left unset (resources/container_fields.py)


def _file(name: str, spec: dict[str, Any], resolver: ContentResolver) -> dict[str, Any]:
    if spec.get("content") is not None:
        digest = fingerprint(spec["content"].encode())
    elif spec.get("source") is not None:
        found = resolver.repo_file_sha256(spec["source"])
        if found is None:
            raise MissingInput(f"source {spec['source']!r} is not in the repository at this commit")
        digest = found
    else:
        digest = _secret(resolver, spec["secret"])
    out = {"node": spec["node"], "path": spec["path"], "mode": spec["mode"], "sha256": digest}
    # Ownership is compared only when the manifest asks for it, so a File that
    # does not say keeps the spec (and the hash) it always had.
    for key in ("owner", "group"):
        if spec.get(key) is not None:
            out[key] = spec[key]
    return out


def _compose(name: str, spec: dict[str, Any], resolver: ContentResolver) -> dict[str, Any]:
    files = []
    for path in spec["files"]:
        digest = resolver.repo_file_sha256(path)
        if digest is None:
            raise MissingInput(f"compose file {path!r} is not in the repository at this commit")
        files.append({"path": path, "sha256": digest})
    # `state`: every declared service present, running and current (what the
    # observer compares with the project's containers; drift there plans `up`).
    project = spec.get("project") or name
    return {"node": spec["node"], "project": project, "files": files, "state": "running"}


def _node(name: str, spec: dict[str, Any], resolver: ContentResolver) -> dict[str, Any]:
    return dict(spec)


def _network(name: str, spec: dict[str, Any], resolver: ContentResolver) -> dict[str, Any]:
    return comparable_network(name, spec)


def _volume(name: str, spec: dict[str, Any], resolver: ContentResolver) -> dict[str, Any]:
    return comparable_volume(name, spec)


_BUILDERS = {
    "Container": _container,
    "File": _file,
    "ComposeStack": _compose,
    "Node": _node,
    "Network": _network,
    "Volume": _volume,
}


def has_external_inputs(kind: str, doc: dict[str, Any]) -> bool:
    """Whether the comparable spec depends on more than the document (files, secrets)."""
    spec = doc.get("spec") or {}
    if kind == "Container":
        return bool(spec.get("secrets")) or any(var.get("valueFrom") for var in spec.get("env", []))
    if kind == "File":
        return spec.get("content") is None
    return kind == "ComposeStack"


def comparable_spec(kind: str, doc: dict[str, Any], resolver: ContentResolver) -> dict[str, Any]:
    """The desired spec of a validated manifest document, in comparable shape."""
    return _BUILDERS[kind](doc["metadata"]["name"], doc.get("spec") or {}, resolver)
