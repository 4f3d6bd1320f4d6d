"""`homelab up` keeps its runtime tree private: 0700 folders, 0600 files.

The tree holds operator names and client addresses (queue history, events),
specs, the operator token and secrets; no other local user may read any of
it. Nothing in it is meant for a reverse proxy (it only talks HTTP to the UI).
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_up import Up, eventually, free_port, get_json, start_up

__all__ = ["start_up"]


def loose(root: Path) -> list[str]:
    """Everything in the runtime tree a group or other user could read, with its mode."""
    found = []
    for path in [root, *root.rglob("*")]:
        if path.is_symlink() or (root / "example-repo") in path.parents:
            continue  # the example repository is the operator's git checkout, not state
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{path.relative_to(root.parent)} {mode:04o}")
    return found


@pytest.mark.docker
def test_up_creates_the_runtime_tree_0700_and_its_files_0600(
    tmp_path: Path, docker_host: str, start_up: Callable[[list[str], dict[str, str]], Up]
) -> None:
    port = free_port()
    root = tmp_path / "state"
    up = start_up(["--root", str(root), "--port", str(port)], {"DOCKER_HOST": docker_host})
    up.wait_line("Login token: ")
    eventually(
        lambda: get_json(f"http://127.0.0.1:{port}/summary")["actions"]["pending"] >= 4,
        "the example's actions to be proposed",
    )
    assert up.interrupt() == 0
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    for part in ("events", "queue", "state", "world", "secrets", "logs", "cache"):
        assert stat.S_IMODE((root / part).stat().st_mode) == 0o700, part
    assert list(root.glob("events/*/*.jsonl")) and list(root.glob("queue/pending/*.json"))
    assert loose(root) == []


def test_ensure_tightens_a_tree_made_by_an_older_version(tmp_path: Path) -> None:
    from reconciler.runtime_root import RuntimeRoot

    root = tmp_path / "old"
    (root / "queue" / "pending").mkdir(parents=True)
    root.chmod(0o755)
    (root / "queue").chmod(0o755)
    RuntimeRoot(root).ensure()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE((root / "queue").stat().st_mode) == 0o700
