"""The per-target rate limit, through Apprise to a real loopback receiver.

A `Courier` (one target's delivery thread) given more messages than its
`ratePerMinute` allows at once sends a burst, then one message per
1/rate seconds; another target's courier is not held back by it.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

from reconciler.notifier.delivery import Courier, DeliverySettings
from reconciler.notifier.signals import Message
from reconciler.notifier.targets import Target
from tests.notify.conftest import Receiver

RATE = 60  # a minute: one a second after the burst
BURST = 5  # TokenBucket's default burst for this rate


def _target(name: str, url: str, rate: int) -> Target:
    return Target(name, url, url, frozenset({"action.failed"}), "info", rate)


def _message(n: int) -> Message:
    return Message(f"m{n}", "action.failed", "failure", f"failure {n}", "body", (), (f"e{n}",))


def test_a_target_is_held_to_its_rate_and_holds_nobody_else(receiver: Receiver) -> None:
    reports: list[tuple[str, str, bool]] = []

    def report(target: Target, message: Message, outcome: Any) -> None:
        reports.append((target.id, message.id, outcome.ok))

    settings = DeliverySettings(attempts=1)
    slow = Courier(_target("slow", f"json://{receiver.base}/slow", RATE), report, settings)
    fast = Courier(_target("fast", f"json://{receiver.base}/fast", 6000), report, settings)
    slow.start()
    fast.start()
    try:
        count = BURST + 3
        for n in range(count):
            slow.submit(_message(n))
            fast.submit(_message(n))
        started = time.time()
        got_fast = receiver.wait(count, "/fast", timeout=10)
        fast_done = max(r.at for r in got_fast)
        got_slow = receiver.wait(count, "/slow", timeout=20)
    finally:
        slow.stop()
        fast.stop()
        slow.join(5)
        fast.join(5)
    times = sorted(r.at for r in got_slow)
    # The burst goes at once; each later message waits for its token (1 s at 60/min).
    assert times[BURST - 1] - times[0] < 2.0, times  # five posts, loopback (slack for load)
    gaps = [b - a for a, b in itertools.pairwise(times[BURST - 1 :])]
    assert all(gap >= 0.8 for gap in gaps), gaps
    assert times[-1] - times[0] >= 2.5  # three tokens after the burst: about 3 s
    # The other target was told everything at once, long before the slow one was done.
    assert fast_done < times[-1] - 1.0, (fast_done - started, times[-1] - started)
    # In order, each once, each recorded as delivered.
    assert [r.title for r in sorted(got_slow, key=lambda r: r.at)] == [
        f"failure {n}" for n in range(count)
    ]
    assert [m for t, m, ok in reports if t == "slow" and ok] == [f"m{n}" for n in range(count)]
