"""The file driver through the executor: atomic writes, modes, sources, and the root fence."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import orjson
import pytest

from reconciler.drivers.file import safe_target
from reconciler.errors import PathOutsideRoot
from tests.executor.lab import Lab


def file_yaml(name: str, **spec: object) -> str:
    doc = {
        "apiVersion": "homelab.reconciler/v1alpha1",
        "kind": "File",
        "metadata": {"name": name},
        "spec": spec,
    }
    return orjson.dumps(doc).decode() + "\n"


@pytest.mark.docker
def test_a_file_is_written_with_its_content_and_mode_then_updated_and_deleted(lab: Lab) -> None:
    target = lab.files / "www" / "index.html"
    page = file_yaml("page", path=str(target), content="hi\n", mode="0640")
    lab.write("manifests/page.yaml", page)
    lab.commit()
    [create] = lab.propose()
    assert lab.run_now([create]) == ["done"]
    assert target.read_text() == "hi\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert lab.plan().plan.empty

    lab.write("config/page.html", "<h1>from the repository</h1>\n")
    lab.write(
        "manifests/page.yaml",
        file_yaml("page", path=str(target), source="config/page.html", mode="0600"),
    )
    lab.commit()
    [update] = lab.propose()
    assert update.operation == "update"
    assert lab.run_now([update]) == ["done"]
    assert target.read_text() == "<h1>from the repository</h1>\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temp left

    lab.repo.remove("manifests/page.yaml")
    lab.commit()
    [delete] = lab.propose()
    assert lab.run_now([delete]) == ["done"]
    assert not target.exists()


@pytest.mark.docker
def test_a_file_from_a_secret_is_written_but_never_shown(lab: Lab) -> None:
    (lab.root.secrets / "api-token").write_bytes(b"s3cr3t-value\n")
    target = lab.files / "token"
    lab.write("manifests/token.yaml", file_yaml("token", path=str(target), secret="api-token"))
    lab.commit()
    [action] = lab.propose()
    assert lab.run_now([action]) == ["done"]
    assert target.read_bytes() == b"s3cr3t-value\n"
    everything = b"".join(p.read_bytes() for p in lab.root.path.rglob("*.json*"))
    assert b"s3cr3t" not in everything  # queue, events, world: fingerprints only


@pytest.mark.parametrize(
    "path_in_root",
    ["../outside/x", "sub/../../outside/x"],
)
@pytest.mark.docker
def test_dot_dot_paths_are_refused(lab: Lab, path_in_root: str) -> None:
    path = f"{lab.files}/{path_in_root}"
    lab.write("manifests/f.yaml", file_yaml("f", path=path, content="x"))
    lab.commit()
    [action] = lab.propose()
    assert lab.run_now([action]) == ["failed"]
    assert "must not contain '..'" in lab.action(action.id).outcome["error"]


@pytest.mark.docker
def test_paths_outside_the_allowed_roots_are_refused(lab: Lab, tmp_path: Path) -> None:
    lab.write("manifests/f.yaml", file_yaml("f", path=str(tmp_path / "elsewhere"), content="x"))
    lab.commit()
    [action] = lab.propose()
    assert lab.run_now([action]) == ["failed"]
    error = lab.action(action.id).outcome["error"]
    assert "outside the node's allowed roots" in error and "allowedRoots" in error
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.docker
def test_a_symlink_out_of_the_root_is_refused(lab: Lab, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, lab.files / "escape")
    lab.write("manifests/f.yaml", file_yaml("f", path=f"{lab.files}/escape/x", content="x"))
    lab.commit()
    [action] = lab.propose()
    assert lab.run_now([action]) == ["failed"]
    assert "through a symlink" in lab.action(action.id).outcome["error"]
    assert list(outside.iterdir()) == []


def test_safe_target_accepts_only_paths_strictly_inside_a_root(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert safe_target(f"{root}/a/b", (root,), what="t") == tmp_path / "a" / "b"
    for bad in (root, f"{root}-sibling/x", "relative/x", f"{root}/a/../b"):
        with pytest.raises(PathOutsideRoot):
            safe_target(bad, (root,), what="t")
    (tmp_path / "link").symlink_to(tmp_path / "a")
    with pytest.raises(PathOutsideRoot, match="is a symlink"):
        safe_target(f"{root}/link", (root,), what="t")
