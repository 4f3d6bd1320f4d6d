"""Map `docker-compose config` output to Container, Network and Volume manifests.

One handler per compose service property (`_SERVICE`), each writing the
Container fields of issue 17 (camelCase, as a compose user recognises
them) into the spec; a property without a handler, or one homelab does not
run (`build`, `links`, `configs`, ...), is a warning naming the service and
the property, never a crash. What compose gives a container without being
asked is written out, so the manifest describes the running container and
plans as `adopt` with no difference: the container name
(`project_service_1`), restart policy `no`, the project's default network
with the service name as alias, the engine's healthcheck defaults. The
bookkeeping labels compose puts on containers, networks and volumes
(`com.docker.compose.*`) are not the operator's: they go to
`policy.ignoreDifferences`. Pure (the env files are read by the caller).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from reconciler.importing.compose_config import ComposeProject, read_env_file
from reconciler.importing.model import (
    Imported,
    ImportResult,
    dns_name,
)
from reconciler.resources.kinds import ContainerSpec

Spec = dict[str, Any]
Handler = Callable[["_Service", Any], None]

_COMPOSE_CONTAINER_LABELS = (
    "config-hash",
    "container-number",
    "oneoff",
    "project",
    "project.config_files",
    "project.working_dir",
    "service",
    "version",
)
_COMPOSE_NETWORK_LABELS = ("network", "project", "version")
_COMPOSE_VOLUME_LABELS = ("project", "version", "volume")
_HEALTH_DEFAULTS = {"interval": 30, "timeout": 30, "retries": 3, "startPeriod": 0}
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?(?:(\d+)us)?$")
_UNITS = re.compile(r"^(\d+(?:\.\d+)?)\s*([bkmgt]?)b?$", re.IGNORECASE)
_RESTART = {"no": "no", "always": "always", "unless-stopped": "unless-stopped"}
_PULL = {"always": "Always", "never": "Never", "missing": "IfNotPresent"}
_PULL["if_not_present"] = "IfNotPresent"
# What homelab does not run, and why (the warning's text).
_UNMAPPED = {
    "build": "homelab runs images and does not build them: build and tag the image, "
    "then the manifest's image is used",
    "external_links": "links are legacy: join the other container's network instead",
    "configs": "compose configs are not mapped: make each a File resource and mount it",
    "scale": "homelab runs one container per resource",
    "credential_spec": "Windows only",
    "isolation": "Windows only",
    "develop": "compose watch is a development feature",
    "extends": "resolved by compose config",
    "profiles": "used to choose the services",
    "container_name": "",
    "version": "",
}


def compose_duration(value: Any) -> int | None:
    """Whole seconds of a compose duration ("1m30s", "10s", 10); None when not whole."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value) if float(value).is_integer() else None
    match = _DURATION.match(str(value).strip()) if value is not None else None
    if not match or not str(value).strip():
        return None
    hours, minutes, seconds, millis, micros = (int(g or 0) for g in match.groups())
    if millis or micros:
        return None
    return hours * 3600 + minutes * 60 + seconds


def size_text(value: Any) -> Any:
    """A compose size ("256M", "128mb", 1073741824) in the field's form ("256m", bytes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _UNITS.match(str(value).strip())
    if not match:
        return value  # the manifest's validation names it
    number, unit = match.groups()
    return f"{number}{unit.lower()}" if unit else int(float(number))


class _Service:
    """One service being mapped: its spec so far and the project it belongs to."""

    def __init__(self, mapper: ComposeMapper, name: str, config: dict[str, Any]) -> None:
        self.mapper = mapper
        self.name = name
        self.config = config
        self.spec: Spec = {}
        self.depends: list[Any] = []
        self.ignored: list[str] = []

    def warn(self, prop: str, why: str) -> None:
        self.mapper.result.warnings.append(f"service {self.name}: {prop}: {why}")

    def set(self, field: str, value: Any) -> None:
        if value not in (None, [], {}, ""):
            self.spec[field] = value


def _command(svc: _Service, value: Any) -> None:
    svc.set("args", shlex.split(value) if isinstance(value, str) else [str(v) for v in value])


def _entrypoint(svc: _Service, value: Any) -> None:
    svc.set("command", shlex.split(value) if isinstance(value, str) else [str(v) for v in value])


def _environment(svc: _Service, value: Any) -> None:
    if isinstance(value, list):
        pairs = [str(v).partition("=") for v in value]
        value = {k: (v if sep else None) for k, sep, v in pairs}
    from_files: dict[str, str] = {}
    for path in svc.mapper.project.env_files.get(svc.name, []):
        try:
            from_files.update(read_env_file(path))
        except OSError as exc:
            svc.warn("env_file", f"{path} cannot be read ({exc.strerror}); values kept in env")
    env = {}
    for key, val in (value or {}).items():
        if val is None:
            svc.warn("environment", f"{key} has no value in this environment; left out")
            continue
        text = _scalar(val)
        if from_files.get(key) == text and svc.mapper.env_file_paths.get(svc.name):
            continue  # the envFile gives it (explicit env wins, so only equal values go)
        env[str(key)] = text
    svc.set("env", env)


def _env_file(svc: _Service, _value: Any) -> None:
    paths = svc.mapper.env_file_paths.get(svc.name)
    if paths:
        svc.set("envFile", paths)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _port_range(text: str) -> list[int]:
    start, _, end = text.partition("-")
    return list(range(int(start), int(end or start) + 1))


def _short_port(svc: _Service, text: str) -> list[dict[str, Any]]:
    body, _, protocol = text.partition("/")
    host_ip = None
    if body.startswith("["):
        host_ip, _, body = body[1:].partition("]:")
    parts = body.rsplit(":", 2) if host_ip is None else ["", *body.rsplit(":", 1)]
    if len(parts) == 3:
        host_ip = host_ip or parts[0] or None
        host, target = parts[1], parts[2]
    elif len(parts) == 2:
        host, target = parts
    else:
        host, target = "", parts[0]
    targets = _port_range(target)
    hosts = _port_range(host) if host else [None] * len(targets)
    if len(hosts) != len(targets):
        svc.warn("ports", f"{text}: a host range must be as long as the container range")
        return []
    return [_port(t, h, protocol or "tcp", host_ip) for t, h in zip(targets, hosts, strict=True)]


def _port(target: int, host: int | None, protocol: str, host_ip: str | None) -> dict[str, Any]:
    port: dict[str, Any] = {"containerPort": target}
    if host is not None:
        port["hostPort"] = host
    if protocol != "tcp":
        port["protocol"] = protocol
    if host_ip and host_ip not in ("0.0.0.0", "::"):
        port["hostIP"] = host_ip
    return port


def _ports(svc: _Service, value: Any) -> None:
    ports: list[dict[str, Any]] = []
    for entry in value or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            host = int(str(published).partition("-")[0]) if published not in (None, "") else None
            ports.append(
                _port(
                    int(entry["target"]),
                    host,
                    entry.get("protocol") or "tcp",
                    entry.get("host_ip"),
                )
            )
        else:
            ports.extend(_short_port(svc, str(entry)))
    svc.set("ports", ports)


def _expose(svc: _Service, value: Any) -> None:
    svc.set("expose", [str(v) for v in value or []])


def _volume_entry(svc: _Service, entry: Any) -> dict[str, Any] | None:
    if isinstance(entry, dict):
        kind = entry.get("type", "volume")
        source, target = entry.get("source"), entry.get("target")
        read_only = bool(entry.get("read_only"))
        if kind == "tmpfs":
            size = (entry.get("tmpfs") or {}).get("size")
            svc.spec.setdefault("tmpfs", []).append(
                {"target": target, **({"size": size_text(size)} if size else {})}
            )
            return None
        if kind not in ("bind", "volume"):
            svc.warn("volumes", f"{target}: type {kind} is not mapped")
            return None
        subpath = (entry.get("volume") or {}).get("subpath")
    else:
        parts = str(entry).split(":")
        if len(parts) == 1:
            source, target, mode = None, parts[0], "rw"
        else:
            source, target = parts[0], parts[1]
            mode = parts[2] if len(parts) > 2 else "rw"
        read_only = "ro" in mode.split(",")
        subpath = None
    if not source:
        svc.warn("volumes", f"{target}: an anonymous volume is not mapped (give it a name)")
        return None
    out: dict[str, Any]
    if str(source).startswith("/"):
        out = {"source": str(source), "target": target}
    else:
        out = {"volume": svc.mapper.volume_engine_name(str(source)), "target": target}
        svc.mapper.use_volume(svc.name, str(source))
        if subpath:
            out["subpath"] = subpath
    if read_only:
        out["readOnly"] = True
    return out


def _volumes(svc: _Service, value: Any) -> None:
    mounts = [m for m in (_volume_entry(svc, e) for e in value or []) if m is not None]
    svc.set("volumes", mounts)


def _tmpfs(svc: _Service, value: Any) -> None:
    for entry in [value] if isinstance(value, str) else value or []:
        target, _, options = str(entry).partition(":")
        item: dict[str, Any] = {"target": target}
        for option in filter(None, options.split(",")):
            key, _, val = option.partition("=")
            if key == "size":
                item["size"] = size_text(val)
            elif key == "mode":
                item["mode"] = val
            else:
                svc.warn("tmpfs", f"{target}: option {key} is not mapped")
        svc.spec.setdefault("tmpfs", []).append(item)


def _networks(svc: _Service, value: Any) -> None:
    entries = value if isinstance(value, dict) else dict.fromkeys(value or [])
    attachments = []
    for key, options in entries.items():
        options = options or {}
        # The engine adds the hostname as an alias of its own (not observed, not written).
        hostname = str(svc.config.get("hostname") or "")
        wanted = [svc.name, *(options.get("aliases") or [])]
        aliases = [a for i, a in enumerate(wanted) if a != hostname and a not in wanted[:i]]
        attachment: dict[str, Any] = {
            "network": svc.mapper.network_engine_name(str(key)),
            "aliases": aliases,
        }
        if options.get("ipv4_address"):
            attachment["ipv4Address"] = options["ipv4_address"]
        for extra in sorted(set(options) - {"aliases", "ipv4_address"}):
            svc.warn(f"networks.{key}", f"{extra} is not mapped")
        svc.mapper.use_network(svc.name, str(key))
        attachments.append(attachment)
    svc.set("networks", attachments)


def _network_mode(svc: _Service, value: Any) -> None:
    text = str(value)
    if text.startswith("service:"):
        text = "container:" + svc.mapper.project.container_name(text.removeprefix("service:"))
    svc.spec["networkMode"] = text


def _restart(svc: _Service, value: Any) -> None:
    text = str(value)
    if text.startswith("on-failure"):
        if ":" in text:
            svc.warn("restart", f"{text}: the retry count is not mapped (on-failure)")
        svc.spec["restartPolicy"] = "on-failure"
    elif text in _RESTART:
        svc.spec["restartPolicy"] = _RESTART[text]
    else:
        svc.warn("restart", f"{text!r} is not a restart policy")


def _labels(svc: _Service, value: Any) -> None:
    if isinstance(value, list):
        value = dict(str(v).partition("=")[::2] for v in value)
    svc.set("labels", {str(k): _scalar(v) for k, v in (value or {}).items()})


def _healthcheck(svc: _Service, value: Any) -> None:
    value = value or {}
    test = value.get("test")
    if value.get("disable") or test in (["NONE"], "NONE"):
        svc.spec["healthcheck"] = {"disable": True}
        return
    if test is None:
        svc.warn("healthcheck", "no test: the image's healthcheck is left as it is")
        return
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    check: dict[str, Any] = {"test": [str(t) for t in test]}
    for compose_key, field in (
        ("interval", "interval"),
        ("timeout", "timeout"),
        ("start_period", "startPeriod"),
        ("start_interval", "startInterval"),
    ):
        if compose_key in value:
            seconds = compose_duration(value[compose_key])
            if seconds is None:
                svc.warn(f"healthcheck.{compose_key}", f"{value[compose_key]!r}: not whole seconds")
                continue
            check[field] = seconds
        elif field in _HEALTH_DEFAULTS:
            check[field] = _HEALTH_DEFAULTS[field]
    check["retries"] = int(value.get("retries", _HEALTH_DEFAULTS["retries"]))
    svc.spec["healthcheck"] = check


def _depends_on(svc: _Service, value: Any) -> None:
    entries = value if isinstance(value, dict) else dict.fromkeys(value or [])
    for target, options in entries.items():
        condition = (options or {}).get("condition", "service_started")
        ref = f"Container/{svc.mapper.container_resource(str(target))}"
        if condition == "service_healthy":
            svc.depends.append({"resource": ref, "condition": "healthy"})
        else:
            if condition == "service_completed_successfully":
                svc.warn("depends_on", f"{target}: completed_successfully waits as applied")
            svc.depends.append(ref)


def _links(svc: _Service, value: Any) -> None:
    """Compose starts a linked service first: the order stays (dependsOn), the link goes."""
    for entry in value or []:
        target = str(entry).partition(":")[0]
        ref = f"Container/{svc.mapper.container_resource(target)}"
        if all(
            ref not in (d, d.get("resource") if isinstance(d, dict) else None) for d in svc.depends
        ):
            svc.depends.append(ref)
    svc.warn(
        "links",
        "not mapped: links are legacy, containers on a shared network find each other by "
        "service name (the alias the import writes); the start order is kept as dependsOn",
    )


def _devices(svc: _Service, value: Any) -> None:
    devices = []
    for entry in value or []:
        if isinstance(entry, dict):
            host, target = entry.get("source"), entry.get("target")
            perms = entry.get("permissions") or "rwm"
        else:
            parts = str(entry).split(":")
            host = parts[0]
            target = parts[1] if len(parts) > 1 else host
            perms = parts[2] if len(parts) > 2 else "rwm"
        devices.append({"hostPath": host, "containerPath": target, "permissions": perms})
    svc.set("devices", devices)


def _resources(svc: _Service, field: str, value: Any) -> None:
    if value not in (None, "", 0):
        svc.spec.setdefault("resources", {})[field] = value


def _deploy(svc: _Service, value: Any) -> None:
    value = value or {}
    resources = value.get("resources") or {}
    limits = resources.get("limits") or {}
    for key, field in (("cpus", "cpus"), ("memory", "memory"), ("pids", "pids")):
        if key in limits:
            raw = limits[key]
            _resources(svc, field, float(raw) if key == "cpus" else size_text(raw))
    reservations = resources.get("reservations") or {}
    if "memory" in reservations:
        _resources(svc, "memoryReservation", size_text(reservations["memory"]))
    for key in sorted(set(reservations) - {"memory"}):
        svc.warn(f"deploy.resources.reservations.{key}", "not mapped (use gpus for a GPU)")
    if int(value.get("replicas", 1) or 1) != 1:
        svc.warn("deploy.replicas", "homelab runs one container per resource")
    for key in sorted(set(value) - {"resources", "replicas"}):
        svc.warn(f"deploy.{key}", "swarm deployment settings are not mapped")


def _resource_field(field: str, convert: Callable[[Any], Any]) -> Handler:
    return lambda svc, value: _resources(svc, field, convert(value))


def _blkio(svc: _Service, value: Any) -> None:
    if isinstance(value, dict) and "weight" in value:
        _resources(svc, "blkioWeight", int(value["weight"]))
    for key in sorted(set(value or {}) - {"weight"}):
        svc.warn(f"blkio_config.{key}", "not mapped")


def _extra_hosts(svc: _Service, value: Any) -> None:
    items = (
        value.items()
        if isinstance(value, dict)
        else (re.split(r"[:=]", str(v), maxsplit=1) for v in value or [])
    )
    hosts = []
    for pair in items:
        hostname, ip = pair if len(pair) == 2 else (pair[0], "")
        hosts.append({"hostname": str(hostname), "ip": str(ip)})
    svc.set("extraHosts", hosts)


def _list_of(field: str) -> Handler:
    def handler(svc: _Service, value: Any) -> None:
        svc.set(field, [str(v) for v in ([value] if isinstance(value, str | int) else value or [])])

    return handler


def _as_is(field: str, convert: Callable[[Any], Any] = lambda v: v) -> Handler:
    def handler(svc: _Service, value: Any) -> None:
        svc.spec[field] = convert(value)

    return handler


def _ulimits(svc: _Service, value: Any) -> None:
    limits: dict[str, Any] = {}
    for name, limit in (value or {}).items():
        if isinstance(limit, dict):
            limits[str(name)] = {"soft": int(limit["soft"]), "hard": int(limit["hard"])}
        else:
            limits[str(name)] = int(limit)
    svc.set("ulimits", limits)


def _sysctls(svc: _Service, value: Any) -> None:
    if isinstance(value, list):
        value = dict(str(v).partition("=")[::2] for v in value)
    svc.set("sysctls", {str(k): _scalar(v) for k, v in (value or {}).items()})


def _stop_grace(svc: _Service, value: Any) -> None:
    seconds = compose_duration(value)
    if seconds is None:
        svc.warn("stop_grace_period", f"{value!r}: not whole seconds")
        return
    svc.spec["stopGracePeriod"] = seconds


def _secrets(svc: _Service, value: Any) -> None:
    out = []
    for entry in value or []:
        entry = {"source": entry} if isinstance(entry, str) else entry
        source = str(entry.get("source"))
        item: dict[str, Any] = {
            "secret": dns_name(source),
            "target": entry.get("target") or f"/run/secrets/{source}",
        }
        if entry.get("target") and not str(entry["target"]).startswith("/"):
            item["target"] = f"/run/secrets/{entry['target']}"
        if "mode" in entry:
            mode = entry["mode"]
            item["mode"] = f"0{mode:03o}" if isinstance(mode, int) else str(mode)
        out.append(item)
        svc.warn(
            "secrets",
            f"{source}: put its value in ROOT/secrets/{item['secret']} (never in git)",
        )
    svc.set("secrets", out)


def _volumes_from(svc: _Service, value: Any) -> None:
    out = []
    for entry in value or []:
        text = str(entry)
        if text.startswith("container:"):
            text = text.removeprefix("container:")
        else:
            name, sep, mode = text.partition(":")
            text = svc.mapper.project.container_name(name) + (sep + mode if sep else "")
        out.append(text)
    svc.set("volumesFrom", out)


def _pull_policy(svc: _Service, value: Any) -> None:
    if str(value) in _PULL:
        svc.spec["imagePullPolicy"] = _PULL[str(value)]
    else:
        svc.warn("pull_policy", f"{value!r} is not mapped (IfNotPresent)")


def _gpus(svc: _Service, value: Any) -> None:
    svc.spec["gpus"] = value


def _image(svc: _Service, value: Any) -> None:
    svc.spec["image"] = str(value)


def _node_ignored(svc: _Service, _value: Any) -> None:
    return None


_SERVICE: dict[str, Handler] = {
    "image": _image,
    "command": _command,
    "entrypoint": _entrypoint,
    "environment": _environment,
    "env_file": _env_file,
    "ports": _ports,
    "expose": _expose,
    "volumes": _volumes,
    "tmpfs": _tmpfs,
    "networks": _networks,
    "network_mode": _network_mode,
    "restart": _restart,
    "labels": _labels,
    "healthcheck": _healthcheck,
    "depends_on": _depends_on,
    "links": _links,
    "devices": _devices,
    "deploy": _deploy,
    "mem_limit": _resource_field("memory", size_text),
    "mem_reservation": _resource_field("memoryReservation", size_text),
    "memswap_limit": _resource_field("memorySwap", size_text),
    "mem_swappiness": _resource_field("memorySwappiness", int),
    "cpus": _resource_field("cpus", float),
    "cpu_shares": _resource_field("cpuShares", int),
    "cpuset": _resource_field("cpuset", str),
    "cpu_period": _resource_field("cpuPeriod", int),
    "cpu_quota": _resource_field("cpuQuota", int),
    "pids_limit": _resource_field("pids", int),
    "oom_kill_disable": _resource_field("oomKillDisable", bool),
    "oom_score_adj": _resource_field("oomScoreAdj", int),
    "blkio_config": _blkio,
    "logging": _as_is("logging", lambda v: {k: v[k] for k in ("driver", "options") if k in v}),
    "extra_hosts": _extra_hosts,
    "dns": _list_of("dns"),
    "dns_search": _list_of("dnsSearch"),
    "dns_opt": _list_of("dnsOptions"),
    "hostname": _as_is("hostname", str),
    "domainname": _as_is("domainname", str),
    "security_opt": _list_of("securityOpt"),
    "ulimits": _ulimits,
    "sysctls": _sysctls,
    "shm_size": _as_is("shmSize", size_text),
    "init": _as_is("init", bool),
    "read_only": _as_is("readOnly", bool),
    "stop_signal": _as_is("stopSignal", str),
    "stop_grace_period": _stop_grace,
    "secrets": _secrets,
    "group_add": _list_of("groupAdd"),
    "user": _as_is("user", str),
    "working_dir": _as_is("workingDir", str),
    "privileged": _as_is("privileged", bool),
    "pid": _as_is("pidMode", str),
    "cap_add": _list_of("capAdd"),
    "cap_drop": _list_of("capDrop"),
    "ipc": _as_is("ipcMode", str),
    "uts": _as_is("utsMode", str),
    "userns_mode": _as_is("usernsMode", str),
    "stdin_open": _as_is("stdinOpen", bool),
    "tty": _as_is("tty", bool),
    "mac_address": _as_is("macAddress", str),
    "platform": _as_is("platform", str),
    "runtime": _as_is("runtime", str),
    "cgroup": _as_is("cgroup", str),
    "cgroup_parent": _as_is("cgroupParent", str),
    "annotations": _as_is("annotations", dict),
    "device_cgroup_rules": _list_of("deviceCgroupRules"),
    "storage_opt": _as_is("storageOpt", dict),
    "gpus": _gpus,
    "volumes_from": _volumes_from,
    "pull_policy": _pull_policy,
    "container_name": _node_ignored,
    "profiles": _node_ignored,
    "extends": _node_ignored,
}


class ComposeMapper:
    """Map one normalised project; `result` collects the documents and the warnings.

    `env_file_paths` is each service's `envFile` (repository paths of the copies
    the caller made of its env files); `file` the manifest file of the project.
    """

    def __init__(
        self,
        project: ComposeProject,
        *,
        node: str = "local",
        file: str | None = None,
        env_file_paths: dict[str, list[str]] | None = None,
        source_name: str | None = None,
    ) -> None:
        self.project = project
        self.node = node
        self.file = file or f"{dns_name(project.name)}.yaml"
        self.env_file_paths = env_file_paths or {}
        self.source_name = source_name or project.files[0].name
        self.result = ImportResult()
        self._networks_used: dict[str, list[str]] = {}
        self._volumes_used: dict[str, list[str]] = {}

    # Names --------------------------------------------------------------
    def container_resource(self, service: str) -> str:
        """metadata.name of a service's Container: the service, prefixed by the project."""
        project = dns_name(self.project.name)
        svc = dns_name(service)
        return svc if svc == project else dns_name(f"{project}-{svc}")

    def _top(self, section: str, key: str) -> dict[str, Any]:
        entry = (self.project.config.get(section) or {}).get(key)
        return entry if isinstance(entry, dict) else {}

    def _engine_name(self, section: str, key: str) -> str:
        entry = self._top(section, key)
        external = entry.get("external")
        if isinstance(external, dict) and external.get("name"):
            return str(external["name"])
        if entry.get("name"):
            return str(entry["name"])
        if external:
            return key
        return f"{self.project.name}_{key}"

    def network_engine_name(self, key: str) -> str:
        return self._engine_name("networks", key)

    def volume_engine_name(self, key: str) -> str:
        return self._engine_name("volumes", key)

    def use_network(self, service: str, key: str) -> None:
        self._networks_used.setdefault(key, []).append(service)

    def use_volume(self, service: str, key: str) -> None:
        self._volumes_used.setdefault(key, []).append(service)

    # Mapping -------------------------------------------------------------
    def map(self) -> ImportResult:
        containers = [self._service(name, cfg or {}) for name, cfg in self.project.services.items()]
        for skipped in self.project.skipped:
            self.result.warnings.append(
                f"service {skipped}: not imported (its profiles are not active; --profile)"
            )
        for key in self._networks_used:
            self._network(key)
        for key in self._volumes_used:
            self._volume(key)
        for item in containers:
            self.result.add(self.file, item)
        return self.result

    def _service(self, name: str, config: dict[str, Any]) -> Imported:
        svc = _Service(self, name, config)
        for prop in config:
            handler = _SERVICE.get(prop)
            if handler is not None:
                handler(svc, config[prop])
            elif prop in _UNMAPPED:
                if _UNMAPPED[prop]:
                    svc.warn(prop, f"not mapped: {_UNMAPPED[prop]}")
            elif not prop.startswith("x-"):
                svc.warn(prop, "not mapped by homelab import")
        if "image" not in svc.spec:
            svc.spec["image"] = (
                f"{self.project.name}_{name}"
                if self.project.v1
                else (f"{self.project.name}-{name}")
            )
            svc.warn("image", f"none given: the image compose builds, {svc.spec['image']}")
        if "networkMode" not in svc.spec and "networks" not in svc.spec:
            _networks(svc, {"default": None})
        if "networks" in svc.spec:
            svc.spec.pop("networkMode", None)
        svc.spec.setdefault("restartPolicy", "no")  # compose's default; homelab's is unless-stopped
        return self._container(svc)

    def _container(self, svc: _Service) -> Imported:
        spec: Spec = {"node": self.node, "containerName": self.project.container_name(svc.name)}
        spec.update(svc.spec)
        if self.env_file_paths.get(svc.name):
            spec["envFile"] = list(self.env_file_paths[svc.name])
        for key in [k for k in spec if k not in ContainerSpec.model_fields]:
            svc.warn(key, "homelab has no Container field for it yet: left out")
            del spec[key]
        spec = ordered_spec(spec)
        depends = list(svc.depends)
        for key in sorted({k for k, users in self._networks_used.items() if svc.name in users}):
            if not self._top("networks", key).get("external"):
                depends.append(f"Network/{dns_name(self.network_engine_name(key))}")
        for key in sorted({k for k, users in self._volumes_used.items() if svc.name in users}):
            if not self._top("volumes", key).get("external"):
                depends.append(f"Volume/{dns_name(self.volume_engine_name(key))}")
        if depends:
            spec["dependsOn"] = depends
        labels = [f"com.docker.compose.{x}" for x in _COMPOSE_CONTAINER_LABELS]
        spec["policy"] = {"ignoreDifferences": [f"/labels/{x}" for x in labels]}
        return Imported(
            "Container",
            self.container_resource(svc.name),
            spec,
            f"{self.source_name} service {svc.name}",
            f"compose:{self.project.name}/{svc.name}",
        )

    def _network(self, key: str) -> None:
        entry = self._top("networks", key)
        if entry.get("external"):
            return  # it exists on its own: containers name it, homelab does not manage it
        engine = self.network_engine_name(key)
        spec: Spec = {"node": self.node, "name": engine}
        if entry.get("driver") not in (None, "bridge"):
            spec["driver"] = entry["driver"]
        if entry.get("internal"):
            spec["internal"] = True
        # compose v1 creates its networks attachable unless the file says otherwise.
        if entry.get("attachable", self.project.v1):
            spec["attachable"] = True
        subnets = []
        for config in (entry.get("ipam") or {}).get("config") or []:
            subnet = {k2: config[k1] for k1, k2 in _IPAM if config.get(k1)}
            if subnet:
                subnets.append(subnet)
        if subnets:
            spec["ipam"] = {"subnets": subnets}
        if entry.get("labels"):
            spec["labels"] = dict(entry["labels"])
        if entry.get("driver_opts"):
            spec["options"] = {str(k): str(v) for k, v in entry["driver_opts"].items()}
        spec["policy"] = {
            "ignoreDifferences": [
                f"/labels/com.docker.compose.{x}" for x in _COMPOSE_NETWORK_LABELS
            ]
        }
        self.result.add(
            self.file,
            Imported(
                "Network",
                dns_name(engine),
                spec,
                f"{self.source_name} network {key}",
                f"compose:{self.project.name}/networks/{key}",
            ),
        )

    def _volume(self, key: str) -> None:
        entry = self._top("volumes", key)
        if entry.get("external"):
            return
        engine = self.volume_engine_name(key)
        spec: Spec = {"node": self.node, "name": engine}
        if entry.get("driver") not in (None, "local"):
            spec["driver"] = entry["driver"]
        if entry.get("driver_opts"):
            spec["driverOpts"] = {str(k): str(v) for k, v in entry["driver_opts"].items()}
        if entry.get("labels"):
            spec["labels"] = dict(entry["labels"])
        spec["policy"] = {
            "ignoreDifferences": [f"/labels/com.docker.compose.{x}" for x in _COMPOSE_VOLUME_LABELS]
        }
        self.result.add(
            self.file,
            Imported(
                "Volume",
                dns_name(engine),
                spec,
                f"{self.source_name} volume {key}",
                f"compose:{self.project.name}/volumes/{key}",
            ),
        )


_IPAM = (("subnet", "subnet"), ("gateway", "gateway"), ("ip_range", "ipRange"))
# The order a reader expects in a Container spec (the rest follows as compose gave it).
_ORDER = (
    "node",
    "containerName",
    "image",
    "imagePullPolicy",
    "command",
    "args",
    "env",
    "envFile",
    "ports",
    "expose",
    "volumes",
    "tmpfs",
    "networks",
    "networkMode",
    "restartPolicy",
    "healthcheck",
    "labels",
)
_LAST = ("dependsOn", "policy")


def ordered_spec(spec: Spec) -> Spec:
    """`spec` with its keys in `_ORDER`, then the others, then dependsOn and policy."""
    first = [k for k in _ORDER if k in spec]
    rest = [k for k in spec if k not in _ORDER and k not in _LAST]
    return {k: spec[k] for k in [*first, *rest, *(k for k in _LAST if k in spec)]}


def env_file_copies(project: ComposeProject) -> dict[str, list[Path]]:
    """Each service's env files that exist (the caller copies them into the repository)."""
    return {
        service: [p for p in paths if p.is_file()]
        for service, paths in project.env_files.items()
        if service in project.services
    }
