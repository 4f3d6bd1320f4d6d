"""What an operator does to a resource from its page: propose again, clear flap.

"Propose again" asks the supervisor to propose a rejected change once more
(`reconciler.queue.reproposals`): allowed only when the resource's
newest action is rejected and nothing is live for it. "Clear flap" lifts a
Flapping mark (`reconciler.supervisor.flap.clear_flapping`, as `homelab
actions clear-flap` does). Both are authenticated operator actions: the
controller checks the session and the CSRF token, and each writes its audit
event under `ui` (who, from where, what) before it changes anything, so a
change never happens without its record; a full disk raises `StorageError`
with nothing changed. Called by `reconciler.api.controllers.operator_pages`.
"""

from __future__ import annotations

from reconciler.api.auth import Operator
from reconciler.api.decisions import Decisions, InvalidInput
from reconciler.queue.flap_marks import clear_flapping, read_flap_state, ref_key
from reconciler.queue.reproposals import reopened, request_again
from reconciler.queue.store import LIVE_STATES
from reconciler.resources.key import ResourceKey


def propose_again(decisions: Decisions, ref: ResourceKey, who: Operator) -> str:
    """Ask for the resource's rejected change again; the notice to show."""
    views = decisions.views
    views.refresh({"queue"})  # decide on the queue as it is now, not as last watched
    history = views.actions_of(ref.kind, ref.name)
    if not history or history[0][0] != "rejected":
        raise InvalidInput(f"{ref_key(ref)}: its newest action is not rejected; nothing to redo")
    if any(state in LIVE_STATES for state, _a in history):
        raise InvalidInput(f"{ref_key(ref)} already has a live action")
    action = history[0][1]
    if action.id in reopened(decisions.root):
        return f"Already asked: {ref_key(ref)} will be proposed again"
    data = {"action": action.id, "actor": who.name, "address": who.address}
    decisions.events.append("operator.propose_again", ref, data, sync=True)
    request_again(decisions.root, action.id, who.name)
    views.refresh({"events"})
    return f"Asked the supervisor to propose {ref_key(ref)} again"


def clear_flap(decisions: Decisions, ref: ResourceKey, who: Operator) -> str:
    """Lift the resource's Flapping mark; the notice to show."""
    if ref_key(ref) not in read_flap_state(decisions.root)["flapping"]:
        raise InvalidInput(f"{ref_key(ref)} is not flapping")
    data = {
        "type": "Flapping",
        "status": "False",
        "reason": "ClearedByOperator",
        "message": f"cleared by {who.name}",
        "actor": who.name,
        "address": who.address,
    }
    decisions.events.append("resource.condition", ref, data, sync=True)
    clear_flapping(decisions.root, ref)
    decisions.views.refresh({"events", "state"})
    return f"Cleared the flap mark of {ref_key(ref)}: the supervisor proposes again"
