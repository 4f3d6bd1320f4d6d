"""The two imports end to end: read the source, map it, write the manifests.

`import_compose` normalises a compose project (`compose_config`), copies its
env files into the repository (`env/<project>/<file>`, the `envFile` of the
services that read them), maps it (`compose_map`) and merges the manifests
into `<manifests>/<project>.yaml` (`writer`). `import_docker` reads every
running container of a node's engine (`docker_map`) into
`<manifests>/<node>/<container>.yaml`, with the networks and volumes they use
in `<node>/networks.yaml` and `<node>/volumes.yaml`. The manifests folder is
`homelab.yaml`'s `manifestsPath` (default `manifests`) in the work tree; the
import writes files and never commits. Used by `reconciler.cli.importing`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import ConfigError
from reconciler.importing.compose_config import load_project
from reconciler.importing.compose_map import ComposeMapper, env_file_copies
from reconciler.importing.docker_map import DockerMapper
from reconciler.importing.model import ImportResult, dns_name
from reconciler.importing.writer import WriteReport, write_all
from reconciler.resources.kinds import ContainerSpec, NodeSpec
from reconciler.resources.repo import REPO_CONFIG_FILE
from reconciler.sources.manifests import parse_repo_config

ENV_FILE_FIELD = "envFile"  # issue 17's name for compose's env_file
_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL", re.IGNORECASE)


@dataclass
class ImportOutcome:
    report: WriteReport
    warnings: list[str] = field(default_factory=list)
    folder: Path = Path("manifests")


def manifests_folder(repo: Path) -> Path:
    """The manifests folder of the repository's work tree (homelab.yaml's manifestsPath)."""
    config_path = repo / REPO_CONFIG_FILE
    rel = "manifests"
    if config_path.is_file():
        config, errors = parse_repo_config(REPO_CONFIG_FILE, config_path.read_bytes())
        if errors:
            raise ConfigError(f"{config_path}: {errors[0]}")
        if config is not None:
            rel = config.manifestsPath
    folder = (repo / rel).resolve()
    if not folder.is_relative_to(repo.resolve()):
        raise ConfigError(f"manifestsPath {rel!r} leaves the repository")
    return folder


def _secret_warnings(result: ImportResult) -> None:
    for items in result.files.values():
        for item in items:
            env = item.spec.get("env")
            names = env if isinstance(env, dict) else {}
            for name in sorted(n for n in names if _SECRET_NAME.search(n)):
                result.warnings.append(
                    f"{item.kind}/{item.name}: env {name} looks like a secret and is written "
                    f"into git: move it to ROOT/secrets/ and use valueFrom"
                )


def _copy_env_files(repo: Path, project: str, files: dict[str, list[Path]]) -> dict[str, list[str]]:
    """Copy each env file to env/<project>/<name>; the repository paths per service."""
    target_dir = repo / "env" / dns_name(project)
    paths: dict[str, list[str]] = {}
    for service, sources in files.items():
        for source in sources:
            target = target_dir / source.name
            target_dir.mkdir(parents=True, exist_ok=True)
            if not target.exists() or target.read_bytes() != source.read_bytes():
                shutil.copyfile(source, target)
            paths.setdefault(service, []).append(str(target.relative_to(repo)))
    return paths


def import_compose(
    repo: Path,
    files: list[Path],
    *,
    project: str | None = None,
    node: str = "local",
    profiles: list[str] | None = None,
    command: tuple[str, ...] | None = None,
    environ: dict[str, str] | None = None,
) -> ImportOutcome:
    loaded = load_project(
        files, project=project, profiles=profiles, command=command, environ=environ
    )
    copies = env_file_copies(loaded)
    env_paths: dict[str, list[str]] = {}
    if ENV_FILE_FIELD in ContainerSpec.model_fields:
        env_paths = _copy_env_files(repo, loaded.name, copies)
    mapper = ComposeMapper(loaded, node=node, env_file_paths=env_paths)
    result = mapper.map()
    for service in sorted(s for s, paths in copies.items() if paths and s not in env_paths):
        result.warnings.append(
            f"service {service}: env_file: homelab has no {ENV_FILE_FIELD} field yet: its "
            "values are written under env"
        )
    for service, paths in env_paths.items():
        result.warnings.append(
            f"service {service}: env_file copied to {', '.join(paths)} (envFile): it is "
            "committed with the manifests, keep secrets out of it"
        )
    _secret_warnings(result)
    folder = manifests_folder(repo)
    return ImportOutcome(write_all(folder, result.files), result.warnings, folder)


def node_docker_host(folder: Path, node: str) -> str:
    """The dockerHost of Node/<node> in the manifests work tree (default: the local socket)."""
    paths = sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml")]) if folder.is_dir() else []
    for path in paths:
        try:
            docs = list(yaml.safe_load_all(path.read_bytes()))
        except (OSError, yaml.YAMLError):
            continue
        for doc in docs:
            if not isinstance(doc, dict) or doc.get("kind") != "Node":
                continue
            if (doc.get("metadata") or {}).get("name") == node:
                host = (doc.get("spec") or {}).get("dockerHost")
                return str(host) if host else NodeSpec().dockerHost
    return NodeSpec().dockerHost


def _inspect_all(
    client: Any, include_stopped: bool
) -> list[tuple[Any, Any, dict[str, Any], dict[str, Any]]]:
    import docker.errors

    found = []
    networks: dict[str, dict[str, Any]] = {}
    volumes: dict[str, dict[str, Any]] = {}
    for summary in client.api.containers(all=include_stopped):
        try:
            attrs = client.api.inspect_container(summary["Id"])
        except docker.errors.NotFound:
            continue  # removed while listed
        try:
            image = client.api.inspect_image(attrs["Image"])
        except docker.errors.NotFound:
            image = None
        for name in (attrs.get("NetworkSettings") or {}).get("Networks") or {}:
            if name not in networks:
                with contextlib.suppress(docker.errors.NotFound):
                    networks[name] = client.api.inspect_network(name)
        for mount in attrs.get("Mounts") or []:
            name = mount.get("Name")
            if mount.get("Type") == "volume" and name and name not in volumes:
                with contextlib.suppress(docker.errors.NotFound):
                    volumes[name] = client.api.inspect_volume(name)
        found.append((attrs, image, networks, volumes))
    return found


def import_docker(
    repo: Path,
    node: str,
    *,
    docker_host: str | None = None,
    include_stopped: bool = False,
) -> ImportOutcome:
    import docker
    import docker.errors

    folder = manifests_folder(repo)
    host = docker_host or node_docker_host(folder, node)
    try:
        client = docker.DockerClient(base_url=host, timeout=30)
        client.ping()
    except docker.errors.DockerException as exc:
        raise ConfigError(f"node {node}: the engine at {host} does not answer: {exc}") from exc
    try:
        mapper = DockerMapper(node)
        for attrs, image, networks, volumes in _inspect_all(client, include_stopped):
            mapper.add(attrs, image, networks, volumes)
        result = mapper.result()
    finally:
        client.close()
    _secret_warnings(result)
    return ImportOutcome(write_all(folder, result.files), result.warnings, folder)
