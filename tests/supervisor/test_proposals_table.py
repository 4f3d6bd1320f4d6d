"""The proposal decision table of reconciler/supervisor/proposals.py, row by row.

For one planned change (or none) and what the queue already holds, the Proposer
proposes, keeps, supersedes, re-proposes as the next generation, waits, or refuses
(rejected, flapping, node not ready, delete withheld, invalid manifest), and
auto-approves per policy. `walk_chain` (where a plan's generations stand) is pure and
tested alone; the rest is tested through the smallest real objects: a real
ActionQueue, EventLog and FlapGuard on tmp_path, a PlanResult built from the pure
planner (`make_plan`), and a fresh Proposer per row, as after a supervisor restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_type_hints

import orjson
import pytest

from reconciler.diff import Change, diff_resource, make_plan
from reconciler.errors import Location, ManifestError
from reconciler.events.log import EventLog
from reconciler.queue import ActionQueue, action_id, new_action
from reconciler.queue.action import generation_id, now_iso
from reconciler.resources.key import ResourceKey
from reconciler.resources.kinds import KINDS
from reconciler.resources.normalize import spec_hash
from reconciler.resources.repo import RepoConfig
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.git import DesiredState
from reconciler.sources.manifests import Manifest
from reconciler.supervisor.flap import FlapGuard, ref_key
from reconciler.supervisor.policy import Gate
from reconciler.supervisor.proposals import ChainStep, Outcome, Proposer, walk_chain
from reconciler.world import new_world_doc
from reconciler.world.doc import WorldDoc, world_doc_from_dict

# The planner's result type, taken from the Proposer's own signature so these tests do not
# import the planner module (it is moving; tests/diff/test_plan_cases.py holds that import).
PlanResult = get_type_hints(Proposer.apply)["result"]

# -- walk_chain: pure --------------------------------------------------------------------
PLAN = "0123456789abcdef0123"


def chain(*states: str) -> dict[str, str]:
    return {generation_id(PLAN, n): state for n, state in enumerate(states)}


def step(outcome: Outcome, generation: int, after_failure: bool = False) -> ChainStep:
    return ChainStep(outcome, generation_id(PLAN, generation), generation, after_failure)


@pytest.mark.parametrize(
    ("states", "settled", "expected"),
    [
        pytest.param((), True, step("propose", 0), id="nothing-queued-proposes-generation-0"),
        pytest.param(("pending",), True, step("live", 0), id="pending-is-live"),
        pytest.param(("approved",), True, step("live", 0), id="approved-is-live"),
        pytest.param(("running",), True, step("live", 0), id="running-is-live"),
        pytest.param(("rejected",), True, step("rejected", 0), id="rejected-stops-the-chain"),
        pytest.param(("superseded",), True, step("propose", 1), id="superseded-proposes-the-next"),
        pytest.param(("done",), True, step("propose", 1), id="done-and-observed-proposes-the-next"),
        pytest.param(("done",), False, step("wait", 0), id="done-not-yet-observed-waits"),
        pytest.param(
            ("failed",), True, step("propose", 1, True), id="failed-proposes-the-next-for-a-person"
        ),
        pytest.param(
            ("failed",), False, step("propose", 1, True), id="failed-does-not-wait-for-the-world"
        ),
        pytest.param(("done", "pending"), False, step("live", 1), id="later-generation-is-live"),
        pytest.param(
            ("done", "rejected"), True, step("rejected", 1), id="later-generation-rejected"
        ),
        pytest.param(
            ("failed", "superseded"),
            True,
            step("propose", 2),
            id="failure-is-remembered-one-generation-only",
        ),
        pytest.param(
            ("done", "done", "failed"), True, step("propose", 3, True), id="long-chain-walked"
        ),
    ],
)
def test_walk_chain(states: tuple[str, ...], settled: bool, expected: ChainStep) -> None:
    asked: list[str] = []

    def is_settled(aid: str) -> bool:
        asked.append(aid)
        return settled

    assert walk_chain(PLAN, chain(*states), is_settled) == expected
    # The world is consulted only about a finished (done) last generation.
    last_done = bool(states) and states[-1] == "done" and expected.outcome in ("wait", "propose")
    assert asked == ([generation_id(PLAN, len(states) - 1)] if last_done else [])


# -- Proposer: the table -----------------------------------------------------------------
COMMIT = "c0mm17" * 6 + "abcd"
SPECS = {
    "Container": {
        "v1": {"node": "local", "image": "local/busybox:1", "restartPolicy": "always"},
        "v2": {"node": "local", "image": "local/busybox:2", "restartPolicy": "always"},
        "v9": {"node": "local", "image": "local/busybox:9", "restartPolicy": "always"},
        "on": {"node": "local", "image": "local/busybox:1", "state": "running"},
        "off": {"node": "local", "image": "local/busybox:1", "state": "stopped"},
    },
    "File": {
        "v1": {"node": "local", "path": "/srv/homelab/f", "mode": "0644", "sha256": "sha256:aa"},
        "v2": {"node": "local", "path": "/srv/homelab/f", "mode": "0600", "sha256": "sha256:aa"},
        "v9": {"node": "local", "path": "/srv/homelab/f", "mode": "0400", "sha256": "sha256:aa"},
    },
}
IN_PLACE = {kind: model.IN_PLACE for kind, model in KINDS.items()}
MOVES = {
    "pending": [],
    "approved": ["approved"],
    "running": ["approved", "running"],
    "done": ["approved", "running", "done"],
    "failed": ["approved", "running", "failed"],
    "rejected": ["rejected"],
    "superseded": ["superseded"],
}
NOT_READY = "node local is not ready (EngineUnreachable: connection refused)"


@dataclass(frozen=True)
class Row:
    """One situation and what the Proposer must make of it.

    Queue labels: `plan:N` is generation N of the planned change, `stale` an action
    for another patch of the same resource (desired or world moved since).
    """

    queue: tuple[tuple[str, str], ...] = ()  # (label, state) before the pass
    kind: str = "Container"
    desired: str | None = "v2"  # None: gone from git (a delete when observed)
    observed: str | None = "v1"  # None: missing from the world
    invalid: bool = False
    auto: bool = False  # spec.policy.autoApprove
    prune: bool = False  # homelab.yaml autoApprovePrune
    gate_open: bool = True
    node_ready: str | None = None  # the Node's Ready condition status; None: no Node document
    flap: str | None = None  # "same": marked for this desired spec; "changed": for an older one
    settled: bool = True  # the world was observed after the last action finished
    remembered: tuple[str, ...] = ()  # conditions reported True before (restored by the service)
    unmanaged: bool = False  # the observed resource exists but is not managed (adoption)
    # -- expected
    operation: str | None = None  # the planned operation, when the row is about it
    status: str = "Pending"
    action: str | None = "plan:0"
    after: tuple[tuple[str, str], ...] = (("plan:0", "pending"),)  # the whole queue after
    error: str | None = None  # a substring of one of the status errors
    reason: str | None = None  # substring of the reason of every action superseded now
    conditions: tuple[tuple[str, str], ...] = ()  # resource.condition events emitted


ROWS = {
    # -- a drifted resource and its live actions
    "new-drift-is-proposed": Row(),
    "pending-action-for-the-same-drift-is-kept": Row(queue=(("plan:0", "pending"),)),
    "approved-action-for-the-same-drift-is-kept": Row(
        queue=(("plan:0", "approved"),), after=(("plan:0", "approved"),)
    ),
    "running-action-for-the-same-drift-is-kept": Row(
        queue=(("plan:0", "running"),), after=(("plan:0", "running"),)
    ),
    "stale-pending-action-is-superseded-by-the-new-one": Row(
        queue=(("stale", "pending"),),
        after=(("stale", "superseded"), ("plan:0", "pending")),
        reason="desired or world moved",
    ),
    "stale-approved-action-is-superseded-by-the-new-one": Row(
        queue=(("stale", "approved"),),
        after=(("stale", "superseded"), ("plan:0", "pending")),
        reason="desired or world moved",
    ),
    "stale-action-beside-the-live-one-is-superseded": Row(
        queue=(("plan:0", "pending"), ("stale", "pending")),
        after=(("plan:0", "pending"), ("stale", "superseded")),
        reason="replaced by",
    ),
    "running-stale-action-holds-back-the-new-proposal": Row(
        queue=(("stale", "running"),), action="stale", after=(("stale", "running"),)
    ),
    # -- the plan's earlier generations
    "rejected-change-is-not-proposed-again": Row(
        queue=(("plan:0", "rejected"),),
        status="Drifted",
        action=None,
        after=(("plan:0", "rejected"),),
        error="change rejected by an operator",
    ),
    "rejected-change-supersedes-stale-actions": Row(
        queue=(("plan:0", "rejected"), ("stale", "pending")),
        status="Drifted",
        action=None,
        after=(("plan:0", "rejected"), ("stale", "superseded")),
        error="change rejected by an operator",
        reason="change was rejected",
    ),
    "superseded-change-comes-back-as-the-next-generation": Row(
        queue=(("plan:0", "superseded"),),
        action="plan:1",
        after=(("plan:0", "superseded"), ("plan:1", "pending")),
    ),
    "done-change-undone-in-the-world-is-proposed-again": Row(
        queue=(("plan:0", "done"),),
        action="plan:1",
        after=(("plan:0", "done"), ("plan:1", "pending")),
    ),
    "done-change-not-yet-observed-waits-for-the-world": Row(
        queue=(("plan:0", "done"),),
        settled=False,
        action=None,
        after=(("plan:0", "done"),),
        error="waiting for the world to show",
    ),
    "failed-change-is-proposed-again-for-a-person-despite-auto-approve": Row(
        queue=(("plan:0", "failed"),),
        auto=True,
        action="plan:1",
        after=(("plan:0", "failed"), ("plan:1", "pending")),
    ),
    "auto-approve-returns-once-a-generation-after-a-failure-was-superseded": Row(
        queue=(("plan:0", "failed"), ("plan:1", "superseded")),
        auto=True,
        action="plan:2",
        after=(("plan:0", "failed"), ("plan:1", "superseded"), ("plan:2", "approved")),
    ),
    # -- policy
    "auto-approve-policy-approves-the-proposal": Row(auto=True, after=(("plan:0", "approved"),)),
    "file-update-with-auto-approve-is-approved": Row(
        kind="File", auto=True, after=(("plan:0", "approved"),)
    ),
    "delete-waits-for-a-person-by-default": Row(desired=None),
    "delete-is-auto-approved-when-the-repository-allows-prune": Row(
        desired=None, prune=True, after=(("plan:0", "approved"),)
    ),
    "prune-permission-does-not-approve-a-create": Row(observed=None, prune=True),
    "delete-is-withheld-while-the-world-is-not-fully-observed": Row(
        desired=None,
        gate_open=False,
        queue=(("plan:0", "pending"),),
        status="Drifted",
        action=None,
        after=(("plan:0", "superseded"),),
        error="delete withheld: observer has not caught up",
        reason="delete withheld",
    ),
    "closed-gate-does-not-hold-back-creates": Row(observed=None, gate_open=False),
    # -- the run state and adoption: autoApprove covers them, prune permission does not
    "start-waits-for-a-person-by-default": Row(desired="on", observed="off", operation="start"),
    "start-with-auto-approve-is-approved": Row(
        desired="on", observed="off", auto=True, operation="start", after=(("plan:0", "approved"),)
    ),
    "stop-with-auto-approve-is-approved": Row(
        desired="off", observed="on", auto=True, operation="stop", after=(("plan:0", "approved"),)
    ),
    "adopt-waits-for-a-person-by-default": Row(desired="v1", unmanaged=True, operation="adopt"),
    "adopt-with-auto-approve-is-approved": Row(
        desired="v1", unmanaged=True, auto=True, operation="adopt", after=(("plan:0", "approved"),)
    ),
    "prune-permission-does-not-approve-an-adopt": Row(
        unmanaged=True, prune=True, operation="adopt"
    ),
    "adopt-is-proposed-while-the-world-is-not-fully-observed": Row(
        unmanaged=True, gate_open=False, operation="adopt"
    ),
    # -- nothing to change
    "in-sync-resource-supersedes-its-stale-actions": Row(
        desired="v1",
        queue=(("stale", "pending"),),
        status="InSync",
        action=None,
        after=(("stale", "superseded"),),
        reason="no change needed any more",
    ),
    "in-sync-resource-waits-for-its-running-action": Row(
        desired="v1", queue=(("stale", "running"),), action="stale", after=(("stale", "running"),)
    ),
    "resource-gone-everywhere-supersedes-its-leftover-action": Row(
        desired=None,
        observed=None,
        queue=(("stale", "pending"),),
        status="InSync",
        action=None,
        after=(("stale", "superseded"),),
        reason="no change needed any more",
    ),
    # -- invalid manifests
    "invalid-manifest-gets-no-action-and-supersedes-live-ones": Row(
        invalid=True,
        queue=(("stale", "pending"),),
        status="Invalid",
        action=None,
        after=(("stale", "superseded"),),
        error="spec.colour: Extra inputs are not permitted",
        reason="manifest invalid at manifests/web.yaml:7",
        conditions=(("InvalidManifest", "True"),),
    ),
    "invalid-manifest-leaves-a-running-action-alone": Row(
        invalid=True,
        queue=(("stale", "running"),),
        status="Invalid",
        action=None,
        after=(("stale", "running"),),
        error="spec.colour",
        conditions=(("InvalidManifest", "True"),),
    ),
    "fixed-manifest-clears-the-invalid-condition": Row(
        remembered=("InvalidManifest",), conditions=(("InvalidManifest", "False"),)
    ),
    # -- flapping
    "flapping-resource-gets-no-action": Row(
        flap="same",
        queue=(("stale", "pending"),),
        status="Flapping",
        action=None,
        after=(("stale", "superseded"),),
        error="flapping: evidence",
        reason="resource is flapping",
    ),
    "changed-desired-spec-lifts-the-flapping-mark": Row(
        flap="changed", remembered=("Flapping",), conditions=(("Flapping", "False"),)
    ),
    "patch-undone-three-times-marks-the-resource-flapping": Row(
        queue=(("plan:0", "done"), ("plan:1", "done"), ("plan:2", "done")),
        status="Flapping",
        action=None,
        after=(("plan:0", "done"), ("plan:1", "done"), ("plan:2", "done")),
        error="the same patch succeeded 3 times",
        conditions=(("Flapping", "True"),),
    ),
    # -- the node's engine
    "container-on-a-node-not-ready-gets-no-action": Row(
        node_ready="False",
        status="NodeNotReady",
        action=None,
        after=(),
        error=NOT_READY,
        conditions=(("NodeNotReady", "True"),),
    ),
    "node-not-ready-keeps-the-live-action-unchanged": Row(
        node_ready="False",
        queue=(("stale", "pending"),),
        status="NodeNotReady",
        action="stale",
        after=(("stale", "pending"),),
        error=NOT_READY,
        conditions=(("NodeNotReady", "True"),),
    ),
    "delete-of-a-container-on-a-node-not-ready-waits": Row(
        desired=None,
        node_ready="False",
        status="NodeNotReady",
        action=None,
        after=(),
        error=NOT_READY,
        conditions=(("NodeNotReady", "True"),),
    ),
    "in-sync-container-on-a-node-not-ready-is-in-sync": Row(
        desired="v1",
        node_ready="False",
        status="InSync",
        action=None,
        after=(),
        conditions=(("NodeNotReady", "True"),),
    ),
    "file-on-a-node-not-ready-is-still-proposed": Row(kind="File", node_ready="False"),
    "ready-node-lets-the-action-through": Row(node_ready="True"),
    "node-ready-again-clears-the-condition": Row(
        node_ready="True", remembered=("NodeNotReady",), conditions=(("NodeNotReady", "False"),)
    ),
}


class Desk:
    """The real queue, event log and flap guard of one runtime root, and a row's situation."""

    def __init__(self, tmp_path: Path, row: Row) -> None:
        self.root = RuntimeRoot(tmp_path / "root").ensure()
        self.events = EventLog(self.root, "supervisor")
        self.queue = ActionQueue(self.root, self.events)
        self.flap = FlapGuard(self.root)
        self.row = row
        self.ref = (row.kind, "web")
        specs = SPECS[row.kind]
        self.desired = specs[row.desired] if row.desired else None
        self.observed = specs[row.observed] if row.observed else None
        self.basis = spec_hash(self.observed) if self.observed is not None else ""
        seen = {self.ref: self.observed} if self.observed is not None else {}
        self.plan = make_plan(
            COMMIT,
            {self.ref: self.desired} if self.desired and not row.invalid else {},
            {} if row.unmanaged else seen,
            in_place=IN_PLACE,
            unmanaged=seen if row.unmanaged else {},
            protected={self.ref} if row.invalid else set(),
        )
        self.change = self.plan.changes[0] if self.plan.changes else None
        stale = diff_resource(
            row.kind, "web", specs["v9"], self.observed, in_place=IN_PLACE[row.kind]
        )
        assert stale is not None
        self.stale = stale
        self.ids: dict[str, str] = {}

    def manifest_doc(self) -> dict[str, Any]:
        spec = {**(self.desired or {}), "policy": {"autoApprove": self.row.auto}}
        return {"kind": self.row.kind, "metadata": {"name": "web"}, "spec": spec}

    def label_id(self, label: str) -> str:
        if label == "stale":
            return self.ids["stale"]
        assert self.change is not None, f"{label}: the row plans no change"
        c = self.change
        plan_id = action_id(c.kind, c.name, c.operation, c.patch, self.basis)
        return generation_id(plan_id, int(label.split(":")[1]))

    def enqueue(self, label: str, state: str) -> None:
        change: Change | None = self.stale if label == "stale" else self.change
        assert change is not None
        generation = 0 if label == "stale" else int(label.split(":")[1])
        action = new_action(
            change, commit=COMMIT, basis=self.basis, manifest=None, generation=generation
        )
        assert self.queue.propose(action)
        self.ids[label] = action.id
        here = "pending"
        for there in MOVES[state]:
            self.queue.move(action.id, here, there, actor="setup", reason="setup")
            here = there

    def world(self) -> dict[ResourceKey, WorldDoc]:
        doc = new_world_doc(*self.ref)
        doc["status"].update(
            exists=self.observed is not None,
            managed=not self.row.unmanaged,
            observed=self.observed,
            basis=self.basis,
            observedAt=now_iso() if self.row.settled else "2020-01-01T00:00:00.000000Z",
        )
        world = {self.ref: doc}
        if self.row.node_ready is not None:
            node = new_world_doc("Node", "local")
            reason = "EngineUnreachable" if self.row.node_ready == "False" else "EngineAnswers"
            message = "connection refused" if self.row.node_ready == "False" else "ok"
            node["status"]["conditions"] = [
                {
                    "type": "Ready",
                    "status": self.row.node_ready,
                    "reason": reason,
                    "message": message,
                }
            ]
            world[("Node", "local")] = node
        return {ResourceKey(*ref): world_doc_from_dict(doc) for ref, doc in world.items()}

    def result(self) -> Any:
        row, ref = self.row, self.ref
        state = DesiredState(
            commit=COMMIT, path="manifests", config=RepoConfig(autoApprovePrune=row.prune)
        )
        errors = []
        if row.invalid:
            # The resource's own errors, as the git source records them per invalid resource.
            where = Location("manifests/web.yaml", 7, 3)
            errors.append(ManifestError(where, "spec.colour", "Extra inputs are not permitted"))
            state.invalid.add(ref)
            state.invalid_errors[ref] = list(errors)
            state.errors.extend(errors)
        elif self.desired is not None:
            where = Location("manifests/web.yaml")
            state.manifests[ref] = Manifest(row.kind, "web", where, self.manifest_doc())
        desired = {ref: self.desired} if self.desired and not row.invalid else {}
        return PlanResult(
            state,
            self.plan,
            desired,
            errors,
            set(state.invalid),
            self.world(),
            dict(state.invalid_errors),
        )

    def conditions(self) -> list[tuple[str, str]]:
        out = []
        for path in sorted(self.root.events.glob("*/*.jsonl")):
            for line in path.read_bytes().splitlines():
                event = orjson.loads(line)
                if event["type"] == "resource.condition" and event["ref"]["name"] == "web":
                    out.append((event["data"]["type"], event["data"]["status"]))
        return out


@pytest.mark.parametrize("row", [pytest.param(r, id=name) for name, r in ROWS.items()])
def test_proposal_decision(row: Row, tmp_path: Path) -> None:
    desk = Desk(tmp_path, row)
    for label, state in row.queue:
        desk.enqueue(label, state)
    if row.flap is not None:
        assert desk.change is not None
        marked = spec_hash(desk.desired) if row.flap == "same" else "0" * 16
        desk.flap.mark(desk.ref, marked, desk.change.patch, ["e0"])
    before = desk.queue.snapshot()
    proposer = Proposer(desk.queue, desk.events, desk.flap)
    for type_ in row.remembered:
        proposer.conditions[(desk.ref, type_)] = True

    try:
        status = proposer.apply(desk.result(), Gate(row.gate_open, "observer has not caught up"))[
            desk.ref
        ]
    finally:
        desk.events.close()

    assert status.status == row.status
    if row.operation is not None:
        assert desk.change is not None and desk.change.operation == row.operation
    assert status.action == (desk.label_id(row.action) if row.action else None)
    if row.error is None:
        assert status.errors == []
    else:
        assert any(row.error in e for e in status.errors), status.errors
    after = desk.queue.snapshot()
    assert after == {desk.label_id(label): state for label, state in row.after}
    superseded_now = [a for a, s in after.items() if s == "superseded" and before.get(a) != s]
    assert bool(superseded_now) == (row.reason is not None)
    for aid in superseded_now:
        reason = desk.queue.read("superseded", aid).moves[-1].reason
        assert row.reason is not None and row.reason in reason
    assert desk.conditions() == list(row.conditions)
    flapping = ref_key(desk.ref) in desk.flap.marks()
    assert flapping == (row.status == "Flapping")
