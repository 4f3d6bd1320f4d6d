"""`homelab run observer` supervised as in its container, and `homelab health`, its healthcheck.

The real `homelab run observer --no-docker` runs as a subprocess on a root
whose `world` is a plain file: the service is restarted with backoff
inside the process and `homelab health observer` (what compose.yaml's
healthcheck runs) exits 1 naming the failure; once repaired it exits 0.
A persistent failure past the bound ends the process with status 3.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from tests.cli.test_up import HOMELAB, eventually


def broken_world(root: Path) -> None:
    """A plain file where the observer needs the folder `world`."""
    root.mkdir(parents=True)
    (root / "world").write_text("not a folder\n")


def health(root: Path, service: str = "observer") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOMELAB, "health", service, "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def start_observer(root: Path, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [HOMELAB, "run", "observer", "--root", str(root), "--no-docker"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
    )


def test_health_is_failing_while_the_observer_restarts_and_ok_once_repaired(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    assert health(root).returncode == 1  # nothing ran yet: no document
    broken_world(root)
    proc = start_observer(root, HOMELAB_MAX_FAILURES="1000")
    try:
        seen: list[subprocess.CompletedProcess[str]] = []

        def failing() -> bool:
            seen.insert(0, health(root))
            return seen[0].stderr.startswith("observer: failing: ")

        # Between two attempts the service is "running" for an instant: wait for a backoff.
        eventually(failing, "the healthcheck to fail", 30)
        assert seen[0].returncode == 1
        assert seen[0].stderr.startswith("observer: failing: FileExistsError"), seen[0].stderr
        assert proc.poll() is None
        (root / "world").unlink()
        eventually(lambda: health(root).returncode == 0, "the healthcheck to pass", 30)
        assert health(root).stdout.strip() == "observer: running"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert health(root).stdout.strip() == "observer: stopped"


def test_run_exits_3_when_the_observer_keeps_failing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    broken_world(root)
    began = time.monotonic()
    proc = start_observer(root, HOMELAB_MAX_FAILURES="2", HOMELAB_FAILURE_WINDOW="60")
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3, out
    assert "observer failed 2 times in 60s (last: FileExistsError" in out
    assert time.monotonic() - began < 30
    check = health(root)
    assert check.returncode == 1 and "gave up after 2 failures" in check.stderr, check.stderr
