"""An action's diff as the pages show it: rendered now, like `homelab actions show`.

The summary an action file keeps is the text the planner printed when it
proposed it; a file written by an older version reads differently (`env[0]`,
default nulls). The pages render the action's change again with the current
renderer (`reconciler.diff.render_change`), so the UI and the CLI always show
the same lines in the same order. Only what a page shows is rendered (a page
of the queue, one action, one resource), cached by action id: an id is
derived from the change's content, so its rendering never changes.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from reconciler.diff import render_change
from reconciler.queue.action import Action

_MAX = 4096
_cache: OrderedDict[str, str] = OrderedDict()
_lock = threading.Lock()


def change_text(action: Action) -> str:
    """The action's change rendered by the current renderer (no colour)."""
    with _lock:
        text = _cache.get(action.id)
        if text is not None:
            _cache.move_to_end(action.id)
            return text
    text = render_change(action.change())
    with _lock:
        _cache[action.id] = text
        while len(_cache) > _MAX:
            _cache.popitem(last=False)
    return text
