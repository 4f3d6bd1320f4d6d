"""Shared fixtures: real git repositories, runtime roots and the real Docker engine.

The Docker engine is the private one `hack/dev-daemons.sh start` runs (hack/test.sh
exports HOMELAB_TEST_DOCKER_HOST). Tests that need it fail loudly when it is
missing: a skipped test would be a failing feature. Every test that uses the engine
carries `@pytest.mark.docker` (so `-m "not docker"` leaves exactly those out);
`pytest_runtest_setup` below fails a test that reaches `docker_host`, directly or
through a fixture built on it, without the marker.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.runtime_root import RuntimeRoot

BUSYBOX = "local/busybox:1"
# The fixture every use of the engine goes through: docker_client and the labs built on
# them request it, so it is in the fixture closure of every test that needs the engine.
DOCKER_FIXTURE = "docker_host"


class GitRepo:
    """A real git repository in a temporary folder, with helpers to commit."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "test@example.invalid")
        self.git("config", "user.name", "Test Operator")
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str) -> str:
        out = subprocess.run(
            ["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True
        )
        return out.stdout.strip()

    def write(self, rel: str, text: str) -> Path:
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
        return target

    def remove(self, rel: str) -> None:
        self.git("rm", "-q", rel)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    @property
    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "repo")


@pytest.fixture
def runtime_root(tmp_path: Path) -> RuntimeRoot:
    return RuntimeRoot(tmp_path / "root").ensure()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail, before any fixture runs, a test that uses the engine without the docker marker.

    `fixturenames` is the test's whole fixture closure (fixtures of fixtures
    included), known at collection; a fixture fetched with `request.getfixturevalue`
    would not show there, and no test here does that.
    """
    uses_engine = DOCKER_FIXTURE in getattr(item, "fixturenames", ())
    if uses_engine and item.get_closest_marker("docker") is None:
        pytest.fail(
            f"{item.nodeid} uses the Docker engine (fixture {DOCKER_FIXTURE}) but is not "
            "marked: add @pytest.mark.docker (or pytestmark = pytest.mark.docker)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def docker_host() -> str:
    host = os.environ.get("HOMELAB_TEST_DOCKER_HOST")
    if not host:
        pytest.fail(
            "HOMELAB_TEST_DOCKER_HOST is not set: run the suite with `make test` "
            "(hack/test.sh starts the Docker engine the tests need)",
            pytrace=False,
        )
    return host


@pytest.fixture(scope="session")
def docker_client(docker_host: str) -> Iterator[object]:
    import docker

    client = docker.DockerClient(base_url=docker_host, timeout=30)
    try:
        client.ping()
    except Exception as exc:  # the engine must be up; fail, never skip
        pytest.fail(f"Docker engine at {docker_host} is not answering: {exc}", pytrace=False)
    client.images.get(BUSYBOX)
    yield client
    client.close()
