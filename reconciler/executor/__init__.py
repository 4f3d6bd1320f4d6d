"""The executor: runs approved actions through the drivers, safely and once.

`Executor` is the service (`homelab run executor`); `ActionRunner` runs one
action (stale check, retries, events, queue moves); `window_open` is the
pure maintenance-window decision it uses (the stale-plan decision is
`reconciler.planning.stale_reason`).
"""

from reconciler.executor.action_runner import ActionRunner, RetryPolicy
from reconciler.executor.context import DesiredView
from reconciler.executor.service import Executor
from reconciler.executor.window import next_opening, window_open

__all__ = [
    "ActionRunner",
    "DesiredView",
    "Executor",
    "RetryPolicy",
    "next_opening",
    "window_open",
]
