"""Request and response schemas of the HTTP API, separate from the domain documents.

msgspec structs: Litestar encodes them without copying into dicts and
documents them in the OpenAPI spec at `/schema`. The services in
`reconciler.api.services` build them from world documents, queue actions
and events (plain JSON dicts); controllers only return them.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import Meta, Struct

AgentName = Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")]
EventType = Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_-]*)+$", max_length=100)]
DnsName = Annotated[str, Meta(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
KindName = Annotated[str, Meta(pattern=r"^[A-Z][A-Za-z0-9]{0,62}$")]
Reason = Annotated[str, Meta(max_length=500)]


class ResourceCounts(Struct):
    """Resources by status: the eight status counts add up to `total`.

    `failed` (the last run of an action failed) cuts across them and is not in the sum.
    """

    total: int
    inSync: int
    drifted: int
    invalid: int
    flapping: int
    pending: int
    unknown: int
    waitingOnNode: int = 0  # status NodeNotReady: a change waits for its node's engine
    nodesNotReady: int = 0  # Nodes whose engine does not answer (status NotReady)
    failed: int = 0


class ObserverInfo(Struct):
    caughtUp: bool | None
    checkpointAgeSeconds: float | None
    lagBytes: int | None
    eventsFolded: int | None
    updatedAt: str | None


class ServiceInfo(Struct):
    """One service's health (`state/services/<name>.json`): the error's type, not its text."""

    state: str
    healthy: bool
    check: str
    reason: str | None
    failures: int
    restarts: int
    updatedAt: str | None


class NotifyTargetInfo(Struct):
    """One notification target as the notifier reports it: counts and ages, no URL."""

    healthy: bool
    down: bool
    sent: int
    failed: int
    consecutiveFailures: int
    backlog: int
    lastSentAt: float | None = None
    lastFailureAt: float | None = None


class NotificationsInfo(Struct):
    """The notifier (`state/notifier_status.json`); `problems`: unusable homelab.yaml entries."""

    state: str | None = None
    updatedAt: float | None = None
    problems: int = 0
    targets: dict[str, NotifyTargetInfo] = {}


class SignedCommitsInfo(Struct):
    """Signed commits are required: the tip, the commit in force, and why the tip is held back."""

    tip: str | None
    inForce: str | None
    verified: bool
    signer: str | None = None
    heldBack: str | None = None  # None: the tip is in force


class SourceInfo(Struct):
    """The followed remote (URL without credentials): SourceReady, commit, fetch times."""

    url: str | None
    branch: str | None
    ready: bool
    error: str | None
    commit: str | None
    lastFetchAt: str | None
    lastSuccessAt: str | None
    lastFetchSeconds: float | None
    consecutiveFailures: int
    forcePushFrom: str | None = None  # the last rewritten history: the tip before
    forcePushTo: str | None = None
    forcePushAt: float | None = None


class DiskInfo(Struct):
    """Disk pressure: the runtime root's filesystem and what the log and world take of it.

    `storageErrors`: services that could not write (a full disk) and are
    retrying, by service, with the error's code (ENOSPC; the signed-in
    pages show its text).
    """

    freeBytes: int
    totalBytes: int
    freePercent: float
    eventLogBytes: int
    worldBytes: int
    warnBelowBytes: int
    pressure: bool
    condition: Condition
    storageErrors: dict[str, str] = {}


class Summary(Struct):
    """Counts, ages and the desired commit only: `/summary` is open to plain `curl`."""

    resources: ResourceCounts
    actions: dict[str, int]
    observer: ObserverInfo
    desiredCommit: str | None
    lastResyncAt: str | None
    lastResyncAgeSeconds: float | None
    supervisorUpdatedAt: str | None
    services: dict[str, ServiceInfo] = {}
    notifications: NotificationsInfo | None = None  # None: no notifier has run
    signedCommits: SignedCommitsInfo | None = None  # None: signatures are not required
    source: SourceInfo | None = None  # None: the repository is a local folder
    disk: DiskInfo | None = None


class Condition(Struct):
    type: str
    status: str
    reason: str = ""
    message: str = ""
    lastTransitionTime: str | None = None


class ResourceRow(Struct):
    kind: str
    name: str
    status: str
    health: str
    exists: bool
    managed: bool
    drift: bool
    action: str | None
    actionState: str | None
    observedAt: str | None
    conditions: list[Condition]
    labels: dict[str, str]
    node: str | None = None  # the node a Docker-backed resource runs on
    lastActionState: str | None = None  # the state of its newest action, of any state
    lastRun: str | None = None  # how the newest action the executor ran ended: done | failed


class EventRefOut(Struct):
    kind: str
    name: str


class EventOut(Struct):
    id: str
    ts: str
    source: str
    type: str
    ref: EventRefOut | None
    data: dict[str, Any]


class EventPage(Struct):
    events: list[EventOut]
    next: str | None


class HistoryEntry(Struct):
    state: str
    at: str | None
    actor: str | None
    reason: str | None


class ActionRow(Struct):
    id: str
    kind: str
    name: str
    operation: str
    state: str
    summary: str
    commit: str
    createdAt: str | None
    history: list[HistoryEntry]
    after: list[str] = []  # what it runs after (dependsOn): "Container/db (healthy)", ...


class ActionDetail(Struct):
    action: ActionRow
    patch: list[dict[str, Any]]
    desired: dict[str, Any] | None
    observed: dict[str, Any] | None
    forcesReplacement: list[str]
    basis: str
    outcome: dict[str, Any] | None
    events: list[EventOut]
    # Line diffs of changed file contents, by the pointer of their fingerprint.
    contentDiff: dict[str, str] = {}


class ResourceDetail(Struct):
    resource: ResourceRow
    desired: dict[str, Any] | None
    observed: dict[str, Any] | None
    patch: list[dict[str, Any]]
    diff: str
    errors: list[str]
    actions: list[ActionRow]
    events: list[EventOut]
    source: str | None = None  # file:line:column of the manifest at the desired commit
    commit: str | None = None
    desiredFrom: str = "none"  # git (the commit's manifest) | action (the latest action's)
    lastAction: ActionRow | None = None
    lastOutcome: str | None = None  # what the latest action ended with (its failure reason)
    nodeReady: NodeReadiness | None = None
    canProposeAgain: bool = False
    canClearFlap: bool = False


class NodeReadiness(Struct):
    """Whether a resource's node answers: its Node's Ready condition."""

    name: str
    ready: bool | None  # None: never observed
    message: str = ""


class ManifestProblem(Struct):
    """One manifest error of the desired commit: `path:line:column: field: message`."""

    path: str
    line: int
    column: int
    field: str
    message: str


class ManifestProblems(Struct):
    """Every manifest error of the supervisor's desired commit (the banner and /errors)."""

    commit: str | None
    errors: list[ManifestProblem]
    invalid: list[str]  # KIND/NAME of the resources that are Invalid


class Decision(Struct):
    """Body of approve/reject; a rejection needs a reason, a delete its name typed.

    `confirmName`: approving a delete needs the resource's name here (as the UI's
    form asks it typed), else 422.
    """

    reason: Reason | None = None
    confirmName: Annotated[str, Meta(max_length=253)] | None = None


class Rejection(Struct):
    """Body of reject: why (recorded in the event and the action's history)."""

    reason: Annotated[str, Meta(min_length=1, max_length=500, pattern=r"\S")]


class DecisionResult(Struct):
    id: str
    state: str
    actor: str


class Conflict(Struct):
    """409: the action is no longer pending; `state` is where it is now (null: unknown id)."""

    id: str
    state: str | None
    detail: str


class Problem(Struct):
    status_code: int
    detail: str


class IngestRef(Struct):
    kind: KindName
    name: DnsName


class IngestEvent(Struct):
    type: EventType
    ref: IngestRef | None = None
    data: dict[str, Any] = {}


class IngestBatch(Struct):
    agent: AgentName
    events: Annotated[list[IngestEvent], Meta(min_length=1, max_length=1000)]


class IngestResult(Struct):
    accepted: int
    ids: list[str]


class Health(Struct):
    status: str
    checks: dict[str, str]


class HookResult(Struct):
    """A webhook accepted: who sent it and whether a fetch of the source was asked."""

    accepted: bool
    provider: str
    event: str
    fetch: bool
