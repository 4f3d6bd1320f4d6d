"""Golden plan cases: each folder under tests/diff/cases/ is one planning scenario as data.

For every case the test commits `desired.yaml` (and the case's `files/`) to a real git
repository, puts its `secrets/` into a real runtime root, writes `observed.json` as managed
world documents, plans through the project's real loader, normalization and planner
(`compute_plan`, as `homelab plan` does) and compares the rendered plan with `plan.txt`
and the manifest errors with `errors.txt`, exactly. A new plan rule or field is a new
case folder, not a new test function; tests/diff/cases/README.md describes the format.

`HOMELAB_UPDATE_GOLDEN=1` rewrites the expected files from what the planner prints now
(review the diff before committing it); without it the test only compares.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest

from reconciler.atomic_files import atomic_write_json
from reconciler.diff import render_text
from reconciler.planning import compute_plan  # the one planner import of these tests
from reconciler.resources.normalize import spec_hash
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitSource
from reconciler.world import new_world_doc, world_path
from tests.conftest import GitRepo

CASES = Path(__file__).parent / "cases"
UPDATE = os.environ.get("HOMELAB_UPDATE_GOLDEN") == "1"
COMMIT = "<commit>"  # plan.txt's stand-in for the (per-run) commit id


def case_names() -> list[str]:
    return sorted(p.name for p in CASES.iterdir() if (p / "desired.yaml").is_file())


def commit_case(case: Path, repo: GitRepo) -> str:
    """Commit desired.yaml as manifests/desired.yaml and files/ at the repository top."""
    (repo.path / "manifests").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(case / "desired.yaml", repo.path / "manifests" / "desired.yaml")
    if (case / "files").is_dir():
        shutil.copytree(case / "files", repo.path, dirs_exist_ok=True)
    return repo.commit(case.name)


def install_secrets(case: Path, root: RuntimeRoot) -> list[bytes]:
    """Copy the case's secrets/ into ROOT/secrets (0600); their values, to look for later."""
    values = []
    folder = case / "secrets"
    for source in sorted(folder.iterdir()) if folder.is_dir() else []:
        target = root.secrets / source.name
        root.secrets.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o600)
        values.append(source.read_bytes())
    return values


def observe(
    root: RuntimeRoot,
    observed: dict[str, dict[str, Any] | None],
    runtime: dict[str, dict[str, Any]] | None = None,
    *,
    managed: bool = True,
) -> None:
    """World documents as the observer writes them.

    `Kind/name: spec` is a resource that exists with that observed spec; `Kind/name: null`
    one the project manages that is gone (removed by hand). `runtime` holds the facts the
    collectors report beside the spec (`status.runtime`: a file's text, a stack's files).
    `managed=False` writes them as the observer writes a resource that exists under the
    name but is not the project's.
    """
    for key, spec in observed.items():
        kind, name = key.split("/")
        doc = new_world_doc(kind, name)
        doc["status"].update(
            exists=spec is not None,
            managed=managed,
            observed=spec,
            observedAt="2026-12-01T00:00:00.000000Z",
            basis=spec_hash(spec) if spec is not None else "",
            health="Healthy" if spec is not None else "Missing",
        )
        if spec is not None and key in (runtime or {}):
            doc["status"]["runtime"] = (runtime or {})[key]
        atomic_write_json(world_path(root, kind, name), doc)


def compare_or_update(path: Path, actual: str) -> None:
    if UPDATE:
        if actual:
            path.write_text(actual)
        else:
            path.unlink(missing_ok=True)
        return
    expected = path.read_text() if path.exists() else ""
    assert actual == expected, f"{path} differs (HOMELAB_UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("name", case_names())
def test_plan_case(name: str, git_repo: GitRepo, runtime_root: RuntimeRoot) -> None:
    case = CASES / name
    commit = commit_case(case, git_repo)
    secrets = install_secrets(case, runtime_root)
    runtime_file = case / "runtime.json"
    runtime = orjson.loads(runtime_file.read_bytes()) if runtime_file.is_file() else None
    observe(runtime_root, orjson.loads((case / "observed.json").read_bytes()), runtime)
    if (case / "unmanaged.json").is_file():
        observe(runtime_root, orjson.loads((case / "unmanaged.json").read_bytes()), managed=False)

    result = compute_plan(GitSource(git_repo.path), runtime_root)

    assert result.plan.commit == commit
    text = render_text(result.plan) + "\n"
    for value in secrets:  # a secret shows only as its fingerprint
        assert value.strip() not in text.encode()
    compare_or_update(case / "plan.txt", text.replace(commit[:12], COMMIT))
    compare_or_update(case / "errors.txt", "".join(f"{e}\n" for e in result.errors))


def test_every_case_folder_is_complete() -> None:
    folders = sorted(p.name for p in CASES.iterdir() if p.is_dir())
    assert folders == case_names()
    assert len(folders) >= 10
    for name in folders:
        assert (CASES / name / "observed.json").is_file(), name
        assert (CASES / name / "plan.txt").is_file(), name
