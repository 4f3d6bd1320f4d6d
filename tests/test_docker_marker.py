"""The guard in tests/conftest.py: a test using the Docker engine must carry the docker marker.

Runs a small inner pytest session (pytester) whose conftest is the real one's hook and
`docker_host` fixture, and checks which inner tests pass and which fail with the hook's
message. The engine is never contacted: the hook fails before any fixture runs, and
`docker_host` only reads HOMELAB_TEST_DOCKER_HOST.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER_CONFTEST = """
import pytest
from tests.conftest import docker_host, pytest_runtest_setup

@pytest.fixture
def engine_lab(docker_host):
    return {"host": docker_host}
"""

INNER_TESTS = """
import pytest

def test_unmarked_direct(docker_host):
    assert docker_host

def test_unmarked_through_a_fixture(engine_lab):
    assert engine_lab

@pytest.mark.docker
def test_marked_direct(docker_host):
    assert docker_host == "unix:///nowhere/docker.sock"

@pytest.mark.docker
def test_marked_through_a_fixture(engine_lab):
    assert engine_lab["host"] == "unix:///nowhere/docker.sock"

def test_without_the_engine_needs_no_marker():
    assert 1 + 1 == 2
"""

INNER_MODULE_MARK = """
import pytest

pytestmark = pytest.mark.docker

def test_module_level_mark_counts(engine_lab):
    assert engine_lab["host"]
"""


def test_hook_fails_only_the_unmarked_tests_that_use_the_engine(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOMELAB_TEST_DOCKER_HOST", "unix:///nowhere/docker.sock")
    pytester.makeconftest(INNER_CONFTEST)
    pytester.makepyfile(test_inner=INNER_TESTS, test_module_mark=INNER_MODULE_MARK)
    pytester.makeini("[pytest]\nmarkers =\n    docker: needs the engine\n")
    result = pytester.runpytest("-p", "no:cacheprovider", "-rA", "--strict-markers")
    result.assert_outcomes(passed=4, errors=2)
    message = (
        "uses the Docker engine (fixture docker_host) but is not marked: add @pytest.mark.docker"
    )
    result.stdout.fnmatch_lines(
        [
            f"test_inner.py::test_unmarked_direct {message}*",
            f"test_inner.py::test_unmarked_through_a_fixture {message}*",
        ]
    )
    passed = {line.split()[1] for line in result.stdout.lines if line.startswith("PASSED ")}
    assert passed == {
        "test_inner.py::test_marked_direct",
        "test_inner.py::test_marked_through_a_fixture",
        "test_inner.py::test_without_the_engine_needs_no_marker",
        "test_module_mark.py::test_module_level_mark_counts",
    }
