"""The notifier process against real loopback receivers: digests, severities, secrets.

A real `homelab run supervisor` proposes the actions of a real git commit;
the notifier (its own process) tells Apprise `json://`, `form://` and
`ntfy://` targets served by `Receiver` (tests/notify/conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from reconciler.atomic_files import atomic_write_json
from reconciler.events.log import EventLog
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from tests.conftest import GitRepo
from tests.notify.conftest import (
    HOMELAB,
    Receiver,
    file_manifest,
    homelab_yaml,
    read_events,
    wait_for,
)

TOKEN = "tk_s3cr3tntfytoken0123456789"


def _secret(root: RuntimeRoot, name: str, value: str) -> None:
    path = root.secrets / name
    path.write_text(value + "\n")
    path.chmod(0o600)


def test_pending_actions_arrive_as_one_digest_within_10s(
    git_repo: GitRepo, runtime_root: RuntimeRoot, receiver: Receiver, notifiers: Any, tmp_path: Path
) -> None:
    _secret(runtime_root, "ntfy-token", TOKEN)
    homelab_yaml(
        git_repo,
        f"""\
  - name: hook
    url: json://{receiver.base}/hook
  - name: form
    url: form://{receiver.base}/form
    on: [action.pending]
  - name: phone
    url: ntfy://{receiver.base}/homelab
    secret: ntfy-token
""",
    )
    for i in range(40):
        file_manifest(git_repo, f"site-{i:02d}", tmp_path / "files")
    commit = git_repo.commit("forty files")
    # The default window (2 s quiet), held at most 6 s: one supervisor pass's
    # proposals make one message even on a loaded machine, still within 10 s.
    ui = "https://proxy.example.org/homelab"
    notifier = notifiers("--ui-url", ui, "--quiet", "2", "--max-wait", "6").start()
    env = dict(os.environ, HOMELAB_ROOT=str(runtime_root.path))
    supervisor = subprocess.Popen(
        [HOMELAB, "run", "supervisor", "--repo", str(git_repo.path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proposals = wait_for(
            lambda: (
                len(read_events(runtime_root, "action.pending")) == 40
                and read_events(runtime_root, "action.pending")
            ),
            what="40 proposals",
        )
        proposed_at = min(_ts(e) for e in proposals)
        hook = receiver.wait(1, "/hook")
        form = receiver.wait(1, "/form")
        # ntfy posts to the server's root, the topic inside
        wait_for(lambda: [r for r in receiver.got if r.path == "/"], what="the ntfy message")
        time.sleep(3)  # a straggler would show up now
    finally:
        supervisor.send_signal(signal.SIGTERM)
        supervisor.wait(20)
    assert len(receiver.on("/hook")) == 1 and len(receiver.on("/form")) == 1
    phone = [r for r in receiver.got if r.path == "/"]
    assert len(phone) == 1
    for message in (hook[0], form[0], phone[0]):
        assert message.at - proposed_at < 10.0, message.at - proposed_at
        assert message.title == f"40 actions await approval at commit {commit[:7]}: 40 create"
        assert "create File/site-00" in message.text and "… and 25 more" in message.text
        assert "https://proxy.example.org/homelab/queue" in message.text
    assert hook[0].fields["type"] == "info"
    assert phone[0].fields["topic"] == "homelab"
    assert TOKEN in phone[0].headers.get("Authorization", ""), phone[0].headers
    sent = read_events(runtime_root, "notification.sent")
    assert sorted(e["data"]["target"] for e in sent) == ["form", "hook", "phone"]
    assert all(e["data"]["count"] == 40 and e["source"] == "notifier" for e in sent)
    assert notifier.stop() == 0
    # The token is only ever in the request to the target: not in events, state, or logs.
    for path in [*runtime_root.events.rglob("*.jsonl"), *runtime_root.state.rglob("*.json")]:
        assert TOKEN not in path.read_text(), path
    assert TOKEN not in (tmp_path / "notifier.log").read_text()
    status = json.loads((runtime_root.state / "notifier_status.json").read_text())
    shown = {t["id"]: t["url"] for t in status["targets"]}
    assert shown["phone"].startswith("ntfy://") and TOKEN not in shown["phone"]


def _ts(event: dict[str, Any]) -> float:
    return int(event["id"].split("-", 1)[0]) / 1e9


def test_failure_flapping_and_node_down_each_arrive_with_their_severity(
    git_repo: GitRepo, runtime_root: RuntimeRoot, receiver: Receiver, notifiers: Any
) -> None:
    homelab_yaml(
        git_repo,
        f"""\
  - name: all
    url: json://{receiver.base}/all
  - name: pager
    url: json://{receiver.base}/pager
    minSeverity: failure
  - name: nodes
    url: form://{receiver.base}/nodes
    on: [node.notready]
""",
    )
    git_repo.commit("targets")
    notifier = notifiers().start()
    observer = EventLog(runtime_root, "observer")
    supervisor = EventLog(runtime_root, "supervisor")
    executor = EventLog(runtime_root, "executor")
    edge = ResourceKey("Node", "edge")
    observer.append("node.status", edge, {"ready": True, "reason": "Ready", "message": "ok"})
    time.sleep(1.5)
    assert receiver.got == []  # a node seen ready for the first time is no news
    observer.append(
        "node.status", edge, {"ready": False, "reason": "Unreachable", "message": "ssh: refused"}
    )
    observer.append("node.status", edge, {"ready": False, "reason": "Unreachable"})  # a repeat
    executor.append(
        "action.failed",
        ResourceKey("Container", "web"),
        {
            "action": "a1b2c3",
            "operation": "create",
            "actor": "executor",
            "state": "failed",
            "outcome": {"result": "failed", "error": "image local/nope:1 not found"},
        },
    )
    supervisor.append(
        "resource.condition",
        ResourceKey("Container", "db"),
        {"type": "Flapping", "status": "True", "reason": "RepeatedPatch", "message": "3 times"},
    )
    by_title = {r.title: r for r in receiver.wait(3, "/all")}
    assert set(by_title) == {
        "Node edge is not ready (Unreachable: ssh: refused)",
        "Container/web: create failed: image local/nope:1 not found",
        "Container/db is flapping: 3 times",
    }
    severities = {r.title.split(" ")[0]: r.fields["type"] for r in by_title.values()}
    assert severities == {"Node": "failure", "Container/web:": "failure", "Container/db": "warning"}
    pager = receiver.wait(2, "/pager")
    assert sorted(r.fields["type"] for r in pager) == ["failure", "failure"]
    nodes = receiver.wait(1, "/nodes")
    assert nodes[0].fields["title"].startswith("Node edge is not ready")
    assert "http://127.0.0.1:8080/resources/Node/edge" in nodes[0].text
    # Drift no action will fix, as the supervisor's status file reports it.
    atomic_write_json(
        runtime_root.state / "supervisor_status.json",
        {
            "commit": "c0ffee",
            "updatedAt": "2026-01-01T00:00:00.000000Z",
            "resources": {
                "Container/old": {
                    "status": "Drifted",
                    "errors": ["delete withheld: the observer has not listed every node yet"],
                    "action": None,
                },
                "Container/web": {"status": "InSync", "errors": [], "action": None},
            },
            "errors": [],
        },
    )
    drift = receiver.wait(4, "/all")[3]
    assert drift.title == (
        "Container/old drifted: delete withheld: the observer has not listed every node yet"
    )
    assert drift.fields["type"] == "warning"
    assert "http://127.0.0.1:8080/resources/Container/old" in drift.text
    observer.append("node.status", edge, {"ready": True, "reason": "Ready"})
    back = receiver.wait(2, "/nodes")[1]
    assert back.fields["title"] == "Node edge is ready again" and back.fields["type"] == "info"
    time.sleep(2.5)
    assert len(receiver.on("/pager")) == 2  # the recovery is info: below the pager's minimum
    assert len(receiver.on("/all")) == 5 and len(receiver.on("/nodes")) == 2
    web = [e for e in read_events(runtime_root, "notification.sent") if e["ref"]]
    assert {"kind": "Container", "name": "web"} in [e["ref"] for e in web]
    assert notifier.stop() == 0
