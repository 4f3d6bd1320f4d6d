"""Compose properties homelab does not run are warnings naming service and property."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.conftest import GitRepo
from tests.importing.kit import homelab

COMPOSE = """\
services:
  app:
    build: ./app
    links: [db]
    configs: [settings]
    restart: on-failure:3
    volumes:
      - /data
      - type: tmpfs
        target: /scratch
        tmpfs:
          size: 1048576
    environment:
      API_TOKEN: abc
    secrets:
      - db_password
    networks:
      back:
        priority: 10
  db:
    image: local/postgres:16
    networks: [back]
  cache:
    image: local/redis:7-alpine
    network_mode: "service:app"
    profiles: [extra]
configs:
  settings:
    file: ./settings.ini
networks:
  back:
    external: true
secrets:
  db_password:
    file: ./db_password.txt
"""


def test_unmappable_properties_warn_and_the_rest_is_imported(
    git_repo: GitRepo, tmp_path: Path
) -> None:
    project = tmp_path / "shop"
    project.mkdir()
    (project / "compose.yaml").write_text(COMPOSE)
    (project / "settings.ini").write_text("[x]\n")
    (project / "db_password.txt").write_text("hunter2\n")
    (project / "app").mkdir()  # compose config checks that the build context exists
    result = homelab(
        "import",
        "compose",
        str(project / "compose.yaml"),
        "--profile",
        "extra",
        "--repo",
        str(git_repo.path),
    )
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: ")]
    expected = [
        "warning: service app: build: not mapped: homelab runs images and does not build them",
        "warning: service app: links: not mapped: links are legacy",
        "warning: service app: configs: not mapped: compose configs are not mapped",
        "warning: service app: restart: on-failure:3: the retry count is not mapped",
        "warning: service app: volumes: /data: an anonymous volume is not mapped",
        "warning: service app: networks.back: priority is not mapped",
        "warning: service app: image: none given: the image compose builds, shop_app",
        "warning: Container/shop-app: env API_TOKEN looks like a secret",
        "warning: service app: secrets: db_password: put its value in ROOT/secrets/db-password",
    ]
    for line in expected:
        assert any(w.startswith(line) for w in warnings), (line, warnings)
    docs = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all((git_repo.path / "manifests/shop.yaml").read_text())
        if d
    }
    # An external network is named, not managed: no Network resource for it.
    assert set(docs) == {"shop-app", "shop-cache", "shop-db"}
    app = docs["shop-app"]["spec"]
    assert app["restartPolicy"] == "on-failure"
    assert app["secrets"] == [{"secret": "db-password", "target": "/run/secrets/db_password"}]
    assert "hunter2" not in (git_repo.path / "manifests/shop.yaml").read_text()
    assert app["tmpfs"] == [{"target": "/scratch", "size": 1048576}]
    assert app["networks"] == [{"network": "back", "aliases": ["app"]}]
    assert app["dependsOn"] == ["Container/shop-db"]  # links imply the order, as compose does
    assert docs["shop-cache"]["spec"]["networkMode"] == "container:shop_app_1"


def test_a_broken_compose_file_is_one_clear_error(git_repo: GitRepo, tmp_path: Path) -> None:
    bad = tmp_path / "bad" / "compose.yaml"
    bad.parent.mkdir()
    bad.write_text("services:\n  web:\n    image: [unclosed\n")
    result = homelab("import", "compose", str(bad), "--repo", str(git_repo.path))
    assert result.returncode == 1
    assert "docker-compose" in result.stderr and "config failed" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (git_repo.path / "manifests").exists()
