"""Compose stacks observed per service, from the project's containers.

A `ComposeStack` the compose driver applied has `ROOT/stacks/<name>/`
holding its compose files and `applied.json` (`{"spec", "action"}`).
`StackObserver.check` lists the engine's containers carrying
`com.docker.compose.project` (one-off `run` containers left out) and, for
each applied stack of its node, compares them with what the applied files
declare: every declared service must be present, running, and created from
the current configuration (its `com.docker.compose.config-hash` label equal
to what `<compose> -p P -f … config --hash=*` prints for the files on disk).

The observation's comparable spec is the applied spec with each file's
sha256 read from disk and a `state`: `running` when every declared service
is present, running and current (and no undeclared service is left over),
`stopped` when none runs, else `degraded`; the desired spec says `running`,
so the planner proposes `up` for anything else. The detail goes into
`runtime.services` (`{svc: {state, health, image, configHash, current}}`),
`runtime.files` (the text of each applied file up to 64 KiB that is UTF-8,
for the line diff) and a `ServicesUp` condition naming each service and what
is wrong with it. The stack's health is its services' health (a missing one
counts as stopped).

The config-hash command runs with a timeout and is cached per stack by the
project, the files' hashes and the ids of the images the containers'
references resolve to (compose folds the image id into the hash), so it
runs once per change and never per event; a failure is the condition
`ConfigHashComputed=False` (retried after `RETRY_FAILED` seconds), the
declared services then come from the files' `services` keys and no service
is called outdated.

A compose project on the engine whose name is a stack name this control
plane never applied (no `applied.json` names it, on any node) is observed as
`ComposeStack/<project>` with `managed: False`: the planner may propose to
adopt it, and the driver's `adopt` applies the stack over it. Called by the
Docker collector (reconciler/observer/collectors/docker.py) on every full
listing and on every engine event of a compose container.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.atomic_files import read_json
from reconciler.drivers.compose import default_compose_command
from reconciler.drivers.container_observe import container_health
from reconciler.observer.collectors.ledger import ObservationLedger
from reconciler.observer.collectors.node import NodeTarget
from reconciler.resources.key import ResourceKey
from reconciler.resources.normalize import fingerprint
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.yamlload import load_documents

log = logging.getLogger("reconciler.observer")
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
CONFIG_HASH = "com.docker.compose.config-hash"
ONE_OFF = "com.docker.compose.oneoff"
CONFIG_FILES = "com.docker.compose.project.config_files"
APPLIED = "applied.json"
HASH_TIMEOUT = 30.0  # seconds for one `config --hash` run
RETRY_FAILED = 60.0  # a failed run is tried again after this many seconds
TEXT_LIMIT = 64 * 1024  # applied files up to this size go into runtime.files
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # a resource name (DNS-1123 label)


@dataclass(frozen=True)
class HashResult:
    """What one `config --hash` run printed: service -> hash, or why it failed."""

    hashes: dict[str, str] | None
    error: str | None = None


class ConfigHashes:
    """`<compose> -p P -f … config --hash=*` per stack, cached by its inputs.

    `runs` counts the commands started (the tests check it stays at one per
    change).
    """

    def __init__(
        self, command: Sequence[str], docker_host: str, *, timeout: float = HASH_TIMEOUT
    ) -> None:
        self.command = tuple(command)
        self.docker_host = docker_host
        self.timeout = timeout
        self.runs = 0
        self._cache: dict[str, tuple[Any, HashResult, float]] = {}  # stack -> (key, result, at)

    def get(self, name: str, folder: Path, project: str, files: list[str], key: Any) -> HashResult:
        cached = self._cache.get(name)
        now = time.monotonic()
        if cached is not None:
            old_key, old, at = cached
            if old_key == key and (old.error is None or now - at < RETRY_FAILED):
                return old
        result = self._run(folder, project, files)
        self._cache[name] = (key, result, now)
        return result

    def forget(self, keep: set[str]) -> None:
        """Drop the entries of stacks no longer applied."""
        for name in set(self._cache) - keep:
            del self._cache[name]

    def _run(self, folder: Path, project: str, files: list[str]) -> HashResult:
        command = [*self.command, "-p", project]
        for path in files:
            command += ["-f", path]
        command += ["config", "--hash=*"]
        env = {**os.environ, "DOCKER_HOST": self.docker_host}
        what = f"{' '.join(self.command)} config --hash"
        self.runs += 1
        try:
            proc = subprocess.run(
                command,
                cwd=folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            return HashResult(None, f"{what}: command not found ({exc.filename})")
        except subprocess.TimeoutExpired:
            return HashResult(None, f"{what}: timed out after {self.timeout:g} s")
        except OSError as exc:
            return HashResult(None, f"{what}: {exc}")
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip()[-500:]
            return HashResult(None, f"{what} failed (exit {proc.returncode}): {tail}")
        hashes = {}
        for line in proc.stdout.splitlines():
            parts = line.split()
            if len(parts) == 2:
                hashes[parts[0]] = parts[1]
        return HashResult(hashes)


def _run_state(state: dict[str, Any]) -> str:
    status = str(state.get("Status") or "unknown")
    return "stopped" if status in ("exited", "dead", "created") else status


def stack_health(healths: list[str]) -> str:
    """The stack's health from its services' (a missing service counts as Stopped)."""
    if not healths:
        return "Stopped"
    if all(h == "Healthy" for h in healths):
        return "Healthy"
    if all(h == "Stopped" for h in healths):
        return "Stopped"
    if "Unhealthy" not in healths and all(h in ("Healthy", "Starting") for h in healths):
        return "Starting"
    return "Unhealthy"


def _declared_in_files(folder: Path, files: list[str]) -> list[str]:
    """The `services` keys of the files (when compose itself cannot say)."""
    names: list[str] = []
    for rel in files:
        try:
            data = (folder / rel).read_bytes()
        except OSError:
            continue
        docs, _errors = load_documents(rel, data)
        services = docs[0].data.get("services") if docs and isinstance(docs[0].data, dict) else {}
        if isinstance(services, dict):
            names += [str(s) for s in services if str(s) not in names]
    return names


def _short(digest: str | None) -> str:
    return (digest or "none")[:12]


def _services(
    containers: list[Any], declared: list[str] | None, hashes: dict[str, str] | None
) -> dict[str, dict[str, Any]]:
    """Per service: state, health, image, config hash, current (and `declared`)."""
    by_service: dict[str, list[Any]] = {}
    for c in containers:
        by_service.setdefault(str(c.labels.get(COMPOSE_SERVICE) or "?"), []).append(c)
    names = list(declared) if declared is not None else sorted(by_service)
    names += sorted(s for s in by_service if s not in names)
    out: dict[str, dict[str, Any]] = {}
    for svc in names:
        found = sorted(by_service.get(svc, []), key=lambda c: str(c.attrs.get("Name") or ""))
        if not found:
            out[svc] = {
                "state": "missing",
                "health": "Missing",
                "image": None,
                "configHash": None,
                "current": False,
            }
            continue
        states = [c.attrs.get("State") or {} for c in found]
        runs = [_run_state(s) for s in states]
        healths = [container_health(s) for s in states]
        have = [c.labels.get(CONFIG_HASH) for c in found]
        want = hashes.get(svc) if hashes is not None else None
        entry: dict[str, Any] = {
            "state": "running"
            if all(r == "running" for r in runs)
            else next(r for r in runs if r != "running"),
            "health": stack_health(healths),
            "image": (found[0].attrs.get("Config") or {}).get("Image"),
            "configHash": have[0],
            "current": want is None or all(h == want for h in have),
        }
        if want is not None and not entry["current"]:
            entry["wantedHash"] = want
        if declared is not None and svc not in declared:
            entry["declared"] = False  # left over: `up --remove-orphans` removes it
            entry["current"] = False
        if len(found) > 1:
            entry["containers"] = len(found)
        out[svc] = entry
    return out


def _problems(services: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for svc, s in services.items():
        if s.get("declared") is False:
            problems.append(f"{svc}: not in the compose files (left over)")
        elif s["state"] == "missing":
            problems.append(f"{svc}: missing (no container)")
        elif s["state"] != "running":
            problems.append(f"{svc}: {s['state']}")
        elif not s["current"]:
            problems.append(
                f"{svc}: outdated (config hash {_short(s['configHash'])}, "
                f"the files give {_short(s.get('wantedHash'))})"
            )
    return problems


def _state(services: dict[str, dict[str, Any]]) -> str:
    if all(s["state"] == "running" and s["current"] for s in services.values()):
        return "running"
    if not any(s["state"] == "running" for s in services.values()):
        return "stopped"
    return "degraded"


def _services_condition(services: dict[str, dict[str, Any]]) -> dict[str, Any]:
    problems = _problems(services)
    if not problems:
        return {
            "type": "ServicesUp",
            "status": "True",
            "reason": "AllServicesUp",
            "message": f"{len(services)} service(s) running and current",
        }
    return {
        "type": "ServicesUp",
        "status": "False",
        "reason": "ServicesDown",
        "message": "; ".join(problems)[:1000],
    }


class StackObserver:
    """Observes one node's compose projects; the Docker collector owns one."""

    def __init__(
        self,
        target: NodeTarget,
        root: RuntimeRoot,
        ledger: ObservationLedger,
        compose_command: Sequence[str] | None = None,
        *,
        hash_timeout: float = HASH_TIMEOUT,
    ) -> None:
        self.node = target.name
        self.root = root
        self.ledger = ledger
        command = compose_command or default_compose_command()  # the executor's default
        self.hashes = ConfigHashes(command, target.docker_host, timeout=hash_timeout)

    def applied(self) -> dict[str, dict[str, Any]]:
        """The spec in every `ROOT/stacks/<name>/applied.json`, whatever its node."""
        stacks: dict[str, dict[str, Any]] = {}
        if not self.root.stacks.is_dir():
            return stacks
        for folder in sorted(self.root.stacks.iterdir()):
            try:
                spec = read_json(folder / APPLIED).get("spec")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(spec, dict):
                stacks[folder.name] = spec
        return stacks

    def check(self, client: Any, project: str | None, *, resync: bool = False) -> list[str]:
        """Observe the stacks (all, or those of one compose project); the names present."""
        label = COMPOSE_PROJECT if project is None else f"{COMPOSE_PROJECT}={project}"
        projects: dict[str, list[Any]] = {}
        listed = client.containers.list(all=True, filters={"label": label}, ignore_removed=True)
        for c in listed:  # a container removed while listed is left out, not an error
            if str(c.labels.get(ONE_OFF, "False")).lower() == "true":
                continue  # `docker-compose run` containers are not the project's services
            projects.setdefault(str(c.labels.get(COMPOSE_PROJECT)), []).append(c)
        applied = self.applied()
        claimed = set(applied)  # names and projects an applied stack holds, on any node
        present = []
        mine = {}
        for name, spec in applied.items():
            proj = str(spec.get("project") or name)
            claimed.add(proj)
            if spec.get("node", "local") == self.node:
                mine[name] = (proj, spec)
        if project is None:
            self.hashes.forget(set(mine))
        for name, (proj, spec) in mine.items():
            if project is not None and proj != project:
                continue
            key = ResourceKey("ComposeStack", name)
            found = projects.get(proj, [])
            if not found:
                missing = {"reason": "no containers"}
                self.ledger.write("observed.missing", key, missing, resync=resync)
                continue
            present.append(name)
            data = self.observe_applied(client, name, spec, found)
            self.ledger.write("observed.resource", key, data, resync=resync)
        wanted = [project] if project is not None else sorted(projects)
        for proj in wanted:
            if proj in claimed or not (len(proj) <= 63 and _NAME.match(proj)):
                continue
            key = ResourceKey("ComposeStack", proj)
            found = projects.get(proj, [])
            if not found:
                self.ledger.write("observed.missing", key, {"reason": "no containers"})
                continue
            present.append(proj)
            data = self.observe_unmanaged(proj, found)
            self.ledger.write("observed.resource", key, data, resync=resync)
        return present

    def _image_ids(self, client: Any, containers: list[Any]) -> tuple[tuple[str, str | None], ...]:
        """What each image reference the containers use resolves to now."""
        refs = sorted({str((c.attrs.get("Config") or {}).get("Image") or "") for c in containers})
        out = []
        for ref in refs:
            try:
                image_id = client.images.get(ref).id if ref else None
            except Exception:  # NotFound, or a reference the engine cannot parse
                image_id = None
            out.append((ref, image_id))
        return tuple(out)

    def observe_applied(
        self, client: Any, name: str, spec: dict[str, Any], containers: list[Any]
    ) -> dict[str, Any]:
        """`observed.resource` data of a stack this control plane applied."""
        folder = self.root.stacks / name
        proj = str(spec.get("project") or name)
        files, texts, paths = [], {}, []
        for entry in spec.get("files") or []:
            rel = str(entry.get("path")) if isinstance(entry, dict) else str(entry)
            paths.append(rel)
            try:
                data = (folder / rel).read_bytes()
            except OSError:
                files.append({"path": rel, "sha256": None})
                continue
            files.append({"path": rel, "sha256": fingerprint(data)})
            if len(data) <= TEXT_LIMIT:
                with contextlib.suppress(UnicodeDecodeError):
                    texts[rel] = data.decode("utf-8")
        shas = tuple((f["path"], f["sha256"]) for f in files)
        key = (proj, shas, self._image_ids(client, containers))
        result = self.hashes.get(name, folder, proj, paths, key)
        declared = list(result.hashes) if result.hashes is not None else None
        if declared is None:
            declared = _declared_in_files(folder, paths) or None
        services = _services(containers, declared, result.hashes)
        if result.error is None:
            hash_cond = {"type": "ConfigHashComputed", "status": "True", "reason": "Computed"}
        else:
            hash_cond = {
                "type": "ConfigHashComputed",
                "status": "False",
                "reason": "ComposeConfigFailed",
                "message": result.error,
            }
        observed = {**spec, "files": files, "state": _state(services)}
        return {
            "spec": observed,
            "health": stack_health(
                [s["health"] if s["state"] != "missing" else "Stopped" for s in services.values()]
            ),
            "node": self.node,
            "managed": True,
            "conditions": [_services_condition(services), hash_cond],
            "runtime": {"services": services, "files": texts, "containers": len(containers)},
        }

    def observe_unmanaged(self, project: str, containers: list[Any]) -> dict[str, Any]:
        """`observed.resource` data of a compose project nobody here applied."""
        services = _services(containers, None, None)
        configs = sorted(
            {str(c.labels.get(CONFIG_FILES)) for c in containers if c.labels.get(CONFIG_FILES)}
        )
        return {
            "spec": {"node": self.node, "project": project, "files": [], "state": _state(services)},
            "health": stack_health([s["health"] for s in services.values()]),
            "node": self.node,
            "managed": False,
            "conditions": [
                _services_condition(services),
                {
                    "type": "ConfigHashComputed",
                    "status": "Unknown",
                    "reason": "NotApplied",
                    "message": "no compose files were applied here; adopt the stack to manage it",
                },
            ],
            "runtime": {
                "services": services,
                "configFiles": configs,
                "containers": len(containers),
            },
        }
