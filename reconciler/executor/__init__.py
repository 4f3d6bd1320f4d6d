"""The executor: runs approved actions through the drivers, safely and once.

`Executor` is the service (`homelab run executor`); `ActionRunner` runs one
action (stale check, retries, events, queue moves); `stale_reason` and
`window_open` are the pure decisions it uses.
"""

from reconciler.executor.context import DesiredView, stale_reason
from reconciler.executor.runner import ActionRunner, RetryPolicy
from reconciler.executor.service import Executor
from reconciler.executor.window import next_opening, window_open

__all__ = [
    "ActionRunner",
    "DesiredView",
    "Executor",
    "RetryPolicy",
    "next_opening",
    "stale_reason",
    "window_open",
]
