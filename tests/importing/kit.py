"""Shared parts of the import tests: the sample projects, the CLI, compose on our engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

TOP = Path(__file__).resolve().parents[2]
SAMPLES = TOP / "tests" / "data" / "compose-real"
PROJECTS = ("traefik", "jellyfin", "postgres", "nextcloud", "vaultwarden")
# This machine may have no GPU: the media server gets /dev/null where /dev/dri would be.
SAMPLE_ENV = {"JELLYFIN_RENDER_DEVICE": "/dev/null"}
NODE_YAML = """\
apiVersion: homelab.reconciler/v1alpha1
kind: Node
metadata:
  name: local
spec:
  dockerHost: {host}
"""


def copy_samples(target: Path) -> Path:
    """The sample projects in a folder of the test's own, with the bind sources they use."""
    shutil.copytree(SAMPLES, target)
    for folder in ("jellyfin/config", "jellyfin/cache", "jellyfin/media", "vaultwarden/vw-data"):
        (target / folder).mkdir(parents=True, exist_ok=True)
    return target


def env(docker_host: str | None = None) -> dict[str, str]:
    out = {**os.environ, **SAMPLE_ENV, "PYTHONPATH": str(TOP), "NO_COLOR": "1"}
    out.pop("COMPOSE_PROJECT_NAME", None)
    out.pop("COMPOSE_PROFILES", None)
    if docker_host:
        out["DOCKER_HOST"] = docker_host
    return out


def homelab(*args: str, docker_host: str | None = None) -> subprocess.CompletedProcess[str]:
    """`homelab ARGS` in a fresh process, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        capture_output=True,
        text=True,
        cwd=TOP,
        timeout=180,
        env=env(docker_host),
    )


def compose(project_dir: Path, docker_host: str, *args: str) -> None:
    done = subprocess.run(
        ["docker-compose", *args],
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=300,
        env=env(docker_host),
    )
    assert done.returncode == 0, done.stderr


@contextmanager
def compose_up(
    samples: Path, docker_host: str, projects: tuple[str, ...] = PROJECTS
) -> Iterator[None]:
    """`docker-compose up -d` of each project on our engine; `down -v` afterwards."""
    started = []
    try:
        for project in projects:
            compose(samples / project, docker_host, "up", "-d")
            started.append(project)
        yield
    finally:
        for project in started:
            compose(samples / project, docker_host, "down", "-v", "--remove-orphans")


def plan_json(repo: Path, root: Path, docker_host: str) -> dict[str, object]:
    result = homelab(
        "plan",
        "--refresh",
        "--json",
        "--repo",
        str(repo),
        "--root",
        str(root),
        docker_host=docker_host,
    )
    assert result.returncode in (0, 2), result.stderr
    doc: dict[str, object] = orjson.loads(result.stdout)
    return doc
