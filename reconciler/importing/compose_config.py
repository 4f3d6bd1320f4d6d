"""A compose project as compose itself understands it: `docker-compose config`.

The file is not re-interpreted here: `docker-compose config` (Debian's v1, or
the v2 plugin when v1 is absent; `reconciler.drivers.compose.default_compose_command`)
does the interpolation with `.env` and the environment, `extends`, anchors,
and turns every short syntax into the normalised one; this module runs it,
reads its output with a safe YAML loader and keeps the services of the
active profiles (v1's `config` prints every service whatever the profiles).
What compose reads but does not print is taken from the files themselves:
the `env_file` lists (v1 merges them into `environment`), so the import can
point a manifest's `envFile` at a copy of the file instead of writing its
values into git. Used by `reconciler.importing.compose_map`.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dotenv import dotenv_values

from reconciler.drivers.compose import default_compose_command
from reconciler.errors import ConfigError

_V1_PROJECT = re.compile(r"[^-_a-z0-9]")
_TIMEOUT = 60.0


@dataclass
class ComposeProject:
    """The normalised project: `config` is compose's own output."""

    name: str
    workdir: Path
    files: list[Path]
    config: dict[str, Any]
    services: dict[str, dict[str, Any]]
    skipped: list[str]  # services of inactive profiles
    env_files: dict[str, list[Path]] = field(default_factory=dict)  # service -> files
    v1: bool = True

    def container_name(self, service: str) -> str:
        """The engine name compose gives the service's first container."""
        explicit = self.services.get(service, {}).get("container_name")
        if explicit:
            return str(explicit)
        return f"{self.name}_{service}_1" if self.v1 else f"{self.name}-{service}-1"


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    try:
        done = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=_TIMEOUT
        )
    except FileNotFoundError as exc:
        raise ConfigError(
            f"{command[0]} is not installed (apt-get install docker-compose)"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise ConfigError(f"{' '.join(command)} did not answer in {_TIMEOUT:.0f} s") from exc
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip().splitlines()
        raise ConfigError(f"{' '.join(command)} failed: {' '.join(message[-5:])}")
    return done.stdout


def _is_v1(command: tuple[str, ...], cwd: Path, env: dict[str, str]) -> bool:
    out = _run([*command, "version", "--short"], cwd, env).strip()
    return out.lstrip("v").startswith("1.")


def _active(service: dict[str, Any], profiles: set[str]) -> bool:
    wanted = service.get("profiles") or []
    return not wanted or bool(set(wanted) & profiles) or "*" in profiles


def _raw_env_files(files: list[Path], workdir: Path) -> dict[str, list[Path]]:
    """The `env_file` entries of each service, as the files write them (last file wins)."""
    found: dict[str, list[Path]] = {}
    for path in files:
        try:
            raw = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue  # compose config already read it; an odd file only loses envFile
        services = raw.get("services") if isinstance(raw, dict) else None
        for name, service in (services or {}).items():
            entries = service.get("env_file") if isinstance(service, dict) else None
            if entries is None:
                continue
            entries = entries if isinstance(entries, list) else [entries]
            paths = []
            for entry in entries:
                text = entry.get("path") if isinstance(entry, dict) else entry
                if isinstance(text, str):
                    paths.append((workdir / text).resolve())
            found[str(name)] = paths
    return found


def load_project(
    files: list[Path],
    *,
    project: str | None = None,
    profiles: list[str] | None = None,
    command: tuple[str, ...] | None = None,
    environ: dict[str, str] | None = None,
) -> ComposeProject:
    """Run `docker-compose config` on `files` and keep the services of the active profiles."""
    if not files:
        raise ConfigError("give a compose file")
    for path in files:
        if not path.is_file():
            raise ConfigError(f"{path}: no such compose file")
    files = [p.resolve() for p in files]
    workdir = files[0].parent
    env = dict(os.environ if environ is None else environ)
    command = command or default_compose_command()
    v1 = _is_v1(command, workdir, env)
    name = project or env.get("COMPOSE_PROJECT_NAME") or workdir.name
    if v1:
        name = _V1_PROJECT.sub("", name.lower())
    if not name:
        raise ConfigError(f"no project name can be made of {workdir.name!r}: give --project")
    args = [*command, "-p", name]
    for path in files:
        args += ["-f", str(path)]
    active = set(profiles or []) | {
        p for p in env.get("COMPOSE_PROFILES", "").split(",") if p.strip()
    }
    for profile in sorted(active):
        args += ["--profile", profile]
    text = _run([*args, "config"], workdir, env)
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"compose config printed YAML that does not load: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigError("compose config printed no mapping")
    services = config.get("services") or {}
    kept = {str(k): v for k, v in services.items() if _active(v or {}, active)}
    skipped = sorted(str(k) for k in services if str(k) not in kept)
    if not v1 and isinstance(config.get("name"), str):
        name = config["name"]
    return ComposeProject(
        name=name,
        workdir=workdir,
        files=files,
        config=config,
        services=kept,
        skipped=skipped,
        env_files=_raw_env_files(files, workdir),
        v1=v1,
    )


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines of an env file, parsed as the loader parses `envFile` (python-dotenv)."""
    values = dotenv_values(path, interpolate=False)
    return {str(k): v for k, v in values.items() if v is not None}
