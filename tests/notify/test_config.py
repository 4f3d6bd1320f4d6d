"""Bad notification configuration: located errors from `homelab validate`, no crash anywhere.

Real git repositories; `homelab validate` and `homelab notify test` as the
operator runs them; the notifier process keeps going on the entries it can
use and reports the others.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

from reconciler.events.log import EventLog
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from tests.conftest import GitRepo
from tests.notify.conftest import HOMELAB, Receiver, file_manifest, homelab_yaml


def _homelab(root: RuntimeRoot, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, HOMELAB_ROOT=str(root.path))
    return subprocess.run(
        [HOMELAB, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


BAD = """\
  - url: ntfys://ntfy.example.org/homelab
    on: [action.pending, action.exploded]
  - url: "not a url at all"
  - url: nosuchservice://example.org/x
  - url: ntfys://ntfy.example.org/{secret}
    secret: missing-token
  - url: json://127.0.0.1:9/ok
    minSeverity: loud
"""


def test_validate_reports_every_bad_entry_where_it_is(
    git_repo: GitRepo, runtime_root: RuntimeRoot, tmp_path: Path
) -> None:
    homelab_yaml(git_repo, BAD)
    file_manifest(git_repo, "site", tmp_path)
    git_repo.commit("bad notifications")
    run = _homelab(runtime_root, "validate", "--repo", str(git_repo.path))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if line.startswith("homelab.yaml:")]
    assert errors[:3] == [
        "homelab.yaml:3:26: notifications.0.on.1: Input should be 'action.pending', "
        "'action.failed', 'resource.drifted', 'resource.flapping', 'node.notready' or "
        "'source.notready'",
        "homelab.yaml:4:10: notifications.1.url: 'not a url at all' is not an Apprise URL "
        "(scheme://...; e.g. ntfys://ntfy.example.org/homelab, json://127.0.0.1:8000/hook)",
        "homelab.yaml:9:18: notifications.4.minSeverity: Input should be 'info', 'warning' "
        "or 'failure'",
    ]
    assert errors[3:] == [
        "homelab.yaml:5:10: notifications.2.url: Apprise cannot use this nosuchservice:// URL "
        "(an unknown service, or a field it requires is missing); see "
        "https://appriseit.com/services/",
        "homelab.yaml:7:13: notifications.3.secret: secret 'missing-token' does not exist "
        f"(create {runtime_root.secrets / 'missing-token'}, mode 0600)",
    ]


def test_validate_accepts_a_good_configuration(
    git_repo: GitRepo, runtime_root: RuntimeRoot, tmp_path: Path
) -> None:
    (runtime_root.secrets / "ntfy-token").write_text("tk_abc\n")
    homelab_yaml(
        git_repo,
        """\
  - url: ntfys://ntfy.example.org/homelab
    secret: ntfy-token
    on: [action.pending, action.failed, resource.drifted,
         resource.flapping, node.notready, source.notready]
    minSeverity: info
  - name: chat
    url: json://127.0.0.1:9/hook
    minSeverity: warning
""",
    )
    file_manifest(git_repo, "site", tmp_path)
    git_repo.commit("good notifications")
    run = _homelab(runtime_root, "validate", "--repo", str(git_repo.path))
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("OK: 1 resource(s) valid")


def test_the_notifier_keeps_the_usable_entries_and_reports_the_others(
    git_repo: GitRepo, runtime_root: RuntimeRoot, receiver: Receiver, notifiers: Any
) -> None:
    homelab_yaml(git_repo, BAD + f"  - name: good\n    url: json://{receiver.base}/good\n")
    git_repo.commit("one good entry among bad ones")
    notifier = notifiers().start()
    status = notifier.status()
    assert [t["id"] for t in status["targets"]] == ["good"]
    assert len(status["problems"]) == 5
    assert any("missing-token" in p for p in status["problems"])
    EventLog(runtime_root, "observer").append(
        "node.status", ResourceKey("Node", "edge"), {"ready": False}
    )
    [message] = receiver.wait(1, "/good")
    assert message.title == "Node edge is not ready"
    # A commit that breaks homelab.yaml entirely: the notifier goes on, reporting it.
    git_repo.write("homelab.yaml", "notifications: [unclosed\n")
    git_repo.commit("broken yaml")
    assert notifier.proc is not None and notifier.proc.poll() is None
    assert notifier.stop() == 0


def test_notify_test_sends_to_every_target_and_prints_each_result(
    git_repo: GitRepo, runtime_root: RuntimeRoot, receiver: Receiver
) -> None:
    (runtime_root.secrets / "hook-url").write_text(f"json://{receiver.base}/secret-hook\n")
    homelab_yaml(
        git_repo,
        f"""\
  - name: hook
    url: json://{receiver.base}/hook
  - name: form
    url: form://{receiver.base}/form
  - name: hidden
    secret: hook-url
  - name: broken
    url: json://{receiver.base}/fail
""",
    )
    git_repo.commit("targets")
    run = _homelab(runtime_root, "notify", "test", "--repo", str(git_repo.path))
    assert run.returncode == 1  # one target failed
    lines = dict(line.split(None, 2)[1::-1] for line in run.stdout.splitlines())
    assert lines["hook"] == "ok" and lines["form"] == "ok" and lines["hidden"] == "ok"
    assert lines["broken"] == "FAILED"
    assert "(2 tries)" in run.stdout and "error=500" in run.stdout
    assert "/secret-hook" not in run.stdout  # a URL kept in a secret is shown redacted
    for path in ("/hook", "/form", "/secret-hook"):
        [message] = receiver.wait(1, path)
        assert message.title == "homelab: test notification"
