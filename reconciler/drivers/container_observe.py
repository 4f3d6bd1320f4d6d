"""A container as the engine has it, mapped back to the comparable Container spec.

`observed_container_spec(attrs, image_attrs, last_applied, node)` reads
`docker inspect` of a container (`attrs`) and of its image (`image_attrs`,
None when the image is gone) and returns exactly the keys of the desired
comparable spec (`reconciler.resources.normalize._container` of a
normalized `ContainerSpec`), sorted the way `ContainerSpec._normalize`
sorts, so a container created from a spec maps back to that spec and a
change made by hand (`docker update --restart=no`, `docker stop`, a
container recreated with another env) shows as drift.

Three-way defaults, as kubectl's last-applied-configuration: what the
container merely inherits from its image (an `ENV` with the image's value,
its `CMD`/`ENTRYPOINT`, `WORKDIR`, `USER`, `HEALTHCHECK`, `LABEL`s) is left
out of the observation, as a manifest leaves it out (so are compose's
`com.docker.compose.*` labels on a container compose started), unless the *last
applied* spec (the `homelab.reconciler/spec` label the driver writes, or
the adoption registry record's `spec`) had it. `imagePullPolicy` cannot be
observed: it comes from last-applied. Secret env vars: a var last-applied
gives as `valueFrom` (or whose value is one of the files under
ROOT/secrets, `known_secrets`) is observed as `{"name", "value": None,
"valueFrom": {"secret", "sha256"}}` with the fingerprint of what the
container holds (the driver strips one trailing newline from the file, so
both forms match); a value is never put in an observation.
`secret_files` + `secret_fingerprints` build `known_secrets`.

`container_runtime` gives the facts for `status.runtime` (image id, repo
digests, container id, start time). Pure but for `secret_files` (works on
inspect dicts, no engine access): used by the Docker collector and by the Docker driver's
stale-plan check, which must compute the same observation the plan saw.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from reconciler.drivers.attachments import (
    named_bind,
    observed_mounts,
    observed_network_mode,
    observed_networks,
)
from reconciler.drivers.container_fields import observed_fields
from reconciler.resources.normalize import fingerprint

PREFIX = "homelab.reconciler"
SPEC_LABEL = f"{PREFIX}/spec"
MANAGED_BY = "homelab-reconciler"
_NEVER_STARTED = "0001-01-01T00:00:00Z"
# compose's own bookkeeping on the containers it starts: not the manifest's labels.
_COMPOSE_LABELS = "com.docker.compose."
# What the engine uses for a healthcheck field left at 0 (seconds; retries a count).
_HEALTH_DEFAULTS = {"Interval": 30, "Timeout": 30, "Retries": 3, "StartPeriod": 0}
_HEALTH_KEYS = {
    "Interval": "interval",
    "Timeout": "timeout",
    "Retries": "retries",
    "StartPeriod": "startPeriod",
}

# fingerprint of a value a container may hold -> (secret name, fingerprint of its file)
KnownSecrets = Mapping[str, tuple[str, str]]


def label_spec(labels: Mapping[str, str] | None) -> tuple[dict[str, Any] | None, str]:
    """The last-applied spec the driver wrote as a label, and why it is (not) there.

    The reason is `LabelRead`, `LabelMissing` or `LabelUnreadable`.
    """
    raw = (labels or {}).get(SPEC_LABEL)
    if raw is None:
        return None, "LabelMissing"
    try:
        spec = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None, "LabelUnreadable"
    if not isinstance(spec, dict):
        return None, "LabelUnreadable"
    return spec, "LabelRead"


def record_matches(record: Mapping[str, Any] | None, container_id: str, node: str) -> bool:
    """Whether an adoption registry record names this container (full or short id)."""
    if not isinstance(record, Mapping):
        return False
    recorded = record.get("containerId")
    if not isinstance(recorded, str) or len(recorded) < 12 or not container_id:
        return False
    if record.get("node", node) != node:
        return False
    return container_id.startswith(recorded) or recorded.startswith(container_id)


def secret_fingerprints(files: Mapping[str, bytes]) -> dict[str, tuple[str, str]]:
    """`KnownSecrets` from secret files by name (their values as a container holds them)."""
    known: dict[str, tuple[str, str]] = {}
    for name, data in sorted(files.items()):
        if not data.strip():
            continue  # an empty secret would match every empty variable
        file_sha = fingerprint(data)
        known.setdefault(file_sha, (name, file_sha))
        if data.endswith(b"\n"):
            known.setdefault(fingerprint(data[:-1]), (name, file_sha))
    return known


def secret_files(folder: Path, max_size: int = 1 << 20) -> dict[str, bytes]:
    """The files under ROOT/secrets by name (the one function here that reads files)."""
    files: dict[str, bytes] = {}
    try:
        entries = sorted(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return files
    for path in entries:
        if path.name.startswith("."):
            continue  # a temporary file of an atomic write, not a secret
        try:
            if path.is_file() and path.stat().st_size <= max_size:
                files[path.name] = path.read_bytes()
        except OSError:
            continue
    return files


def _config(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict((attrs or {}).get("Config") or {})


def _list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def _env_map(entries: Any) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in entries or []:
        name, sep, value = str(entry).partition("=")
        if name:
            out[name] = value if sep else ""
    return out


def _by_name(items: Any) -> dict[str, Mapping[str, Any]]:
    return {str(v["name"]): v for v in items or [] if isinstance(v, Mapping) and v.get("name")}


def _secret_var(name: str, value: str, source: Mapping[str, Any]) -> dict[str, Any]:
    """A secret var observed: last-applied's fingerprint when the container holds that value."""
    held = value.encode()
    expected = source.get("sha256")
    if expected in (fingerprint(held), fingerprint(held + b"\n")):
        sha = str(expected)
    else:
        sha = fingerprint(held)
    return {
        "name": name,
        "value": None,
        "valueFrom": {"secret": str(source["secret"]), "sha256": sha},
    }


def _env(
    config: dict[str, Any],
    image: dict[str, Any] | None,
    last: dict[str, Any] | None,
    known: KnownSecrets,
) -> list[dict[str, Any]]:
    held = _env_map(config.get("Env"))
    inherited = _env_map(image.get("Env")) if image is not None else {}
    applied = _by_name(last.get("env")) if last else {}
    env = []
    for name, value in held.items():
        before = applied.get(name)
        if before is None and name in inherited and inherited[name] == value:
            continue  # the image's own ENV, which the manifest did not set
        source = before.get("valueFrom") if before else None
        if isinstance(source, Mapping) and source.get("secret"):
            env.append(_secret_var(name, value, source))
            continue
        if value and not (before is not None and before.get("value") == value):
            match = known.get(fingerprint(value.encode()))
            if match is not None:
                secret, sha = match
                env.append(
                    {"name": name, "value": None, "valueFrom": {"secret": secret, "sha256": sha}}
                )
                continue
        env.append({"name": name, "value": value, "valueFrom": None})
    return sorted(env, key=lambda e: str(e["name"]))


def _inherited(
    held: Any, image_value: Any, key: str, last: dict[str, Any] | None, image_known: bool
) -> Any:
    """`held`, or None when it is only the image's value and last-applied did not set it."""
    applied = last.get(key) if last else None
    if applied is None and image_known and held == image_value:
        return None
    return held


def _command(
    config: dict[str, Any], image: dict[str, Any] | None, last: dict[str, Any] | None, key: str
) -> list[str] | None:
    field = "Entrypoint" if key == "command" else "Cmd"
    held = _list(config.get(field))
    applied = last.get(key) if last else None
    if not held:
        return [] if applied == [] else None
    image_value = _list((image or {}).get(field)) or None
    result: list[str] | None = _inherited(held, image_value, key, last, image is not None)
    return result


def _text(
    config: dict[str, Any],
    image: dict[str, Any] | None,
    last: dict[str, Any] | None,
    field: str,
    key: str,
) -> str | None:
    held = config.get(field) or None
    if held is None:
        return None
    applied = last.get(key) if last else None
    if isinstance(applied, str) and posixpath.normpath(applied) == posixpath.normpath(held):
        return applied  # the engine cleans paths (a trailing slash)
    image_value = (image or {}).get(field) or None
    result: str | None = _inherited(held, image_value, key, last, image is not None)
    return result


def _labels(
    config: dict[str, Any], image: dict[str, Any] | None, last: dict[str, Any] | None
) -> dict[str, str]:
    held = {
        str(k): str(v)
        for k, v in (config.get("Labels") or {}).items()
        if not str(k).startswith(f"{PREFIX}/")
    }
    inherited = (image or {}).get("Labels") or {}
    applied = (last.get("labels") if last else None) or {}
    return {
        k: v
        for k, v in sorted(held.items())
        if k in applied
        or ((k not in inherited or inherited[k] != v) and not k.startswith(_COMPOSE_LABELS))
    }


def _seconds(ns: int) -> int | float:
    value = ns / 1_000_000_000
    return int(value) if value == int(value) else value


def _healthcheck(
    config: dict[str, Any], image: dict[str, Any] | None, last: dict[str, Any] | None
) -> dict[str, Any] | None:
    held = config.get("Healthcheck") or None
    test = _list((held or {}).get("Test"))
    if test == ["NONE"]:
        return {"disable": True}  # turned off (the image's HEALTHCHECK, or by hand)
    if not held or not test:
        return None
    image_check = (image or {}).get("Healthcheck") or None
    applied = (last.get("healthcheck") if last else None) or None
    if applied is None and image is not None and held == image_check:
        return None  # the image's HEALTHCHECK, which the manifest did not set
    out: dict[str, Any] = {"test": test}
    for field, key in _HEALTH_KEYS.items():
        raw = int(held.get(field) or 0)
        if (
            isinstance(applied, Mapping)
            and applied.get(key) == 0
            and raw == int((image_check or {}).get(field) or 0)
        ):
            out[key] = 0  # the driver passed 0, which the engine fills from the image
        elif raw == 0:
            out[key] = _HEALTH_DEFAULTS[field]
        elif field == "Retries":
            out[key] = raw
        else:
            out[key] = _seconds(raw)
    return out


def _ports(host: dict[str, Any]) -> list[dict[str, Any]]:
    ports = []
    for key, bindings in (host.get("PortBindings") or {}).items():
        number, _, protocol = str(key).partition("/")
        for binding in bindings or [{}]:
            host_port = str((binding or {}).get("HostPort") or "")
            bound = host_port.isdigit() and host_port != "0"
            ports.append(
                {
                    "containerPort": int(number),
                    "hostPort": int(host_port) if bound else None,
                    "protocol": protocol or "tcp",
                    "hostIP": (binding or {}).get("HostIp") or None,
                }
            )
    return sorted(
        ports,
        key=lambda p: (p["containerPort"], p["protocol"], p["hostIP"] or "", p["hostPort"] or 0),
    )


def _volumes(host: dict[str, Any], last: dict[str, Any] | None) -> list[dict[str, Any]]:
    volumes = []
    for bind in host.get("Binds") or []:
        parts = str(bind).split(":")
        if len(parts) < 2:
            continue  # an anonymous volume ("/data"): the image's VOLUME, not the manifest's
        options = parts[2].split(",") if len(parts) > 2 else []
        entry = {"source": parts[0], "target": parts[1], "readOnly": "ro" in options}
        volumes.append(named_bind(entry, last))  # drivers/attachments.py
    volumes.extend(observed_mounts(host))  # named volumes as {volume}: drivers/attachments.py
    return sorted(volumes, key=lambda v: (v["target"], v.get("source") or v.get("volume") or ""))


def _caps(held: Any, applied: Any) -> list[str]:
    """Capabilities upper-cased and sorted; written as last-applied wrote them when it did."""

    def bare(cap: str) -> str:
        return cap.upper().removeprefix("CAP_")

    spelled = {bare(str(c)): str(c).upper() for c in applied or []}
    return sorted({spelled.get(bare(str(c)), bare(str(c))) for c in held or []})


def _state(attrs: Mapping[str, Any]) -> str:
    state = attrs.get("State") or {}
    status = state.get("Status")
    if status == "paused" or (status is None and state.get("Paused")):
        return "paused"
    if status in ("running", "restarting") or (status is None and state.get("Running")):
        return "running"
    return "stopped"  # created, exited, dead, removing


def observed_container_spec(
    attrs: Mapping[str, Any],
    image_attrs: Mapping[str, Any] | None,
    last_applied: Mapping[str, Any] | None,
    node: str,
    *,
    known_secrets: KnownSecrets | None = None,
    name: str | None = None,
    secrets: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The comparable Container spec of a container as the engine runs it.

    `image_attrs` is `docker image inspect` of the container's image (None when
    it is gone: then nothing counts as inherited); `last_applied` the comparable
    spec last applied (None for a container this project never applied);
    `known_secrets` the ROOT/secrets files (`secret_fingerprints`), so a secret
    value in a container never becomes a plain value of an observation.
    `name` is the resource's name (the engine name `homelab-<name>` is then
    not a `containerName`); the compose-parity fields come from
    `reconciler.drivers.container_fields.observed_fields`; `secrets` is what
    `container_fields.observed_secrets` read from the container.
    """
    config = _config(attrs)
    image = _config(image_attrs) if image_attrs is not None else None
    last = dict(last_applied) if isinstance(last_applied, Mapping) else None
    host = dict(attrs.get("HostConfig") or {})
    applied = last or {}
    network = observed_network_mode(attrs, str(host.get("NetworkMode") or "default"))
    restart = str((host.get("RestartPolicy") or {}).get("Name") or "no")
    spec = {
        "node": node,
        "image": str(config.get("Image") or ""),
        "imagePullPolicy": applied.get("imagePullPolicy") or "IfNotPresent",
        "command": _command(config, image, last, "command"),
        "args": _command(config, image, last, "args"),
        "env": _env(config, image, last, known_secrets or {}),
        "ports": _ports(host),
        "volumes": _volumes(host, last),
        "restartPolicy": restart,
        "labels": _labels(config, image, last),
        "healthcheck": _healthcheck(config, image, last),
        "networkMode": "bridge" if network == "default" else network,
        "user": _text(config, image, last, "User", "user"),
        "workingDir": _text(config, image, last, "WorkingDir", "workingDir"),
        "privileged": bool(host.get("Privileged")),
        "pidMode": host.get("PidMode") or None,
        "capAdd": _caps(host.get("CapAdd"), applied.get("capAdd")),
        "capDrop": _caps(host.get("CapDrop"), applied.get("capDrop")),
        "state": _state(attrs),
        **observed_fields(attrs, image_attrs, last, name, secrets),
    }
    networks = observed_networks(attrs)  # drivers/attachments.py; none: key left out
    return {**spec, "networks": networks} if networks else spec


def container_runtime(
    attrs: Mapping[str, Any], image_attrs: Mapping[str, Any] | None
) -> dict[str, Any]:
    """Facts for `status.runtime`: what runs, since when (never diffed)."""
    state = attrs.get("State") or {}
    started = state.get("StartedAt") or None
    return {
        "containerId": str(attrs.get("Id") or ""),
        "imageId": str(attrs.get("Image") or ""),
        "repoDigests": sorted((image_attrs or {}).get("RepoDigests") or []),
        "startedAt": None if started == _NEVER_STARTED else started,
    }


def container_health(state: Mapping[str, Any]) -> str:
    """A container's health in the world's vocabulary, from its inspect `State`."""
    status = state.get("Status")
    if status == "running":
        health = (state.get("Health") or {}).get("Status")
        return {"unhealthy": "Unhealthy", "starting": "Starting"}.get(health or "", "Healthy")
    if status == "restarting":
        return "Starting"
    if status in ("exited", "dead", "created", "paused", "removing"):
        return "Stopped"
    return "Unknown"
