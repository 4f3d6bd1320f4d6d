"""From a plan to the queue: one live action per drifted resource, no duplicates.

`Proposer.apply` takes one planning pass (`PlanResult`), the world and the
prune gate, and makes the queue match it: for each drifted resource it keeps
the live action that already describes the change, or supersedes the live
ones that no longer match (with the reason) and proposes the new one (a
pass's new actions go to the queue in one durable batch,
`ActionQueue.propose_many`), then auto-approves it when policy allows.
Resources in sync, invalid or flapping get no action, and their stale
pending/approved ones are superseded.
Running actions are never touched: the resource waits until they finish.

Action ids come from content (`reconciler.queue.action`), walked through
their generations with `walk_chain`, so a restarted supervisor finds the
action it proposed before instead of adding one. Called by the service.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from reconciler.diff import Change
from reconciler.errors import QueueConflict
from reconciler.events.log import EventLog
from reconciler.planning import PlanResult
from reconciler.queue import Action, ActionQueue, action_id, new_action
from reconciler.queue.action import InvalidAction, generation_id
from reconciler.queue.store import LIVE_STATES
from reconciler.resources.key import ResourceKey
from reconciler.resources.normalize import spec_hash
from reconciler.supervisor.flap import FlapGuard, ref_key
from reconciler.supervisor.policy import Gate, auto_approves
from reconciler.world.doc import WorldDoc

log = logging.getLogger("reconciler.supervisor")
MAX_GENERATIONS = 10_000
Outcome = Literal["live", "propose", "rejected", "wait"]


@dataclass(frozen=True)
class ChainStep:
    outcome: Outcome
    action_id: str
    generation: int
    after_failure: bool = False


def walk_chain(
    plan_id: str,
    states: dict[str, str],
    settled: Callable[[str], bool],
    reopened: frozenset[str] = frozenset(),
) -> ChainStep:
    """Where a plan stands: its live action, the next id to propose, or why not (pure).

    A rejected generation ends the chain unless an operator asked for it again
    (`reopened`): then the next generation is proposed.
    """
    previous: tuple[str, str] | None = None
    for generation in range(MAX_GENERATIONS):
        current = generation_id(plan_id, generation)
        state = states.get(current)
        if state is None:
            if previous and previous[1] == "done" and not settled(previous[0]):
                return ChainStep("wait", previous[0], generation - 1)
            failed = previous is not None and previous[1] == "failed"
            return ChainStep("propose", current, generation, failed)
        if state in LIVE_STATES:
            return ChainStep("live", current, generation)
        if state == "rejected" and current not in reopened:
            return ChainStep("rejected", current, generation)
        previous = (current, state)
    return ChainStep("wait", plan_id, MAX_GENERATIONS)


@dataclass
class RefStatus:
    status: str
    errors: list[str] = field(default_factory=list)
    action: str | None = None
    # The desired spec at the commit and where its manifest is (file:line:column).
    desired: dict[str, Any] | None = None
    source: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "errors": self.errors, "action": self.action}
        if self.source is not None:
            out["source"] = self.source
        if self.desired is not None:
            out["desired"] = self.desired
        return out


def _parse_ts(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


DOCKER_KINDS = ("Container", "ComposeStack", "Network", "Volume")


def _node_not_ready(ref: ResourceKey, result: PlanResult) -> str | None:
    """Why a Docker-backed resource cannot be acted on now, or None.

    Actions for it would only fail while its node's engine does not answer;
    they are proposed once the observer reports the node Ready again.
    """
    if ref[0] not in DOCKER_KINDS:
        return None
    spec = result.desired.get(ref)
    if spec is None:
        doc = result.world.get(ref)
        spec = (doc.status.observed if doc is not None else None) or {}
    node = str(spec.get("node") or "local")
    node_doc = result.world.get(ResourceKey("Node", node))
    if node_doc is None:
        return None
    ready = node_doc.status.condition("Ready")
    if ready is not None and ready.status == "False":
        detail = ": ".join(x for x in (ready.reason, ready.message) if x)
        return f"node {node} is not ready ({detail or 'engine unreachable'})"
    return None


def world_basis(doc: WorldDoc | None) -> str:
    return (doc.status.basis or "") if doc is not None else ""


class Proposer:
    """Applies plans to the queue; remembers which conditions it has reported."""

    def __init__(
        self, queue: ActionQueue, events: EventLog, flap: FlapGuard, actor: str = "supervisor"
    ) -> None:
        self.queue = queue
        self.events = events
        self.flap = flap
        self.actor = actor
        self.conditions: dict[tuple[ResourceKey, str], bool] = {}
        self.queue_states: dict[str, str] = {}
        self._refs: dict[str, ResourceKey] = {}  # live action id -> resource (never changes)
        self._batch: list[tuple[ResourceKey, Action, bool]] = []  # (ref, action, auto-approve)
        self.reopened: frozenset[str] = frozenset()  # rejected ids to propose again

    # -- queue view -------------------------------------------------------------
    def _live(self, states: dict[str, str]) -> dict[ResourceKey, list[tuple[str, str]]]:
        out: dict[ResourceKey, list[tuple[str, str]]] = {}
        for aid, state in states.items():
            if state not in LIVE_STATES:
                continue
            ref = self._refs.get(aid)
            if ref is None:
                try:
                    ref = self.queue.read(state, aid).key
                except (OSError, InvalidAction):
                    continue  # moved meanwhile; the next pass sees it
                self._refs[aid] = ref
            out.setdefault(ref, []).append((state, aid))
        return out

    def _settled(
        self, world: dict[ResourceKey, WorldDoc], ref: ResourceKey
    ) -> Callable[[str], bool]:
        """Has the world been observed since action `aid` finished?"""

        def check(aid: str) -> bool:
            try:
                history = self.queue.read("done", aid).moves
            except (OSError, InvalidAction):
                return True
            finished = _parse_ts(history[-1].at) if history else None
            doc = world.get(ref)
            seen = _parse_ts(doc.status.observed_at) if doc is not None else None
            return finished is None or (seen is not None and seen > finished)

        return check

    # -- transitions ------------------------------------------------------------
    def _supersede(self, live: list[tuple[str, str]], keep: str | None, reason: str) -> bool:
        """Supersede live actions other than `keep`; False if one is running."""
        clear = True
        for state, aid in live:
            if aid == keep:
                continue
            if state == "running":
                clear = False
                continue
            try:
                self.queue.move(aid, state, "superseded", actor=self.actor, reason=reason)
            except QueueConflict as exc:
                log.info("supersede %s: %s", aid, exc)
                clear = False
        return clear

    def condition(
        self, ref: ResourceKey, type_: str, active: bool, reason: str, message: str
    ) -> None:
        """Emit a resource.condition event when the condition changes."""
        if self.conditions.get((ref, type_), False) == active:
            return
        self.conditions[(ref, type_)] = active
        data = {"type": type_, "status": "True" if active else "False"}
        self.events.append(
            "resource.condition", ref, {**data, "reason": reason, "message": message}
        )

    # -- one pass ---------------------------------------------------------------
    def apply(
        self, result: PlanResult, gate: Gate, reopened: frozenset[str] = frozenset()
    ) -> dict[ResourceKey, RefStatus]:
        """Make the queue match one plan; the status of every resource it covers.

        `reopened`: rejected action ids an operator asked to propose again.
        """
        self.reopened = reopened
        self.queue_states = self.queue.snapshot()
        self.flap.scan_done()
        live = self._live(self.queue_states)
        changes = {c.ref: c for c in result.plan.changes}
        refs = set(result.desired) | result.invalid | set(changes) | set(live)
        marks = self.flap.marks()
        out: dict[ResourceKey, RefStatus] = {}
        self._batch = []
        for ref in sorted(refs):
            status = self._one(ref, result, changes.get(ref), live.get(ref, []), gate, marks)
            manifest = result.state.manifests.get(ref)
            status.desired = result.desired.get(ref)
            errors = result.invalid_errors.get(ref)
            where = manifest.location if manifest else (errors[0].location if errors else None)
            status.source = str(where) if where is not None else None
            out[ref] = status
            if ref not in result.invalid:
                self.condition(ref, "InvalidManifest", False, "Valid", "manifest is valid")
        self._flush()
        return out

    def _flush(self) -> None:
        """Propose the pass's new actions in one durable batch, then auto-approve."""
        batch, self._batch = self._batch, []
        added = {a.id for a in self.queue.propose_many([a for _r, a, _auto in batch], self.actor)}
        for ref, action, auto in batch:
            if action.id in added:
                self._refs[action.id] = ref
                log.info("proposed %s %s/%s (%s)", action.operation, *ref, action.id)
            if auto:
                reason = (
                    "autoApprovePrune"
                    if action.operation == "delete"
                    else "spec.policy.autoApprove"
                )
                # Someone may have approved or superseded it first; either way it moved on.
                with contextlib.suppress(QueueConflict):
                    self.queue.move(
                        action.id, "pending", "approved", actor=self.actor, reason=reason
                    )

    def _one(
        self,
        ref: ResourceKey,
        result: PlanResult,
        change: Change | None,
        live: list[tuple[str, str]],
        gate: Gate,
        marks: dict[str, Any],
    ) -> RefStatus:
        if ref in result.invalid:
            reason = result.invalid_at(ref)
            errors = [str(e) for e in result.invalid_errors.get(ref, [])] or [reason]
            self.condition(ref, "InvalidManifest", True, "InvalidManifest", "; ".join(errors))
            self._supersede(live, None, reason)
            return RefStatus("Invalid", errors)
        if ref not in result.desired and not result.state.complete:
            # Not found in a desired state that could not be read whole: maybe in the
            # unreadable file. Nothing is decided about it until the file is fixed.
            first = result.state.errors[0].location if result.state.errors else None
            why = f"manifest invalid at {first.path}:{first.line}" if first else "manifest invalid"
            self._supersede(live, None, f"desired state incomplete ({why})")
            return RefStatus("Unknown", [f"desired state incomplete: {why}"])
        mark = marks.get(ref_key(ref))
        if mark is not None:
            if spec_hash(result.desired.get(ref)) == mark.get("desiredHash"):
                self._supersede(live, None, "resource is flapping")
                return RefStatus("Flapping", [f"flapping: evidence {mark.get('evidence')}"])
            self.flap.unmark(ref)
            self.condition(ref, "Flapping", False, "DesiredChanged", "desired spec changed")
        blocked = _node_not_ready(ref, result)
        if ref[0] in DOCKER_KINDS:
            self.condition(
                ref,
                "NodeNotReady",
                blocked is not None,
                "NodeNotReady" if blocked else "NodeReady",
                blocked or "the node's Docker engine answers",
            )
        if blocked is not None and change is not None:
            return RefStatus("NodeNotReady", [blocked], next((a for _s, a in live), None))
        if change is None:
            running = [aid for state, aid in live if state == "running"]
            self._supersede(live, None, "no change needed any more")
            return RefStatus("Pending", [], running[0]) if running else RefStatus("InSync")
        if change.operation == "delete" and not gate.open:
            self._supersede(live, None, f"delete withheld: {gate.reason}")
            return RefStatus("Drifted", [f"delete withheld: {gate.reason}"])
        return self._drifted(ref, result, change, live)

    def _drifted(
        self, ref: ResourceKey, result: PlanResult, change: Change, live: list[tuple[str, str]]
    ) -> RefStatus:
        basis = world_basis(result.world.get(ref))
        plan_id = action_id(change.kind, change.name, change.operation, change.patch, basis)
        step = walk_chain(
            plan_id, self.queue_states, self._settled(result.world, ref), self.reopened
        )
        if step.outcome == "live":
            self._supersede(live, step.action_id, f"replaced by {step.action_id}")
            return RefStatus("Pending", [], step.action_id)
        if step.outcome == "rejected":
            self._supersede(live, None, f"change was rejected ({step.action_id})")
            return RefStatus("Drifted", [f"change rejected by an operator ({step.action_id})"])
        if step.outcome == "wait":
            return RefStatus("Pending", [f"waiting for the world to show {step.action_id}"])
        evidence = self.flap.check(ref, change.patch)
        if evidence is not None:
            return self._flapping(ref, result, change, live, evidence)
        if not self._supersede(live, None, f"replaced by {step.action_id}: desired or world moved"):
            return RefStatus("Pending", [], next((a for _s, a in live), None))
        return self._propose(ref, result, change, basis, step)

    def _flapping(
        self,
        ref: ResourceKey,
        result: PlanResult,
        change: Change,
        live: list[tuple[str, str]],
        evidence: list[str],
    ) -> RefStatus:
        self.flap.mark(ref, spec_hash(result.desired.get(ref)), change.patch, evidence)
        message = (
            f"the same patch succeeded {len(evidence)} times within "
            f"{int(self.flap.window)}s and was undone each time: {', '.join(evidence)}"
        )
        self.condition(ref, "Flapping", True, "RepeatedPatch", message)
        self._supersede(live, None, "resource is flapping")
        return RefStatus("Flapping", [message])

    def _propose(
        self, ref: ResourceKey, result: PlanResult, change: Change, basis: str, step: ChainStep
    ) -> RefStatus:
        manifest = result.state.manifests.get(ref)
        doc = manifest.doc if manifest else None
        auto = auto_approves(
            change.operation, doc, result.state.config, after_failure=step.after_failure
        )
        action = new_action(
            change,
            commit=result.state.commit,
            basis=basis,
            manifest=doc,
            auto_approve=auto,
            generation=step.generation,
        )
        self._batch.append((ref, action, auto))  # proposed by `_flush` at the pass's end
        return RefStatus("Pending", [], action.id)
