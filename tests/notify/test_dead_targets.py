"""A target that answers 500 or hangs is retried with backoff and never delays the others.

Three real loopback targets: one answers 500, one never answers, one works.
The working one must be told as fast as if it were alone; the failing one
must see the configured tries with growing gaps; both failures are
recorded as `notification.failed` and show in the UI's `/summary`,
`/metrics` and dashboard (the real UI service, reading the runtime root).
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from reconciler.events.log import EventLog
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from tests.api.conftest import serve
from tests.conftest import GitRepo
from tests.notify.conftest import Receiver, homelab_yaml, read_events, wait_for


def test_failing_and_hanging_targets_are_retried_and_delay_nobody(
    git_repo: GitRepo, runtime_root: RuntimeRoot, receiver: Receiver, notifiers: Any
) -> None:
    homelab_yaml(
        git_repo,
        f"""\
  - name: broken
    url: json://{receiver.base}/fail
  - name: stuck
    url: json://{receiver.base}/hang
  - name: good
    url: json://{receiver.base}/good
""",
    )
    git_repo.commit("targets")
    notifier = notifiers("--timeout", "1.5").start()
    observer = EventLog(runtime_root, "observer")
    told_at = time.time()
    observer.append("node.status", ResourceKey("Node", "edge"), {"ready": False})
    [good] = receiver.wait(1, "/good")
    # quiet (0.5 s) ends the window; one poll (0.5 s) and a local post follow.
    assert good.at - told_at < 3.0, good.at - told_at
    failed = wait_for(
        lambda: (
            len(read_events(runtime_root, "notification.failed")) == 2
            and read_events(runtime_root, "notification.failed")
        ),
        timeout=20,
        what="both failures recorded",
    )
    by_target = {e["data"]["target"]: e["data"] for e in failed}
    assert by_target["broken"]["attempts"] == 3 and "500" in by_target["broken"]["error"]
    assert by_target["stuck"]["attempts"] == 3
    assert by_target["stuck"]["seconds"] >= 3 * 1.5
    tries = [r.at for r in receiver.tried("/fail")]
    assert len(tries) == 3
    gaps = [b - a for a, b in itertools.pairwise(tries)]
    assert gaps[0] >= 0.25 and gaps[1] >= 0.5 and gaps[1] > gaps[0], gaps  # backoff 0.3 s, x2
    [sent] = read_events(runtime_root, "notification.sent")
    assert sent["data"]["target"] == "good" and sent["data"]["attempts"] == 1
    # Another message while the broken ones failed: the good target still gets it at once.
    observer.append("node.status", ResourceKey("Node", "edge"), {"ready": True})
    again_at = time.time()
    second = receiver.wait(2, "/good")[1]
    assert second.at - again_at < 3.0
    wait_for(lambda: notifier.status()["targets"][0]["failed"] == 2, timeout=20, what="status file")
    status = {t["id"]: t for t in notifier.status()["targets"]}
    assert status["broken"]["healthy"] is False and status["broken"]["consecutiveFailures"] == 2
    assert status["good"]["healthy"] is True and status["good"]["sent"] == 2

    server = serve(runtime_root)
    try:
        with server.client() as client:
            summary = wait_for(
                lambda: (client.get("/summary").json().get("notifications") or {}).get("targets"),
                what="the summary to show the notifier",
            )
            assert summary["broken"]["healthy"] is False and summary["broken"]["failed"] == 2
            assert summary["good"] == {**summary["good"], "healthy": True, "sent": 2}
            assert "url" not in summary["broken"]  # /summary is open: no target URLs
            metrics = client.get("/metrics").text
            assert 'homelab_notifications_failed_total{target="broken"} 2' in metrics
            assert 'homelab_notification_target_up{target="broken"} 0' in metrics
            assert 'homelab_notifications_sent_total{target="good"} 2' in metrics
            page = client.get("/").text
            assert "Notifications" in page and "failing (2 in a row)" in page
            assert f"json://{receiver.base}/fail" in page
    finally:
        server.close()
    assert notifier.stop() == 0
