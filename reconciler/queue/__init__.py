"""The action queue: folders under ROOT/queue/, every move one atomic rename."""

from reconciler.queue.action import Action, InvalidAction, action_id, new_action
from reconciler.queue.store import ActionQueue

__all__ = ["Action", "ActionQueue", "InvalidAction", "action_id", "new_action"]
