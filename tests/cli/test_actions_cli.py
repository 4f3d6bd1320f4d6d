"""CLI fixes of issue 16 item 8, through the real `homelab` console script in a real shell.

`homelab actions show ID | head -1` ends quietly when the reader goes away;
`actions show` prints words, not Python literals; `homelab plan` run inside a
checkout without `--repo` names the repository it plans; `homelab up`'s
login box and short log lines.
"""

from __future__ import annotations

import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path

from reconciler.cli.up_output import MAX_MESSAGE, ShortFormatter, login_box, login_lines
from reconciler.planning import compute_plan
from reconciler.queue import ActionQueue, new_action
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import GitSource
from tests.conftest import GitRepo

HOMELAB = str(Path(sys.executable).with_name("homelab"))
MANY_ENV = 4000  # a diff of ~150 KB: more than a pipe holds, so the writer meets the closed end


def _big_action(git_repo: GitRepo, root: RuntimeRoot) -> str:
    env = "".join(f"    VARIABLE_NUMBER_{i}: value-{i}\n" for i in range(MANY_ENV))
    git_repo.write(
        "manifests/web.yaml",
        "apiVersion: homelab.reconciler/v1alpha1\nkind: Container\nmetadata:\n  name: web\n"
        "spec:\n  image: local/busybox:1\n  env:\n" + env,
    )
    git_repo.commit("web with many variables")
    result = compute_plan(GitSource(git_repo.path), root)
    [change] = result.plan.changes
    action = new_action(change, commit=result.state.commit, basis="", manifest=None)
    ActionQueue(root).propose(action)
    return action.id


def _shell(command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HOMELAB_REPO", "HOMELAB_ROOT")}
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env=env,
        check=False,
    )


def test_actions_show_into_head_ends_quietly_with_status_0(
    git_repo: GitRepo, runtime_root: RuntimeRoot
) -> None:
    action_id = _big_action(git_repo, runtime_root)
    root = shlex.quote(str(runtime_root.path))
    for _ in range(3):  # the race between the writer and head's exit, several times
        proc = _shell(f"{HOMELAB} actions show {action_id} --root {root} | head -1")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == f"Action {action_id}  [pending]\n"
        assert proc.stderr == ""  # no traceback, no "Exception ignored", no BrokenPipeError


def test_actions_show_prints_words_not_python_literals(
    git_repo: GitRepo, runtime_root: RuntimeRoot
) -> None:
    action_id = _big_action(git_repo, runtime_root)
    proc = _shell(f"{HOMELAB} actions show {action_id[:8]} --root {runtime_root.path}")
    assert proc.returncode == 0, proc.stderr
    head = proc.stdout.splitlines()[:3]
    assert "observed basis none (the resource did not exist)" in head[1]
    assert head[2].endswith("auto-approve no")
    assert not any(literal in line for line in head for literal in ("''", "False", "True", "None"))


def test_plan_without_repo_names_the_repository_of_the_current_folder(
    git_repo: GitRepo, runtime_root: RuntimeRoot
) -> None:
    git_repo.write("manifests/motd.yaml", "apiVersion: homelab.reconciler/v1alpha1\n")
    git_repo.commit()
    proc = _shell(f"{HOMELAB} plan --root {runtime_root.path}", cwd=git_repo.path)
    assert proc.stderr.splitlines()[0] == (
        f"Planning repository {git_repo.path} (from the current folder)"
    )
    given = _shell(f"{HOMELAB} plan --repo {git_repo.path} --root {runtime_root.path}")
    assert "Planning repository" not in given.stderr  # named on the command line already


def test_up_frames_the_address_and_the_token_once() -> None:
    box = login_box(login_lines("http://127.0.0.1:8080/", True, "tok123", "/r/state/ui_token"))
    lines = box.splitlines()
    assert lines[0].startswith("┌") and lines[-1].startswith("└")
    assert lines[1].startswith("│ UI: http://127.0.0.1:8080/ ") and lines[1].endswith(" │")
    assert lines[2].startswith("│ Login token: tok123")
    assert len({len(line) for line in lines}) == 1  # a straight frame
    later = login_box(login_lines("http://h:1/", False, None, "/r/state/ui_token"))
    assert "tok123" not in later
    assert "│ Login token: in /r/state/ui_token (printed only when created) │" in later
    assert "not answering yet" in later


def test_up_log_lines_are_one_short_line() -> None:
    long = "node far: Error while fetching server API version: " + "HTTPConnectionPool " * 40
    record = logging.LogRecord(
        "reconciler.observer", logging.WARNING, __file__, 1, "%s\nsecond line", (long,), None
    )
    line = ShortFormatter().format(record)
    assert "\n" not in line
    assert line[12:].startswith(" observer: node far: Error while fetching")
    assert line.endswith("…")
    assert len(line) <= len("00:00:00.000 observer: ") + MAX_MESSAGE
