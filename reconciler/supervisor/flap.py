"""The flap guard: stop re-proposing a change that keeps being undone.

When the supervisor is about to propose a patch for a resource and actions
with that same patch already succeeded `threshold` times within `window`
seconds, something outside git keeps reverting the resource. The resource
is then marked flapping (with the succeeded action ids as evidence) and no
action is proposed for it until its desired spec changes or an operator
clears it (`homelab actions clear-flap KIND/NAME`).

Successes are read from `queue/done/` (the executor's finished actions; a
file's mtime is when it arrived there), incrementally. The marks live in
`state/supervisor_flap.json`, changed under an exclusive lock on
`state/supervisor_flap.lock` because the CLI clears marks while the
supervisor runs. Called by the supervisor service and the CLI.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from reconciler.queue.action import InvalidAction, action_from_json, now_iso
from reconciler.queue.flap_marks import clear_flapping, read_flap_state, ref_key
from reconciler.queue.flap_marks import locked_marks as _locked
from reconciler.resources.key import ResourceKey
from reconciler.resources.normalize import spec_hash
from reconciler.runtime_root import RuntimeRoot

__all__ = ["FlapGuard", "Success", "clear_flapping", "flap_evidence", "read_flap_state", "ref_key"]


@dataclass(frozen=True)
class Success:
    at: float
    patch: str
    action: str


def flap_evidence(history: list[Success], patch: str, since: float) -> list[str]:
    """Ids of successes of this exact patch after `since` (pure)."""
    return [s.action for s in history if s.patch == patch and s.at >= since]


class FlapGuard:
    """Success history from queue/done plus the persistent flapping marks."""

    def __init__(self, root: RuntimeRoot, *, threshold: int = 3, window: float = 3600.0) -> None:
        self.root = root
        self.threshold = threshold
        self.window = window
        self.history: dict[ResourceKey, list[Success]] = {}
        self._seen: set[str] = set()

    def scan_done(self) -> None:
        """Record actions that reached queue/done/ since the last scan."""
        folder = self.root.queue_dir("done")
        horizon = time.time() - self.window
        for entry in os.scandir(folder):
            name = entry.name
            if not name.endswith(".json") or name.startswith(".") or name in self._seen:
                continue
            self._seen.add(name)
            try:
                at = entry.stat().st_mtime
                if at < horizon:
                    continue
                action = action_from_json((folder / name).read_bytes())
                success = Success(at, spec_hash(action.patch), action.id)
            except (OSError, InvalidAction):
                continue  # not an action document; nothing to learn from it
            self.history.setdefault(action.key, []).append(success)
        for ref, items in list(self.history.items()):
            self.history[ref] = [s for s in items if s.at >= horizon]

    def marks(self) -> dict[str, Any]:
        marks: dict[str, Any] = read_flap_state(self.root)["flapping"]
        return marks

    def check(self, ref: ResourceKey, patch: list[dict[str, Any]]) -> list[str] | None:
        """Evidence when proposing `patch` again would be flapping, else None."""
        cleared = float(read_flap_state(self.root)["clearedAt"].get(ref_key(ref), 0.0))
        since = max(time.time() - self.window, cleared)
        evidence = flap_evidence(self.history.get(ref, []), spec_hash(patch), since)
        return evidence if len(evidence) >= self.threshold else None

    def mark(
        self, ref: ResourceKey, desired_hash: str, patch: list[dict[str, Any]], evidence: list[str]
    ) -> None:
        with _locked(self.root) as doc:
            doc["flapping"][ref_key(ref)] = {
                "desiredHash": desired_hash,
                "since": now_iso(),
                "patch": patch,
                "evidence": evidence,
            }

    def unmark(self, ref: ResourceKey) -> None:
        with _locked(self.root) as doc:
            doc["flapping"].pop(ref_key(ref), None)
            doc["clearedAt"][ref_key(ref)] = time.time()
