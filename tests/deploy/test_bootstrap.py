"""hack/bootstrap-vps-control-plane.sh: the runtime tree, idempotent, keeps all data.

Runs the real script with HOMELAB_BOOTSTRAP_STEPS=tree,repo on a temporary
root (building the image and starting the stack are exercised by
hack/e2e-compose.sh, which runs the script twice against a real engine).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from reconciler.runtime_root import QUEUE_STATES

TOP = Path(__file__).resolve().parents[2]
SCRIPT = TOP / "hack" / "bootstrap-vps-control-plane.sh"


def bootstrap(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = dict(
        os.environ,
        HOMELAB_ROOT=str(tmp_path / "root"),
        HOMELAB_REPO_PATH=str(tmp_path / "repo"),
        HOMELAB_FILES_ROOT=str(tmp_path / "files"),
        HOMELAB_BOOTSTRAP_STEPS="tree,repo",
    )
    env.update(extra)
    return subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, check=False)


def expected_owner() -> int:
    return 1000 if os.geteuid() == 0 else os.geteuid()


def test_bootstrap_creates_the_runtime_tree_with_owners_and_modes(tmp_path: Path) -> None:
    result = bootstrap(tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "root"
    folders = ["events", "world", "state", "logs", "cache", "stacks", "secrets"]
    folders += [f"queue/{state}" for state in QUEUE_STATES]
    for rel in folders:
        info = (root / rel).stat()
        assert stat.S_ISDIR(info.st_mode), rel
        assert info.st_uid == expected_owner(), rel
        expected = 0o700 if rel == "secrets" else 0o750
        assert stat.S_IMODE(info.st_mode) == expected, rel
    repo = tmp_path / "repo"
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--oneline"], capture_output=True, text=True
    )
    assert "Example homelab" in log.stdout
    assert (repo / "manifests" / "nodes.yaml").is_file()


def test_second_run_keeps_every_event_world_document_and_queued_action(tmp_path: Path) -> None:
    assert bootstrap(tmp_path).returncode == 0
    root = tmp_path / "root"
    data = {
        "events/2025-01-01/observer.jsonl": '{"id":"1"}\n{"id":"2"}\n',
        "world/File/index-page.json": '{"kind":"File"}\n',
        "queue/pending/abc.json": '{"id":"abc"}\n',
        "state/observer_checkpoint.json": '{"offsets":{}}\n',
        "secrets/token": "s3cret",
    }
    for rel, text in data.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "secrets" / "token").chmod(0o644)
    (root / "world" / "File").chmod(0o700)
    head = subprocess.run(
        ["git", "-C", str(tmp_path / "repo"), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout

    again = bootstrap(tmp_path)
    assert again.returncode == 0, again.stderr
    for rel, text in data.items():
        assert (root / rel).read_text() == text, rel
        assert (root / rel).stat().st_uid == expected_owner(), rel
    assert stat.S_IMODE((root / "secrets" / "token").stat().st_mode) == 0o600
    head_again = subprocess.run(
        ["git", "-C", str(tmp_path / "repo"), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout
    assert head_again == head
    assert "repository" in again.stderr and "creating" not in again.stderr


def test_relative_paths_are_refused_with_a_clear_message(tmp_path: Path) -> None:
    result = bootstrap(tmp_path, HOMELAB_ROOT="relative/root")
    assert result.returncode == 1
    assert "HOMELAB_ROOT must be an absolute path (got 'relative/root')" in result.stderr


def test_a_repository_path_that_is_not_git_is_refused(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    result = bootstrap(tmp_path)
    assert result.returncode == 1
    assert "is not a git repository with a commit" in result.stderr


def test_script_is_shellcheck_clean() -> None:
    result = subprocess.run(
        ["shellcheck", str(SCRIPT), str(TOP / "hack" / "e2e-compose.sh")],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout
