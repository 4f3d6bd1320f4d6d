"""`homelab up --repo git://...`: the whole product following a remote, no checkout mounted.

A real `git daemon` serves the repository; `up` mirrors it under ROOT/git,
proposes its resources, follows a push (at once on `homelab source fetch`,
the webhook's call) and keeps the runtime tree private, the mirror included.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_up import HOMELAB, Up, eventually, free_port, get_json, start_up
from tests.cli.test_up_modes import loose
from tests.sources.git_servers import GitDaemon, Upstream

__all__ = ["start_up"]


@pytest.mark.docker
def test_up_follows_a_remote_by_url(
    tmp_path: Path, docker_host: str, start_up: Callable[[list[str], dict[str, str]], Up]
) -> None:
    upstream = Upstream(tmp_path / "remote")
    upstream.file("a")
    upstream.push("first")
    daemon = GitDaemon(upstream, tmp_path)
    daemon.start()
    try:
        port = free_port()
        root = tmp_path / "state"
        up = start_up(
            ["--repo", daemon.url, "--root", str(root), "--port", str(port), "--poll", "30"],
            {"DOCKER_HOST": docker_host},
        )
        assert daemon.url in up.wait_line("Runtime root ")
        up.wait_line("Login token: ")
        summary = f"http://127.0.0.1:{port}/summary"
        eventually(lambda: get_json(summary)["actions"]["pending"] >= 1, "File/a proposed")
        doc = get_json(summary)["source"]
        assert doc["ready"] is True and doc["url"] == daemon.url and doc["branch"] == "main"
        upstream.file("b")
        pushed = upstream.push("add b")
        fetched = subprocess.run(
            [HOMELAB, "source", "fetch", "--root", str(root), "--wait", "20"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert fetched.returncode == 0 and pushed in fetched.stdout, fetched.stderr
        eventually(lambda: get_json(summary)["actions"]["pending"] >= 2, "File/b proposed")
        assert get_json(summary)["desiredCommit"] == pushed
        shown = subprocess.run(
            [HOMELAB, "source", "status", "--root", str(root)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "SourceReady:  True" in shown and pushed in shown
        assert up.interrupt() == 0
        assert list((root / "git").glob("*.git/refs/heads/main"))
        assert loose(root) == []
    finally:
        daemon.stop()
