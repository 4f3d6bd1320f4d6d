"""The action queue: folders under ROOT/queue/, every move one atomic rename."""

from reconciler.queue.action import action_id, new_action
from reconciler.queue.store import ActionQueue

__all__ = ["ActionQueue", "action_id", "new_action"]
