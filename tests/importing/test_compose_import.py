"""`homelab import compose` on five real-world compose projects (tests/data/compose-real).

The CLI runs in a fresh process against a real git repository; compose is
Debian's docker-compose v1, which normalises each file (`config`) for the
import and starts the same file on the test engine (`up -d`) for the plan:
the imported homelab must plan as `adopt` with no field changes, so it moves
under management without a restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.importing.run import ENV_FILE_FIELD
from reconciler.resources.kinds import ContainerSpec
from reconciler.runtime_root import RuntimeRoot
from tests.conftest import GitRepo
from tests.importing.images import build_images
from tests.importing.kit import (
    NODE_YAML,
    PROJECTS,
    compose_up,
    copy_samples,
    homelab,
    plan_json,
)


def import_all(repo: GitRepo, samples: Path, docker_host: str | None = None) -> list[str]:
    outputs = []
    for project in PROJECTS:
        result = homelab(
            "import",
            "compose",
            str(samples / project / "compose.yaml"),
            "--repo",
            str(repo.path),
            docker_host=docker_host,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout + result.stderr)
    return outputs


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_five_projects_import_to_manifests_that_validate(
    git_repo: GitRepo, tmp_path: Path, runtime_root: RuntimeRoot
) -> None:
    samples = copy_samples(tmp_path / "samples")
    outputs = import_all(git_repo, samples)
    folder = git_repo.path / "manifests"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{p}.yaml" for p in PROJECTS)
    kinds = {d["kind"] for p in PROJECTS for d in documents(folder / f"{p}.yaml")}
    assert kinds == {"Container", "Network", "Volume"}
    # The comment names the source; the profile-only service is left out and said so.
    traefik = (folder / "traefik.yaml").read_text()
    assert "# imported from compose.yaml service traefik\n" in traefik
    assert "# imported from compose.yaml network proxy\n" in traefik
    assert "service debug: not imported (its profiles are not active" in outputs[0]
    # A secret-looking value interpolated from .env is written but called out.
    assert "env POSTGRES_PASSWORD looks like a secret" in outputs[2]
    git_repo.commit("import")
    result = homelab("validate", "--repo", str(git_repo.path), "--root", str(runtime_root.path))
    assert result.returncode == 0, result.stderr


def test_mapping_follows_compose_rules(git_repo: GitRepo, tmp_path: Path) -> None:
    """.env interpolation, extends, long/short syntaxes, env_file: what the manifests hold."""
    samples = copy_samples(tmp_path / "samples")
    import_all(git_repo, samples)
    folder = git_repo.path / "manifests"
    by_key = {
        (d["kind"], d["metadata"]["name"]): d["spec"]
        for p in PROJECTS
        for d in documents(folder / f"{p}.yaml")
    }
    traefik = by_key[("Container", "traefik")]
    assert traefik["containerName"] == "traefik"
    assert traefik["args"][0] == "--api.insecure=true"
    assert traefik["ports"] == [
        {"containerPort": 80, "hostPort": 19480, "hostIP": "127.0.0.1"},
        {"containerPort": 8080, "hostPort": 19481, "hostIP": "127.0.0.1"},
    ]
    assert traefik["networks"] == [{"network": "proxy", "aliases": ["traefik"]}]
    whoami = by_key[("Container", "traefik-whoami")]
    assert whoami["containerName"] == "traefik_whoami_1"
    assert whoami["networks"] == [{"network": "proxy", "aliases": ["whoami", "whoami.lan"]}]
    assert by_key[("Network", "proxy")]["name"] == "proxy"
    jellyfin = by_key[("Container", "jellyfin")]
    assert jellyfin["devices"] == [
        {"hostPath": "/dev/null", "containerPath": "/dev/dri/renderD128", "permissions": "rwm"}
    ]
    assert jellyfin["groupAdd"] == ["109"]
    assert {"source": str(samples / "jellyfin/media"), "target": "/media", "readOnly": True} in (
        jellyfin["volumes"]
    )
    db = by_key[("Container", "postgres-db")]
    assert db["healthcheck"] == {
        "test": ["CMD-SHELL", "pg_isready -U postgres"],
        "interval": 10,
        "timeout": 5,
        "startPeriod": 30,
        "retries": 5,
    }
    assert db["volumes"] == [{"volume": "postgres_pgdata", "target": "/var/lib/postgresql/data"}]
    assert db["restartPolicy"] == "always"
    assert db["shmSize"] == "128m"
    assert by_key[("Volume", "postgres-pgdata")]["name"] == "postgres_pgdata"
    app = by_key[("Container", "nextcloud-app")]
    cron = by_key[("Container", "nextcloud-cron")]
    # extends: both take image, volumes and environment from common.yaml.
    assert app["image"] == cron["image"] == "local/nextcloud:29-apache"
    assert app["env"]["MYSQL_PASSWORD"] == "example"  # ${MYSQL_PASSWORD} from .env
    assert cron["command"] == ["/cron.sh"]
    assert {"resource": "Container/nextcloud-db", "condition": "healthy"} in app["dependsOn"]
    assert "Container/nextcloud-redis" in app["dependsOn"]
    assert "Network/nextcloud-backend" in app["dependsOn"]
    assert by_key[("Network", "nextcloud-backend")]["internal"] is True
    assert (
        by_key[("Container", "nextcloud-db")]["args"][0] == "--transaction-isolation=READ-COMMITTED"
    )
    vault = by_key[("Container", "vaultwarden")]
    if ENV_FILE_FIELD in ContainerSpec.model_fields:
        # env_file -> envFile: a copy in the repository, its values not repeated under env.
        assert vault["envFile"] == ["env/vaultwarden/vaultwarden.env"]
        assert (git_repo.path / "env/vaultwarden/vaultwarden.env").read_text() == (
            samples / "vaultwarden/vaultwarden.env"
        ).read_text()
        assert "ADMIN_TOKEN" not in vault["env"]
    else:
        # No envFile field yet (issue 17 item 1 left it out): the values go under env.
        assert "envFile" not in vault
        assert vault["env"]["ADMIN_TOKEN"] == "not-a-real-token"
        assert vault["env"]["WEBSOCKET_ENABLED"] == "true"
        assert not (git_repo.path / "env").exists()
    assert vault["resources"] == {"cpus": 0.5, "memory": "256m", "memoryReservation": "64m"}
    assert vault["ulimits"] == {"nofile": {"soft": 4096, "hard": 8192}, "nproc": 65535}
    assert vault["logging"] == {
        "driver": "json-file",
        "options": {"max-file": "3", "max-size": "10m"},
    }
    assert vault["extraHosts"][0] == {"hostname": "smtp.lan", "ip": "192.168.1.25"}
    assert vault["tmpfs"] == [{"target": "/tmp", "size": "64m"}]
    assert vault["stopGracePeriod"] == 30
    assert vault["readOnly"] is True and vault["init"] is True


@pytest.mark.docker
def test_imported_projects_plan_as_adopt_with_no_diff(
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
        ids = {c.name: c.id for c in docker_client.containers.list()}
        import_all(git_repo, samples, docker_host)
        git_repo.commit("import")
        plan = plan_json(git_repo.path, runtime_root.path, docker_host)
        changes = plan["changes"]
        assert isinstance(changes, list)
        containers = [c for c in changes if c["kind"] == "Container"]
        assert len(containers) == 10, [(c["kind"], c["name"], c["operation"]) for c in changes]
        for change in changes:
            assert change["operation"] == "adopt", (change["kind"], change["name"], change)
            assert change["patch"] == [], (change["kind"], change["name"], change["patch"])
        # Nothing was restarted by importing and planning.
        assert {c.name: c.id for c in docker_client.containers.list()} == ids
