"""What the UI shows: summary, resources, actions and events built from the views.

Pure reads over `RuntimeViews` (no file access here): the resource table
joins world documents, the supervisor's per-resource status and the live
queue; details add the desired spec (from the resource's latest action or
the supervisor status), the observed spec and the diff rendered exactly as
`homelab plan` renders it (with a changed file's line diff, which only the
planner can compute, taken from the action that planned that change).
Results are the API schemas; controllers and pages both call these
functions.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime
from typing import Any

import msgspec

from reconciler.api import problems
from reconciler.api import schemas as s
from reconciler.api.diff_text import change_text
from reconciler.api.disk import human
from reconciler.api.eventfeed import EventQuery
from reconciler.api.views import RuntimeViews
from reconciler.diff import Change, diff_resource, render_change
from reconciler.queue.action import Action
from reconciler.queue.store import LIVE_STATES
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import QUEUE_STATES
from reconciler.service_health import judge
from reconciler.world import observed_spec
from reconciler.world.doc import Condition, WorldStatus


def _opt(value: Any) -> str | None:
    return None if value is None else str(value)


def parse_ts(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _condition(c: Condition) -> s.Condition:
    return s.Condition(
        type=c.type,
        status=c.status,
        reason=c.reason,
        message=c.message,
        lastTransitionTime=c.last_transition_time,
    )


def _live(views: RuntimeViews) -> dict[ResourceKey, tuple[str, str]]:
    live: dict[ResourceKey, tuple[str, str]] = {}
    for state in reversed(LIVE_STATES):
        for action in views.queue[state].values():
            live.setdefault(action.key, (state, action.id))
    return live


def _newest(views: RuntimeViews, states: tuple[str, ...]) -> dict[ResourceKey, str]:
    """The state of each resource's newest action among those in `states`."""
    newest: dict[ResourceKey, tuple[str, str]] = {}
    for state in states:
        for action in views.queue[state].values():
            stamp = action.created_at or ""
            seen = newest.get(action.key)
            if seen is None or stamp > seen[0]:
                newest[action.key] = (stamp, state)
    return {ref: state for ref, (_stamp, state) in newest.items()}


def _row(
    views: RuntimeViews,
    ref: ResourceKey,
    entry: dict[str, Any],
    live: tuple[str, str] | None,
    newest: str | None,
    last_run: str | None,
) -> s.ResourceRow:
    doc = views.world.get(ref)
    status_doc = doc.status if doc is not None else WorldStatus()
    labels = doc.metadata.labels if doc is not None else {}
    status = str(entry.get("status") or ("Pending" if live else "Unknown"))
    if ref.kind == "Node" and problems.node_readiness(views, ref.name).ready is False:
        status = "NotReady"  # its engine does not answer, whatever its manifest says
    node = None
    if ref.kind in problems.DOCKER_KINDS:
        node = problems.node_of(_dict(entry.get("desired")) or status_doc.observed)
    return s.ResourceRow(
        kind=ref.kind,
        name=ref.name,
        status=status,
        health=status_doc.health or "Unknown",
        exists=status_doc.exists,
        managed=status_doc.managed,
        drift=status in ("Drifted", "Pending", "NodeNotReady") or live is not None,
        action=live[1] if live else _opt(entry.get("action")),
        actionState=live[0] if live else None,
        observedAt=status_doc.observed_at,
        conditions=[_condition(c) for c in status_doc.conditions],
        labels={str(k): str(v) for k, v in labels.items()},
        node=node,
        lastActionState=newest,
        lastRun=last_run,
    )


def resource_rows(views: RuntimeViews) -> list[s.ResourceRow]:
    def build() -> list[s.ResourceRow]:
        statuses: dict[str, Any] = views.supervisor.get("resources") or {}
        live = _live(views)
        newest = _newest(views, QUEUE_STATES)
        runs = _newest(views, ("done", "failed"))
        refs: set[ResourceKey] = set(views.world) | set(live)
        refs |= {ResourceKey(*k.split("/", 1)) for k in statuses if "/" in k}
        return [
            _row(
                views,
                ref,
                statuses.get(f"{ref[0]}/{ref[1]}") or {},
                live.get(ref),
                newest.get(ref),
                runs.get(ref),
            )
            for ref in sorted(refs)
        ]

    rows: list[s.ResourceRow] = views.cached("rows", build)
    return rows


# The statuses a resource row has; exactly one each, so their counts add up to the total.
STATUSES = (
    "InSync",
    "Drifted",
    "Pending",
    "Invalid",
    "Unknown",
    "Flapping",
    "NodeNotReady",
    "NotReady",
)


def _counts(views: RuntimeViews) -> tuple[s.ResourceCounts, dict[str, int]]:
    def build() -> tuple[s.ResourceCounts, dict[str, int]]:
        rows = resource_rows(views)
        by: dict[str, int] = dict.fromkeys(STATUSES, 0)
        for row in rows:
            # A status this UI does not know yet counts as Unknown, so the sum still holds.
            by[row.status if row.status in by else "Unknown"] += 1
        counts = s.ResourceCounts(
            total=len(rows),
            inSync=by["InSync"],
            drifted=by["Drifted"],
            invalid=by["Invalid"],
            flapping=by["Flapping"],
            pending=by["Pending"],
            unknown=by["Unknown"],
            waitingOnNode=by["NodeNotReady"],
            nodesNotReady=by["NotReady"],
            failed=sum(1 for r in rows if r.lastRun == "failed"),
        )
        return counts, {state: len(views.queue[state]) for state in QUEUE_STATES}

    out: tuple[s.ResourceCounts, dict[str, int]] = views.cached("counts", build)
    return out


def summary(views: RuntimeViews, now: float | None = None) -> s.Summary:
    now = time.time() if now is None else now
    counts, actions = _counts(views)
    sup, obs = views.supervisor, views.observer
    resync = _opt(sup.get("lastResyncAt"))
    resync_ts = parse_ts(resync)
    lag = obs.get("lagBytes")
    folded = obs.get("eventsFolded")
    return s.Summary(
        resources=counts,
        actions=actions,
        observer=s.ObserverInfo(
            caughtUp=obs.get("caughtUp") if isinstance(obs.get("caughtUp"), bool) else None,
            checkpointAgeSeconds=(
                round(now - views.checkpoint_mtime, 3) if views.checkpoint_mtime else None
            ),
            lagBytes=lag if isinstance(lag, int) else None,
            eventsFolded=folded if isinstance(folded, int) else None,
            updatedAt=_opt(obs.get("updatedAt")),
        ),
        desiredCommit=_opt(sup.get("commit")),
        lastResyncAt=resync,
        lastResyncAgeSeconds=round(now - resync_ts, 3) if resync_ts else None,
        supervisorUpdatedAt=_opt(sup.get("updatedAt")),
        services=service_infos(views, now),
        notifications=notifications_info(views),
        signedCommits=signed_commits_info(views),
        source=source_info(views),
        disk=disk_info(views),
    )


def signed_commits_info(views: RuntimeViews) -> s.SignedCommitsInfo | None:
    """What the supervisor's last pass kept in force when signed commits are required."""
    doc = views.supervisor.get("signedCommits")
    if not isinstance(doc, dict) or doc.get("required") is not True:
        return None
    return s.SignedCommitsInfo(
        tip=_opt(doc.get("tip")),
        inForce=_opt(doc.get("inForce")),
        verified=doc.get("verified") is True,
        signer=_opt(doc.get("signer")),
        heldBack=_opt(doc.get("heldBack")),
    )


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def source_info(views: RuntimeViews) -> s.SourceInfo | None:
    """The remote follower's status file (`reconciler.sources.follow`), None for a local repo."""
    doc = views.source
    if not doc:
        return None
    forced = doc.get("lastForcePush")
    forced = forced if isinstance(forced, dict) else {}
    return s.SourceInfo(
        url=_str(doc.get("url")),
        branch=_str(doc.get("branch")),
        ready=doc.get("ready") is True,
        error=_str(doc.get("error")),
        commit=_str(doc.get("commit")),
        lastFetchAt=_str(doc.get("lastFetchAt")),
        lastSuccessAt=_str(doc.get("lastSuccessAt")),
        lastFetchSeconds=_num(doc.get("lastFetchSeconds")),
        consecutiveFailures=_int(doc.get("consecutiveFailures")),
        forcePushFrom=_str(forced.get("from")),
        forcePushTo=_str(forced.get("to")),
        forcePushAt=_num(forced.get("at")),
    )


def storage_errors(views: RuntimeViews, *, detail: bool = False) -> dict[str, str]:
    """Services whose writes fail (a full disk) and are being retried: `{service: error}`.

    Without `detail` (the open `/summary`) only the error's code (ENOSPC), not
    its text, which names paths of the runtime root.
    """
    out = {}
    for name, doc in views.services.items():
        storage = doc.get("storage")
        if isinstance(storage, dict) and storage.get("failing") is True:
            key = "error" if detail else "errno"
            out[name] = str(storage.get(key) or "cannot write")
    return out


def disk_info(views: RuntimeViews, *, detail: bool = False) -> s.DiskInfo:
    """Disk pressure; `detail` (signed-in pages) adds the writers' error texts."""
    d = views.disk.state()
    errors = storage_errors(views, detail=detail)
    if d.error is not None:
        reason, message = "Unreadable", d.error
    elif d.free_bytes < d.limit_bytes:
        reason = "DiskFull" if d.free_bytes == 0 else "LowSpace"
        message = (
            f"{human(d.free_bytes)} free of {human(d.total_bytes)} ({d.free_percent:g} %) on "
            f"the runtime root's filesystem, below {human(d.limit_bytes)}; the event log "
            f"takes {human(d.log_bytes)}, the world {human(d.world_bytes)}"
        )
    else:
        reason, message = "Enough", ""
    if errors:
        message = (
            (message + "; " if message else "")
            + "cannot write, retrying: "
            + ", ".join(f"{k} ({v})" for k, v in sorted(errors.items()))
        )
    return s.DiskInfo(
        freeBytes=d.free_bytes,
        totalBytes=d.total_bytes,
        freePercent=d.free_percent,
        eventLogBytes=d.log_bytes,
        worldBytes=d.world_bytes,
        warnBelowBytes=d.limit_bytes,
        pressure=d.pressure,
        condition=s.Condition(
            type="DiskPressure",
            status="True" if d.pressure or errors else "False",
            reason="WritesFailing" if errors and not d.pressure else reason,
            message=message,
            lastTransitionTime=None,
        ),
        storageErrors=errors,
    )


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def notifications_info(views: RuntimeViews) -> s.NotificationsInfo | None:
    """The notifier's status file: per target counts and ages (its URL stays out)."""
    doc = views.notifier
    if not doc:
        return None
    targets = {}
    for entry in doc.get("targets") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        targets[entry["id"]] = s.NotifyTargetInfo(
            healthy=entry.get("healthy") is True,
            down=entry.get("down") is True,
            sent=_int(entry.get("sent")),
            failed=_int(entry.get("failed")),
            consecutiveFailures=_int(entry.get("consecutiveFailures")),
            backlog=_int(entry.get("backlog")),
            lastSentAt=_num(entry.get("lastSentAt")),
            lastFailureAt=_num(entry.get("lastFailureAt")),
        )
    problems = doc.get("problems")
    return s.NotificationsInfo(
        state=_opt(doc.get("state")),
        updatedAt=_num(doc.get("updatedAt")),
        problems=len(problems) if isinstance(problems, list) else 0,
        targets=targets,
    )


def notification_targets(views: RuntimeViews) -> list[dict[str, Any]]:
    """The notifier's targets for the dashboard (signed-in readers): redacted URL, last error."""
    return [t for t in views.notifier.get("targets") or [] if isinstance(t, dict)]


def notification_problems(views: RuntimeViews) -> list[str]:
    problems = views.notifier.get("problems")
    return [str(p) for p in problems] if isinstance(problems, list) else []


def service_infos(views: RuntimeViews, now: float) -> dict[str, s.ServiceInfo]:
    """Each service's health document judged at `now` (a stale heartbeat is unhealthy)."""
    out = {}
    for name, doc in views.services.items():
        healthy, check = judge(doc, now)
        failures, restarts = doc.get("failures"), doc.get("restarts")
        out[name] = s.ServiceInfo(
            state=str(doc.get("state")),
            healthy=healthy,
            check=check,
            reason=_opt(doc.get("reason")),
            failures=failures if isinstance(failures, int) else 0,
            restarts=restarts if isinstance(restarts, int) else 0,
            updatedAt=_opt(doc.get("updatedAt")),
        )
    return out


def summary_json(views: RuntimeViews) -> bytes:
    """The encoded summary, rebuilt at most every 100 ms per views version (ages move slowly)."""
    now = time.time()
    stamp = (views.version, int(now * 10))
    cached = views.derived.get("summary_json")
    if cached is not None and cached[0] == stamp:
        body: bytes = cached[1]
        return body
    body = msgspec.json.encode(summary(views, now))
    views.derived["summary_json"] = (stamp, body)
    return body


def rows_json(
    views: RuntimeViews, kind: str | None, status: str | None, run: str | None = None
) -> bytes:
    """The encoded resource table for one filter, built once per views version."""
    key = f"rows_json:{kind or ''}:{status or ''}:{run or ''}"
    body: bytes = views.cached(
        key, lambda: msgspec.json.encode(filter_rows(views, kind, status, run))
    )
    return body


def filter_rows(
    views: RuntimeViews, kind: str | None, status: str | None, run: str | None = None
) -> list[s.ResourceRow]:
    """Rows of a kind, a status and whose last run ended `run` (done, failed); each optional."""
    rows = resource_rows(views)
    if kind:
        rows = [r for r in rows if r.kind == kind]
    if status:
        rows = [r for r in rows if r.status == status]
    if run:
        rows = [r for r in rows if r.lastRun == run]
    return rows


def event_out(e: dict[str, Any]) -> s.EventOut:
    ref = e.get("ref")
    data = e.get("data")
    return s.EventOut(
        id=str(e.get("id")),
        ts=str(e.get("ts") or ""),
        source=str(e.get("source") or ""),
        type=str(e.get("type") or ""),
        ref=s.EventRefOut(str(ref.get("kind")), str(ref.get("name")))
        if isinstance(ref, dict)
        else None,
        data=data if isinstance(data, dict) else {},
    )


def events(views: RuntimeViews, query: EventQuery) -> s.EventPage:
    page, cursor = views.feed.query(query)
    return s.EventPage(events=[event_out(e) for e in page], next=cursor)


def action_row(state: str, action: Action) -> s.ActionRow:
    return s.ActionRow(
        id=action.id,
        kind=action.kind,
        name=action.name,
        operation=action.operation,
        state=state,
        summary=action.summary,
        commit=action.commit,
        createdAt=action.created_at or None,
        history=[s.HistoryEntry(h.state, h.at, h.actor, h.reason) for h in action.moves],
        after=list(action.after) if isinstance(action.after, list) else [],
    )


def actions(views: RuntimeViews, state: str | None) -> list[s.ActionRow]:
    states = [state] if state else list(QUEUE_STATES)
    rows = [action_row(st, a) for st in states for a in views.queue[st].values()]
    return sorted(rows, key=lambda r: (r.createdAt or "", r.id), reverse=True)


def action_detail(views: RuntimeViews, action_id: str) -> s.ActionDetail | None:
    found = views.find_action(action_id)
    if found is None:
        return None
    state, action = found
    related = views.feed.query(EventQuery(action=action_id, limit=200))[0]
    return s.ActionDetail(
        action=msgspec.structs.replace(action_row(state, action), summary=change_text(action)),
        patch=action.patch,
        desired=action.desired,
        observed=action.observed,
        forcesReplacement=action.forces_replacement,
        basis=action.basis,
        outcome=action.outcome,
        events=[event_out(e) for e in related],
        contentDiff=dict(action.change().text_diffs),
    )


def _dict(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _with_text_diffs(change: Change, actions: list[Action]) -> Change:
    """The change with the line diffs of an action that planned exactly it (same two specs).

    The UI reads no git: a line diff is known only from the planner, and it is
    shown only when it explains exactly the desired and observed specs compared.
    """
    for action in actions:
        same = action.desired == change.desired and action.observed == change.observed
        if same and action.content_diff:
            return dataclasses.replace(change, text_diffs=action.change().text_diffs)
    return change


def _outcome_text(state: str, action: Action) -> str | None:
    """What the newest action ended with, in words: its failure reason, who rejected it."""
    last = action.moves[-1] if action.moves else None
    if state == "failed":
        error = (action.outcome or {}).get("error")
        return str(error or (last.reason if last else None) or "failed (no reason recorded)")
    if state in ("rejected", "superseded") and last is not None:
        who = f" by {last.actor}" if last.actor and state == "rejected" else ""
        return f"{state}{who}: {last.reason or 'no reason given'}"
    if state == "done":
        return "applied"
    return None


def _desired_of(
    entry: dict[str, Any], history: list[tuple[str, Action]]
) -> tuple[dict[str, Any] | None, str]:
    """The desired spec and where it came from: the commit's manifest, else the newest action."""
    from_git = _dict(entry.get("desired"))
    if from_git is not None:
        return from_git, "git"
    if entry.get("status") == "Invalid":
        return None, "none"  # the manifest is invalid at the commit: nothing is desired
    for _state, action in history:
        if action.desired is not None:
            return action.desired, "action"
    return None, "none"


def resource_detail(views: RuntimeViews, kind: str, name: str) -> s.ResourceDetail | None:
    """One resource's story: desired (from git) against observed, the diff, the last action."""
    row = next((r for r in resource_rows(views) if r.kind == kind and r.name == name), None)
    if row is None:
        return None
    entry = (views.supervisor.get("resources") or {}).get(f"{kind}/{name}") or {}
    history = views.actions_of(kind, name)
    live = [(st, d) for st, d in history if st in LIVE_STATES]
    desired, desired_from = _desired_of(entry, history)
    observed = observed_spec(views.world.get(ResourceKey(kind, name)))
    patch: list[dict[str, Any]] = []
    diff = ""
    if live:
        change: Change | None = live[0][1].change()
    elif desired is not None:
        change = diff_resource(kind, name, desired, observed)
        if change is not None:
            change = _with_text_diffs(change, [d for _, d in history])
    else:
        change = None
    if change is not None:
        patch, diff = change.patch, render_change(change)
    if live:
        diff = change_text(live[0][1])  # the pending action's change, as its page shows it
    newest = history[0] if history else None
    node = row.node if kind in problems.DOCKER_KINDS else name if kind == "Node" else None
    return s.ResourceDetail(
        resource=row,
        desired=desired,
        observed=observed,
        patch=patch,
        diff=diff,
        errors=[str(e) for e in entry.get("errors") or []],
        actions=[action_row(st, d) for st, d in history[:50]],
        events=[event_out(e) for e in views.feed.for_ref(kind, name)],
        source=_opt(entry.get("source")),
        commit=_opt(views.supervisor.get("commit")),
        desiredFrom=desired_from,
        lastAction=action_row(*newest) if newest else None,
        lastOutcome=_outcome_text(*newest) if newest else None,
        nodeReady=problems.node_readiness(views, node) if node else None,
        canProposeAgain=newest is not None and newest[0] == "rejected" and not live,
        canClearFlap=row.status == "Flapping"
        or any(c.type == "Flapping" and c.status == "True" for c in row.conditions),
    )
