"""Kill -9 and restart the notifier while news keeps coming: nothing twice, nothing missed.

Nodes go down one after another (real `node.status` events in the real log);
the notifier process is killed with SIGKILL at varying moments (a digest
window open, events unread, a message just sent) and started again. Every
node must be told exactly once, and every message told must be recorded
once as `notification.sent`.
"""

from __future__ import annotations

import collections
import random
import time
from typing import Any

from reconciler.events.log import EventLog
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot
from tests.conftest import GitRepo
from tests.notify.conftest import Receiver, homelab_yaml, read_events, wait_for

ROUNDS = 4


def test_kill_and_restart_sends_nothing_twice_and_misses_nothing(
    git_repo: GitRepo, runtime_root: RuntimeRoot, receiver: Receiver, notifiers: Any
) -> None:
    homelab_yaml(git_repo, f"  - name: hook\n    url: json://{receiver.base}/hook\n")
    git_repo.commit("target")
    observer = EventLog(runtime_root, "observer")
    rng = random.Random(15)
    names: list[str] = []
    notifier = notifiers().start()
    for round_ in range(ROUNDS):
        for _ in range(rng.randint(1, 3)):
            name = f"node-{len(names):02d}"
            names.append(name)
            observer.append("node.status", ResourceKey("Node", name), {"ready": False})
        # Kill at once (events unread), inside the digest window, or just after a send.
        pause = [0.0, 0.3, 0.8, 2.2][round_ % 4] + rng.random() * 0.2
        time.sleep(pause)
        notifier.kill()
        notifier = notifiers().start()
    wait_for(lambda: _told(receiver) == set(names), timeout=20, what="every node told")
    time.sleep(3)  # anything sent twice would arrive by now
    counts = collections.Counter(n for r in receiver.got for n in _nodes(r.text))
    assert set(counts) == set(names)
    assert [n for n, c in counts.items() if c != 1] == []
    sent = read_events(runtime_root, "notification.sent")
    assert len(sent) == len(receiver.got)
    assert len({e["data"]["message"] for e in sent}) == len(sent)
    checkpoint = (runtime_root.state / "notifier_checkpoint.json").read_text()
    assert '"outbox":{}' in checkpoint.replace(" ", "")
    assert notifier.stop() == 0


def _nodes(text: str) -> list[str]:
    return [w for w in text.replace("\n", " ").split() if w.startswith("node-")]


def _told(receiver: Receiver) -> set[str]:
    return {n for r in receiver.got for n in _nodes(r.text)}
