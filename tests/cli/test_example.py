"""The example repository `homelab up` creates when no --repo is given."""

from __future__ import annotations

import subprocess
from pathlib import Path

from reconciler.cli.example import create_example_repo, example_source
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitSource


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def test_example_repo_is_created_committed_and_valid(runtime_root: RuntimeRoot) -> None:
    repo, created = create_example_repo(runtime_root, "unix:///tmp/elsewhere/docker.sock")
    assert created and repo == runtime_root.path / "example-repo"
    assert git(repo, "status", "--porcelain") == ""
    files = git(repo, "ls-files").splitlines()
    assert "manifests/nodes.yaml" in files and "compose/whoami/compose.yaml" in files
    nodes = (repo / "manifests" / "nodes.yaml").read_text()
    assert "dockerHost: unix:///tmp/elsewhere/docker.sock" in nodes
    desired = GitSource(repo).load()
    assert not desired.errors
    kinds = sorted({kind for kind, _name in desired.manifests})
    assert kinds == ["ComposeStack", "Container", "File", "Node"]


def test_existing_example_repo_keeps_the_operators_commits(runtime_root: RuntimeRoot) -> None:
    repo, _ = create_example_repo(runtime_root)
    (repo / "manifests" / "files.yaml").write_text("# emptied by the operator\n")
    git(repo, "-c", "user.name=op", "-c", "user.email=op@x", "commit", "-qam", "mine")
    mine = git(repo, "rev-parse", "HEAD")
    again, created = create_example_repo(runtime_root)
    assert again == repo and not created
    assert git(repo, "rev-parse", "HEAD") == mine


def test_example_source_has_the_projects_manifests() -> None:
    source = example_source()
    top = Path(__file__).resolve().parents[2]
    for rel in ("manifests/nodes.yaml", "manifests/apps/web.yaml", "compose/whoami/compose.yaml"):
        assert (source / rel).read_bytes() == (top / rel).read_bytes()
