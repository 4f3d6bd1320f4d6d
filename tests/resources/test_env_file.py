"""`envFile`: values from repository files merged under `env` when a commit is loaded.

A real git repository: the files are read at the commit, a later file wins
over an earlier one and the manifest's `env` over both; `envFile` itself is
not in the comparable spec; a missing file or a line without a value is a
located error and the resource is invalid (never applied half-configured).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from reconciler.resources.normalize import comparable_spec
from reconciler.sources.git import GitSource
from tests.conftest import GitRepo


class _NoInputs:
    def repo_file_sha256(self, path: str) -> str | None:
        return None

    def secret_sha256(self, name: str) -> str | None:
        return None


def _manifest(**spec: Any) -> str:
    doc = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "Container",
        "metadata": {"name": "app"},
        "spec": {"image": "local/busybox:1", **spec},
    }
    return orjson.dumps(doc).decode() + "\n"


def test_env_files_are_merged_under_env_and_env_wins(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write(
        "env/common.env", "# shared\nTZ=Europe/Berlin\nPUID=1000\nexport GREETING='hi there'\n"
    )
    repo.write("env/app.env", "PUID=1001\nURL=http://db:5432/${NOT_EXPANDED}\n")
    repo.write(
        "manifests/app.yaml",
        _manifest(envFile=["env/common.env", "./env/app.env"], env={"TZ": "UTC"}),
    )
    repo.commit("env files")
    state = GitSource(repo.path).load()
    assert state.valid, [str(e) for e in state.errors]
    [manifest] = state.manifests.values()
    spec = comparable_spec("Container", manifest.doc, _NoInputs())
    assert "envFile" not in spec
    assert {v["name"]: v["value"] for v in spec["env"]} == {
        "GREETING": "hi there",
        "PUID": "1001",  # the later file wins
        "TZ": "UTC",  # the manifest's env wins
        "URL": "http://db:5432/${NOT_EXPANDED}",
    }
    assert [v["name"] for v in spec["env"]] == sorted(v["name"] for v in spec["env"])

    repo.write("env/app.env", "PUID=1002\n")  # the file changes, the manifest does not
    repo.commit("new uid")
    [again] = GitSource(repo.path).load().manifests.values()
    assert {v["name"]: v["value"] for v in again.doc["spec"]["env"]}["PUID"] == "1002"


def test_a_missing_or_bad_env_file_is_a_located_error(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("env/bad.env", "GOOD=1\nFROM_SHELL\n")
    repo.write(
        "manifests/app.yaml",
        "apiVersion: homelab.reconciler/v1alpha1\nkind: Container\nmetadata:\n  name: app\n"
        "spec:\n  image: local/busybox:1\n  envFile:\n    - env/common.env\n"
        "    - env/missing.env\n",
    )
    repo.write("env/common.env", "A=1\n")
    repo.write(
        "manifests/other.yaml", _manifest(envFile=["env/bad.env"]).replace('"app"', '"other"')
    )
    repo.commit("broken")
    state = GitSource(repo.path).load()
    assert state.manifests == {}
    messages = sorted(str(e) for e in state.errors)
    assert messages == [
        "manifests/app.yaml:9:7: spec.envFile[1]: 'env/missing.env' is not in the repository "
        "at this commit",
        "manifests/other.yaml:1:137: spec.envFile[0]: env/bad.env: FROM_SHELL has no value "
        "(NAME=value; a value from the shell's environment is not taken)",
    ]
    assert {ref.name for ref in state.invalid} == {"app", "other"}


def test_an_env_file_path_must_stay_in_the_repository(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    repo.write("manifests/app.yaml", _manifest(envFile=["../../etc/passwd"]))
    repo.commit("escape")
    state = GitSource(repo.path).load()
    [error] = state.errors
    assert "spec.envFile.0" in str(error) or "spec.envFile[0]" in str(error)
    assert "inside the repository" in str(error)
