"""The compose-parity Container fields through the engine: create arguments and inspect.

`field_kwargs(spec)` gives the Docker SDK `containers.create` arguments of
the fields of `reconciler.resources.container_fields` (a comparable spec,
unset fields already dropped); `observed_fields(attrs, image, last, name)`
reads them back from `docker inspect` of the container (and of its image),
in the same normalized shape, so a container created from a spec observes
as that spec and a change by hand (`docker update --memory`, a container
recreated with other options) shows as drift. Where the engine fills a
value the manifest left out (the hostname is the container id, /dev/shm is
64Mi, the log driver is the daemon's, the stop signal the image's) the
value counts as unset unless the last-applied spec set it, as
`container_observe` does for image defaults. `update_kwargs` gives the
`docker update` arguments of the limits that change in place (`UPDATABLE`);
`limits_differ` says whether a live container needs them. `put_secrets`
copies `secrets` into a created container and `observed_secrets` reads
their fingerprints back (the only engine calls here). Pure but for those two: works on dicts.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from typing import Any

import docker.errors
import docker.types
from docker.models.containers import _create_container_args

from reconciler.resources.container_fields import UPDATABLE, compact, parse_size
from reconciler.resources.normalize import fingerprint

_DEFAULT_SHM = 64 << 20

# resources key -> (containers.create argument, HostConfig field)
_RESOURCES = {
    "memory": ("mem_limit", "Memory"),
    "memoryReservation": ("mem_reservation", "MemoryReservation"),
    "memorySwap": ("memswap_limit", "MemorySwap"),
    "memorySwappiness": ("mem_swappiness", "MemorySwappiness"),
    "cpus": ("nano_cpus", "NanoCpus"),
    "cpuShares": ("cpu_shares", "CpuShares"),
    "cpuset": ("cpuset_cpus", "CpusetCpus"),
    "cpuPeriod": ("cpu_period", "CpuPeriod"),
    "cpuQuota": ("cpu_quota", "CpuQuota"),
    "pids": ("pids_limit", "PidsLimit"),
    "oomKillDisable": ("oom_kill_disable", "OomKillDisable"),
    "oomScoreAdj": ("oom_score_adj", "OomScoreAdj"),
}
# What `docker update` changes on a live container (Container.update arguments).
_UPDATE = {
    "memory": "mem_limit",
    "memoryReservation": "mem_reservation",
    "memorySwap": "memswap_limit",
    "cpus": "nano_cpus",
    "cpuShares": "cpu_shares",
    "cpuset": "cpuset_cpus",
    "cpuPeriod": "cpu_period",
    "cpuQuota": "cpu_quota",
    "pids": "pids_limit",
}
assert frozenset(f"resources.{k}" for k in _UPDATE) == UPDATABLE
_UPDATE_FIELDS = {arg: _RESOURCES[key][1] for key, arg in _UPDATE.items()}


def _nano(cpus: float) -> int:
    return round(float(cpus) * 1_000_000_000)


def _tmpfs_options(entry: Mapping[str, Any]) -> str:
    options = []
    if entry.get("size") is not None:
        options.append(f"size={int(entry['size'])}")
    if entry.get("mode") is not None:
        options.append(f"mode={entry['mode']}")
    return ",".join(options)


def field_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """`containers.create` arguments for the compose-parity fields a spec sets."""
    out: dict[str, Any] = {}
    for key, (arg, _field) in _RESOURCES.items():
        value = (spec.get("resources") or {}).get(key)
        if value is not None:
            out[arg] = _nano(value) if key == "cpus" else value
    if spec.get("devices"):
        out["devices"] = [
            ":".join((d["hostPath"], d.get("containerPath") or d["hostPath"], d["permissions"]))
            for d in spec["devices"]
        ]
    logging = spec.get("logging")
    if logging:
        out["log_config"] = docker.types.LogConfig(
            type=logging.get("driver", "json-file"), config=dict(logging.get("options") or {})
        )
    if spec.get("extraHosts"):
        out["extra_hosts"] = [f"{h['hostname']}:{h['ip']}" for h in spec["extraHosts"]]
    if spec.get("ulimits"):
        out["ulimits"] = [
            docker.types.Ulimit(name=name, soft=int(u["soft"]), hard=int(u["hard"]))
            for name, u in sorted(spec["ulimits"].items())
        ]
    if spec.get("tmpfs"):
        out["tmpfs"] = {t["target"]: _tmpfs_options(t) for t in spec["tmpfs"]}
    if spec.get("stopGracePeriod") is not None:
        out["stop_timeout"] = int(spec["stopGracePeriod"])
    plain = {
        "hostname": "hostname",
        "domainname": "domainname",
        "deviceCgroupRules": "device_cgroup_rules",
        "groupAdd": "group_add",
        "dns": "dns",
        "dnsSearch": "dns_search",
        "dnsOptions": "dns_opt",
        "securityOpt": "security_opt",
        "sysctls": "sysctls",
        "shmSize": "shm_size",
        "init": "init",
        "readOnly": "read_only",
        "stopSignal": "stop_signal",
        "ipcMode": "ipc_mode",
        "utsMode": "uts_mode",
        "usernsMode": "userns_mode",
        "cgroup": "cgroupns",
        "cgroupParent": "cgroup_parent",
        "stdinOpen": "stdin_open",
        "tty": "tty",
        "macAddress": "mac_address",
        "platform": "platform",
        "runtime": "runtime",
        "volumesFrom": "volumes_from",
    }
    for key, arg in plain.items():
        value = spec.get(key)
        if value not in (None, [], {}, False):
            out[arg] = list(value) if isinstance(value, list) else value
    return out


def create_container(client: Any, **kwargs: Any) -> Any:
    """`client.containers.create(**kwargs)`, with `stop_timeout` (a low-level argument only)."""
    stop_timeout = kwargs.pop("stop_timeout", None)
    if stop_timeout is None:
        return client.containers.create(**kwargs)
    kwargs["version"] = client.api._version
    args = _create_container_args(kwargs)
    args["stop_timeout"] = stop_timeout
    created = client.api.create_container(**args)
    return client.containers.get(created["Id"])


def update_limits(client: Any, container_id: str, spec: Mapping[str, Any]) -> None:
    """`docker update` of the spec's limits (the SDK's call cannot set NanoCpus or PidsLimit,
    nor reset a limit to 0), posted as the engine's API takes it."""
    api = client.api
    body = {_UPDATE_FIELDS[k]: v for k, v in update_kwargs(spec).items()}
    response = api._post_json(api._url("/containers/{0}/update", container_id), data=body)
    api._raise_for_status(response)


def secrets_archive(files: list[tuple[str, bytes, str]]) -> bytes:
    """A tar of (target, content, mode) files, to put at `/` of a container (owner root)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for target, data, mode in files:
            info = tarfile.TarInfo(target.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), int(mode, 8), 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def put_secrets(container: Any, spec: Mapping[str, Any], read: Any) -> None:
    """Copy the spec's `secrets` into a created container before it starts.

    `read(name, sha256)` gives a secret's bytes, checked against the plan's
    fingerprint (`ApplyContext.secret`).
    """
    mounts = spec.get("secrets") or []
    if not mounts:
        return
    files = [(m["target"], read(m["secret"], m.get("sha256")), m["mode"]) for m in mounts]
    container.put_archive("/", secrets_archive(files))


def observed_secrets(
    client: Any, container_id: str, last: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    """The secrets last applied, as the container holds them: mode and fingerprint.

    Only the fingerprint of a file's content leaves this function. A secret the
    container no longer holds (or a container gone) is not observed.
    """
    observed = []
    for mount in (last or {}).get("secrets") or []:
        if not isinstance(mount, Mapping) or not mount.get("target"):
            continue
        try:
            stream, _stat = client.api.get_archive(container_id, str(mount["target"]))
            raw = b"".join(stream)
        except docker.errors.NotFound:
            continue
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            handle = tar.extractfile(member) if member is not None else None
            if member is None or handle is None:
                continue
            data = handle.read()
        observed.append(
            {
                "secret": str(mount.get("secret")),
                "target": str(mount["target"]),
                "mode": "0" + oct(member.mode & 0o777)[2:].rjust(3, "0"),
                "sha256": fingerprint(data),
            }
        )
    return sorted(observed, key=lambda m: m["target"])


def healthcheck_disabled(spec: Mapping[str, Any]) -> bool:
    return bool((spec.get("healthcheck") or {}).get("disable"))


def update_kwargs(spec: Mapping[str, Any]) -> dict[str, Any]:
    """`Container.update` arguments that bring a live container to the spec's limits.

    A limit the spec drops is reset to the engine's "none" (0; pids -1).
    """
    resources = spec.get("resources") or {}
    out: dict[str, Any] = {}
    for key, arg in _UPDATE.items():
        value = resources.get(key)
        if value is None:
            out[arg] = {"pids": -1, "cpuset": ""}.get(key, 0)
        else:
            out[arg] = _nano(value) if key == "cpus" else value
    if out.get("memswap_limit") == 0 and out.get("mem_limit"):
        out["memswap_limit"] = -1 if resources.get("memorySwap") == -1 else 2 * out["mem_limit"]
    if out.get("memswap_limit") == 0:
        del out["memswap_limit"]  # no limit at all: the engine keeps none
    return out


def limits_differ(attrs: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    """Whether the container's in-place limits differ from the spec's."""
    desired = spec.get("resources") or {}
    held = _resources(dict(attrs.get("HostConfig") or {}), desired)
    return any(held.get(k) != desired.get(k) for k in _UPDATE)


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _resources(host: Mapping[str, Any], applied: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (_arg, field) in _RESOURCES.items():
        raw = host.get(field)
        if raw in (None, "", False) or (raw == 0 and key != "memorySwappiness"):
            continue
        if key == "cpus":
            out[key] = _number(round(int(raw) / 1_000_000_000, 9))
        elif (key == "memorySwappiness" and raw == -1) or (
            key == "pids" and raw == -1 and applied.get("pids") is None
        ):
            continue
        else:
            out[key] = raw
    memory = out.get("memory")
    swap = out.get("memorySwap")
    if swap is not None and applied.get("memorySwap") is None:
        if memory is not None and swap == 2 * memory:
            del out["memorySwap"]  # what the engine sets when only memory is given
        elif memory is None and swap == -1:
            del out["memorySwap"]
    return out


def _logging(host: Mapping[str, Any], applied: Any) -> dict[str, Any] | None:
    config = host.get("LogConfig") or {}
    driver = str(config.get("Type") or "")
    options = {str(k): str(v) for k, v in (config.get("Config") or {}).items()}
    if not driver:
        return None
    if applied is None and driver == "json-file" and not options:
        return None  # the engine's default
    return {"driver": driver, "options": options}


def _extra_hosts(entries: Any) -> list[dict[str, str]]:
    out = []
    for entry in entries or []:
        host, sep, ip = str(entry).partition(":")
        if sep:
            out.append({"hostname": host, "ip": ip})
    return sorted(out, key=lambda h: (h["hostname"], h["ip"]))


def _tmpfs(entries: Any) -> list[dict[str, Any]]:
    out = []
    for target, options in sorted((entries or {}).items()):
        entry: dict[str, Any] = {"target": str(target), "size": None, "mode": None}
        for option in filter(None, str(options or "").split(",")):
            key, _, raw = option.partition("=")
            if key == "size":
                try:
                    entry["size"] = parse_size(raw)
                except ValueError:
                    entry["size"] = raw
            elif key == "mode":
                entry["mode"] = raw
        out.append(entry)
    return out


def _devices(entries: Any) -> list[dict[str, str]]:
    out = [
        {
            "hostPath": str(d.get("PathOnHost") or ""),
            "containerPath": str(d.get("PathInContainer") or d.get("PathOnHost") or ""),
            "permissions": "".join(c for c in "rwm" if c in str(d.get("CgroupPermissions") or "")),
        }
        for d in entries or []
        if isinstance(d, Mapping)
    ]
    return sorted(out, key=lambda d: (d["containerPath"], d["hostPath"]))


def _security_opt(host: Mapping[str, Any], applied: Any) -> list[str]:
    held = {str(v) for v in host.get("SecurityOpt") or []}
    shares_host = host.get("Privileged") or "host" in (host.get("PidMode"), host.get("IpcMode"))
    if shares_host and "label=disable" not in (applied or []):
        held.discard("label=disable")  # what the engine adds to such a container itself
    return sorted(held)


def _platform(image: Mapping[str, Any] | None, applied: Any) -> str | None:
    if applied is None or image is None:
        return None
    held = "/".join(
        str(p) for p in (image.get("Os"), image.get("Architecture"), image.get("Variant")) if p
    )
    return str(applied) if held.startswith(str(applied)) else held


def observed_fields(
    attrs: Mapping[str, Any],
    image_attrs: Mapping[str, Any] | None,
    last: Mapping[str, Any] | None,
    name: str | None,
    secrets: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The compose-parity fields of a container as the engine holds them (unset dropped).

    `secrets` is what `observed_secrets` read from the container (None: not read).
    """
    config = dict(attrs.get("Config") or {})
    host = dict(attrs.get("HostConfig") or {})
    image = dict((image_attrs or {}).get("Config") or {}) if image_attrs is not None else None
    applied = dict(last or {})
    network = str(host.get("NetworkMode") or "")
    engine_name = str(attrs.get("Name") or "").lstrip("/")
    default_name = f"homelab-{name}" if name else None
    if default_name is None:
        named = applied.get("containerName") is not None or not engine_name.startswith("homelab-")
    else:
        named = engine_name != default_name
    hostname = str(config.get("Hostname") or "") or None
    shared_uts = network == "host" or network.startswith("container:")
    if applied.get("hostname") is None and (
        hostname == str(attrs.get("Id") or "")[:12] or shared_uts or host.get("UTSMode") == "host"
    ):
        hostname = None
    shm = host.get("ShmSize")
    if applied.get("shmSize") is None and shm in (None, 0, _DEFAULT_SHM):
        shm = None
    stop_signal = str(config.get("StopSignal") or "") or None
    if (
        applied.get("stopSignal") is None
        and image is not None
        and stop_signal == (image.get("StopSignal") or None)
    ):
        stop_signal = None
    ipc = str(host.get("IpcMode") or "") or None
    if applied.get("ipcMode") is None and ipc in ("private", "shareable"):
        ipc = None
    runtime = str(host.get("Runtime") or "") or None
    if applied.get("runtime") is None and runtime == "runc":
        runtime = None
    cgroupns = str(host.get("CgroupnsMode") or "") or None
    if applied.get("cgroup") is None:
        cgroupns = None  # unset: the engine's default for its cgroup version
    stop_timeout = config.get("StopTimeout")
    out: dict[str, Any] = {
        "containerName": engine_name if named and engine_name else None,
        "hostname": hostname,
        "domainname": str(config.get("Domainname") or "") or None,
        "devices": _devices(host.get("Devices")),
        "deviceCgroupRules": sorted(set(host.get("DeviceCgroupRules") or [])),
        "groupAdd": sorted({str(g) for g in host.get("GroupAdd") or []}),
        "resources": _resources(host, applied.get("resources") or {}),
        "logging": _logging(host, applied.get("logging")),
        "extraHosts": _extra_hosts(host.get("ExtraHosts")),
        "dns": [str(v) for v in host.get("Dns") or []],
        "dnsSearch": [str(v) for v in host.get("DnsSearch") or []],
        "dnsOptions": [str(v) for v in host.get("DnsOptions") or []],
        "securityOpt": _security_opt(host, applied.get("securityOpt")),
        "ulimits": {
            str(u["Name"]): {"soft": int(u.get("Soft", 0)), "hard": int(u.get("Hard", 0))}
            for u in sorted(host.get("Ulimits") or [], key=lambda u: str(u.get("Name")))
        },
        "sysctls": {str(k): str(v) for k, v in sorted((host.get("Sysctls") or {}).items())},
        "tmpfs": _tmpfs(host.get("Tmpfs")),
        "shmSize": shm,
        "init": bool(host.get("Init")),
        "readOnly": bool(host.get("ReadonlyRootfs")),
        "stopSignal": stop_signal,
        "stopGracePeriod": stop_timeout if stop_timeout is not None else None,
        "ipcMode": ipc,
        "utsMode": str(host.get("UTSMode") or "") or None,
        "usernsMode": str(host.get("UsernsMode") or "") or None,
        "cgroup": cgroupns,
        "cgroupParent": str(host.get("CgroupParent") or "") or None,
        "stdinOpen": bool(config.get("OpenStdin")),
        "tty": bool(config.get("Tty")),
        "macAddress": str(config.get("MacAddress") or "") or None,
        "platform": _platform(image_attrs, applied.get("platform")),
        "runtime": runtime,
        "volumesFrom": [str(v) for v in host.get("VolumesFrom") or []],
        "secrets": secrets or [],
    }
    return compact(out)
