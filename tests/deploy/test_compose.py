"""compose.yaml: valid Compose Specification, understood by docker-compose 1.29, hardened."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

TOP = Path(__file__).resolve().parents[2]
SCHEMA = TOP / "tests" / "data" / "compose-spec.json"
SERVICES = {"observer", "supervisor", "executor", "ui", "collector", "docker-proxy", "notifier"}
NEEDS_REPO = SERVICES - {"docker-proxy"}  # the proxy reads no manifest
PROXY_SOCKET = "/run/homelab-engine/docker.sock"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((TOP / "compose.yaml").read_text())
    return doc


@pytest.fixture(scope="module")
def empty_env(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An empty --env-file, so a .env left by a bootstrap in the checkout is not read."""
    path = tmp_path_factory.mktemp("env") / "empty.env"
    path.write_text("")
    return str(path)


@pytest.fixture(scope="module")
def resolved(empty_env: str) -> dict[str, Any]:
    """The file as docker-compose 1.29 reads it, with variables resolved (all defaults)."""
    return _config(empty_env, {k: v for k, v in os.environ.items() if not k.startswith("HOMELAB_")})


def _config(env_file: str, env: dict[str, str]) -> dict[str, Any]:
    """`docker-compose config` of compose.yaml under `env`, parsed."""
    out = subprocess.run(
        ["docker-compose", "--env-file", env_file, "-f", str(TOP / "compose.yaml"), "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = yaml.safe_load(out.stdout)
    return doc


def test_compose_file_validates_against_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    if not SCHEMA.is_file():
        pytest.fail(
            f"the Compose Spec schema is missing: expected {SCHEMA} (see tests/data/README.md)"
        )
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_docker_compose_v1_understands_it(resolved: dict[str, Any]) -> None:
    assert set(resolved["services"]) == SERVICES
    commands = {name: svc["command"][:2] for name, svc in resolved["services"].items()}
    assert commands == {name: ["run", name] for name in SERVICES}


def test_all_services_share_one_image_runtime_root_and_read_only_repo(
    resolved: dict[str, Any],
) -> None:
    images = {svc["image"] for svc in resolved["services"].values()}
    assert images == {"homelab-reconciler:local"}
    for name, svc in resolved["services"].items():
        volumes = svc["volumes"]
        assert "/opt/homelab:/opt/homelab:rw" in volumes, name
        assert ("/srv/homelab-repo:/repo:ro" in volumes) == (name in NEEDS_REPO), name
        assert svc["environment"]["HOMELAB_ROOT"] == "/opt/homelab"


def test_every_service_is_unprivileged_and_hardened(resolved: dict[str, Any]) -> None:
    for name, svc in resolved["services"].items():
        assert svc["user"] == "1000:1000", name
        assert svc["read_only"] is True, name
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert svc["cap_drop"] == ["ALL"], name
        assert "cap_add" not in svc and "privileged" not in svc, name
        assert svc["restart"] == "unless-stopped", name
        assert svc["logging"] == {
            "driver": "json-file",
            "options": {"max-size": "10m", "max-file": "5"},
        }, name


def _mounts(svc: dict[str, Any]) -> dict[str, str]:
    """target -> source of a service's volumes."""
    return {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}


def test_only_the_executor_and_the_proxy_get_the_docker_socket(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    with_socket = {
        name
        for name, svc in services.items()
        if "/var/run/docker.sock" in _mounts(svc).values() or "DOCKER_HOST" in svc["environment"]
    }
    assert with_socket == {"executor", "docker-proxy"}
    for name in ("executor", "docker-proxy"):
        assert _mounts(services[name])["/var/run/docker.sock"] == "/var/run/docker.sock"
        assert services[name]["group_add"] == ["999"], name
    assert services["executor"]["environment"]["DOCKER_HOST"] == "unix:///var/run/docker.sock"
    for name in ("observer", "supervisor", "ui", "collector"):
        assert not any("docker.sock" in v for v in services[name]["volumes"]), name
        assert "group_add" not in services[name], name
    assert "--no-docker" in services["observer"]["command"]


def test_the_collector_reads_the_engine_only_through_the_read_only_proxy(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    proxy, collector = services["docker-proxy"], services["collector"]
    assert proxy["command"] == [
        "run", "docker-proxy", "--listen", PROXY_SOCKET, "--engine", "unix:///var/run/docker.sock"
    ]  # fmt: skip
    assert collector["command"][-2:] == ["--local-engine", f"unix://{PROXY_SOCKET}"]
    assert proxy["network_mode"] == "none"  # unix sockets only
    # The proxy's socket lives in a tmpfs volume only these two mount; the collector read-only.
    with_volume = {
        name: [v for v in svc["volumes"] if v.startswith("engine-ro:")]
        for name, svc in services.items()
        if any(v.startswith("engine-ro:") for v in svc["volumes"])
    }
    assert with_volume == {
        "docker-proxy": ["engine-ro:/run/homelab-engine:rw"],
        "collector": ["engine-ro:/run/homelab-engine:ro"],
    }
    volume = resolved["volumes"]["engine-ro"]
    assert volume["driver_opts"] == {
        "type": "tmpfs",
        "device": "tmpfs",
        "o": "uid=1000,gid=1000,mode=0700",
    }
    assert collector["depends_on"] == {"docker-proxy": {"condition": "service_started"}}


def test_ui_listens_on_8080_with_a_healthz_healthcheck(resolved: dict[str, Any]) -> None:
    ui = resolved["services"]["ui"]
    assert ui["command"][-2:] == ["--port", "8080"]
    assert "http://127.0.0.1:8080/healthz" in " ".join(ui["healthcheck"]["test"])
    for name, svc in resolved["services"].items():
        assert svc["healthcheck"]["test"][0] == "CMD", name


def test_variables_move_the_runtime_root_and_repository(empty_env: str) -> None:
    doc = _config(
        empty_env, dict(os.environ, HOMELAB_ROOT="/data/hl", HOMELAB_REPO_PATH="/home/me/lab")
    )
    for name, svc in doc["services"].items():
        assert "/data/hl:/data/hl:rw" in svc["volumes"]
        assert ("/home/me/lab:/repo:ro" in svc["volumes"]) == (name in NEEDS_REPO)


def test_dockerfile_is_multi_stage_non_root_and_installs_from_wheels() -> None:
    text = (TOP / "Dockerfile").read_text()
    stages = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(stages) == 2
    final = text.split(stages[-1], 1)[1]
    assert "USER 1000:1000" in final
    assert "COPY --from=build /opt/venv /opt/venv" in final
    assert "--no-index" in text and "dist/wheels" in text
    assert "gcc" not in final and "build-essential" not in final
    ignore = (TOP / ".dockerignore").read_text().split()
    assert ignore[-2:] == ["*", "!dist/wheels"]


def test_every_healthcheck_names_a_service_that_homelab_health_knows(
    resolved: dict[str, Any], tmp_path: Path
) -> None:
    """`homelab health X` must accept X (the notifier was refused: its container unhealthy)."""
    homelab = str(Path(sys.executable).with_name("homelab"))
    for name, svc in resolved["services"].items():
        test = svc["healthcheck"]["test"]
        if test[1:3] != ["homelab", "health"]:
            continue
        assert test[3] == name, (name, test)
        done = subprocess.run(
            [homelab, "health", test[3], "--root", str(tmp_path)], capture_output=True, text=True
        )
        # No heartbeat under an empty root: "not running" (1), never a usage error (2).
        assert done.returncode == 1, (name, done.returncode, done.stderr)
