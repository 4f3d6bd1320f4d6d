"""`homelab import docker --node local` on containers `docker-compose up -d` started.

The same five projects as tests/importing/test_compose_import.py, read back
from the engine instead of the files: one manifest file per container (with
the networks and volumes they use beside them), the same kinds, and a plan
of adopts with no field changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.runtime_root import RuntimeRoot
from tests.conftest import GitRepo
from tests.importing.images import build_images
from tests.importing.kit import NODE_YAML, compose_up, copy_samples, homelab, plan_json

pytestmark = pytest.mark.docker
CONTAINERS = {
    "traefik",
    "traefik-whoami",
    "jellyfin",
    "postgres-db",
    "postgres-adminer",
    "nextcloud-db",
    "nextcloud-redis",
    "nextcloud-app",
    "nextcloud-cron",
    "vaultwarden",
}


def test_import_docker_writes_one_file_per_container_and_plans_adopt(
    git_repo: GitRepo,
    tmp_path: Path,
    runtime_root: RuntimeRoot,
    docker_host: str,
    docker_client: Any,
) -> None:
    build_images(docker_client)
    samples = copy_samples(tmp_path / "samples")
    git_repo.write("manifests/node.yaml", NODE_YAML.format(host=docker_host))
    with compose_up(samples, docker_host):
        result = homelab("import", "docker", "--node", "local", "--repo", str(git_repo.path))
        assert result.returncode == 0, result.stderr
        folder = git_repo.path / "manifests" / "local"
        files = {p.stem for p in folder.iterdir()}
        assert files == CONTAINERS | {"networks", "volumes"}
        kinds = set()
        for path in folder.iterdir():
            text = path.read_text()
            docs = [d for d in yaml.safe_load_all(text) if d]
            kinds |= {d["kind"] for d in docs}
            if path.stem in CONTAINERS:
                [doc] = docs
                short = docker_client.containers.get(doc["spec"]["containerName"]).short_id
                assert text.startswith(f"# imported from container {short} on node local\n")
        assert kinds == {"Container", "Network", "Volume"}
        db = yaml.safe_load((folder / "postgres-db.yaml").read_text())["spec"]
        assert db["containerName"] == "postgres_db_1"
        assert db["volumes"] == [
            {"volume": "postgres_pgdata", "target": "/var/lib/postgresql/data"}
        ]
        assert db["networks"] == [{"network": "postgres_default", "aliases": ["db"]}]
        assert "Volume/postgres-pgdata" in db["dependsOn"]
        git_repo.commit("import docker")
        valid = homelab("validate", "--repo", str(git_repo.path), "--root", str(runtime_root.path))
        assert valid.returncode == 0, valid.stderr
        plan = plan_json(git_repo.path, runtime_root.path, docker_host)
        changes = plan["changes"]
        assert isinstance(changes, list)
        assert {c["name"] for c in changes if c["kind"] == "Container"} == CONTAINERS
        for change in changes:
            assert change["operation"] == "adopt", (change["kind"], change["name"])
            assert change["patch"] == [], (change["kind"], change["name"], change["patch"])
        # A second run finds everything it wrote unchanged.
        again = homelab("import", "docker", "--node", "local", "--repo", str(git_repo.path))
        assert "Import: 0 created, 0 updated, 19 unchanged" in again.stdout, again.stdout
