"""`GET /metrics`: Prometheus text built from the views, nothing measured twice.

Queue sizes per state, resources per status, action outcomes, observer lag,
checkpoint age and events folded (from the observer's status file), the
supervisor's last pass duration when it records one, how long actions
took from claim to outcome (from the queue history), and per notification
target the messages sent and failed, whether it is up and its backlog
(from the notifier's status file), whether signed commits hold the tip
back, for a followed remote its SourceReady, last fetch duration and last
success (from the follower's status file), and disk pressure: free space,
the event log's and the world's size (reconciler/api/disk.py). Called by the health
controller.
"""

from __future__ import annotations

import time
from typing import Any

from reconciler.api.services import (
    _counts,
    notifications_info,
    parse_ts,
    resource_rows,
    signed_commits_info,
    source_info,
    storage_errors,
)
from reconciler.api.views import RuntimeViews
from reconciler.runtime_root import QUEUE_STATES

OUTCOMES = ("done", "failed", "rejected", "superseded")


def _metric(
    out: list[str], name: str, kind: str, help_: str, samples: list[tuple[str, Any]]
) -> None:
    out.append(f"# HELP {name} {help_}")
    out.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        out.append(f"{name}{labels} {value}")


def _run_seconds(views: RuntimeViews) -> tuple[int, float]:
    count, total = 0, 0.0
    for state in ("done", "failed"):
        for action in views.queue[state].values():
            marks = {h.state: parse_ts(h.at) for h in action.moves}
            start, end = marks.get("running"), marks.get(state)
            if start is not None and end is not None and end >= start:
                count, total = count + 1, total + (end - start)
    return count, total


def _source_metrics(out: list[str], views: RuntimeViews) -> None:
    """The followed remote's fetches (no samples for a local repository)."""
    info = source_info(views)
    success = _num_or(views.source.get("lastSuccessTs"), -1)
    samples = [] if info is None else [("", 1 if info.ready else 0)]
    _metric(out, "homelab_source_ready", "gauge", "SourceReady of the remote (1/0).", samples)
    _metric(
        out,
        "homelab_source_fetch_seconds",
        "gauge",
        "Duration of the last fetch of the remote repository.",
        [] if info is None else [("", info.lastFetchSeconds or 0)],
    )
    _metric(
        out,
        "homelab_source_last_success_timestamp",
        "gauge",
        "Unix time of the last successful fetch (-1: none yet).",
        [] if info is None else [("", success)],
    )
    _metric(
        out,
        "homelab_source_consecutive_failures",
        "gauge",
        "Fetches that failed in a row.",
        [] if info is None else [("", info.consecutiveFailures)],
    )


def _num_or(value: Any, default: float) -> float:
    return float(value) if isinstance(value, int | float) else default


def _notification_metrics(out: list[str], views: RuntimeViews) -> None:
    info = notifications_info(views)
    targets = sorted(info.targets.items()) if info is not None else []
    _metric(
        out,
        "homelab_notifications_sent_total",
        "counter",
        "Messages a notification target accepted (since the notifier started).",
        [(f'{{target="{tid}"}}', t.sent) for tid, t in targets],
    )
    _metric(
        out,
        "homelab_notifications_failed_total",
        "counter",
        "Messages given up on after every try (since the notifier started).",
        [(f'{{target="{tid}"}}', t.failed) for tid, t in targets],
    )
    _metric(
        out,
        "homelab_notification_target_up",
        "gauge",
        "1 while the target's last message got through (or none was sent yet), else 0.",
        [(f'{{target="{tid}"}}', 1 if t.healthy else 0) for tid, t in targets],
    )
    _metric(
        out,
        "homelab_notification_backlog",
        "gauge",
        "Messages waiting for a target.",
        [(f'{{target="{tid}"}}', t.backlog) for tid, t in targets],
    )
    _metric(
        out,
        "homelab_notification_config_problems",
        "gauge",
        "Entries of homelab.yaml notifications the notifier cannot use.",
        [("", info.problems if info is not None else 0)],
    )


def _disk_metrics(out: list[str], views: RuntimeViews) -> None:
    d = views.disk.state()
    for name, help_, value in (
        ("homelab_disk_free_bytes", "Free bytes on the runtime root's filesystem.", d.free_bytes),
        ("homelab_disk_size_bytes", "Size of the runtime root's filesystem.", d.total_bytes),
        (
            "homelab_disk_warn_below_bytes",
            "DiskPressure threshold: free bytes below this warn.",
            d.limit_bytes,
        ),
        ("homelab_event_log_bytes", "Bytes of the event log (ROOT/events).", d.log_bytes),
        ("homelab_world_bytes", "Bytes of the world documents (ROOT/world).", d.world_bytes),
        ("homelab_disk_pressure", "1 while free space is below the threshold.", int(d.pressure)),
    ):
        _metric(out, name, "gauge", help_, [("", value)])
    failing = storage_errors(views)
    _metric(
        out,
        "homelab_storage_write_failing",
        "gauge",
        "1 for a service that cannot write (a full disk) and is retrying.",
        [(f'{{service="{name}"}}', 1 if name in failing else 0) for name in sorted(views.services)],
    )


def render_metrics(views: RuntimeViews) -> str:
    out: list[str] = []
    _disk_metrics(out, views)
    _metric(
        out,
        "homelab_queue_actions",
        "gauge",
        "Actions in each queue state.",
        [(f'{{state="{st}"}}', len(views.queue[st])) for st in QUEUE_STATES],
    )
    _metric(
        out,
        "homelab_action_outcomes_total",
        "counter",
        "Actions that ended, by outcome (files kept in the queue).",
        [(f'{{outcome="{st}"}}', len(views.queue[st])) for st in OUTCOMES],
    )
    statuses: dict[str, int] = {}
    for row in resource_rows(views):
        statuses[row.status] = statuses.get(row.status, 0) + 1
    counts, _ = _counts(views)
    _metric(
        out,
        "homelab_resources",
        "gauge",
        "Resources by reconcile status.",
        [(f'{{status="{k}"}}', v) for k, v in sorted(statuses.items())]
        + [('{status="Flapping-condition"}', counts.flapping)],
    )
    obs = views.observer
    folded = obs.get("eventsFolded")
    lag = obs.get("lagBytes")
    _metric(
        out,
        "homelab_events_folded_total",
        "counter",
        "Events folded by the observer.",
        [("", folded if isinstance(folded, int) else 0)],
    )
    _metric(
        out,
        "homelab_observer_lag_bytes",
        "gauge",
        "Event log bytes not folded yet.",
        [("", lag if isinstance(lag, int) else 0)],
    )
    age = time.time() - views.checkpoint_mtime if views.checkpoint_mtime else -1
    _metric(
        out,
        "homelab_observer_checkpoint_age_seconds",
        "gauge",
        "Seconds since the observer checkpoint was written (-1: none).",
        [("", round(age, 3))],
    )
    passed = views.supervisor.get("lastPassSeconds")
    _metric(
        out,
        "homelab_reconcile_duration_seconds",
        "gauge",
        "Duration of the supervisor's last planning pass (-1: not reported).",
        [("", passed if isinstance(passed, int | float) else -1)],
    )
    count, total = _run_seconds(views)
    _metric(
        out,
        "homelab_action_run_seconds",
        "summary",
        "Time from claim (running) to outcome of finished actions.",
        [("_count", count), ("_sum", round(total, 3))],
    )
    _notification_metrics(out, views)
    signed = signed_commits_info(views)
    held = -1 if signed is None else int(signed.heldBack is not None)
    _metric(
        out,
        "homelab_source_tip_held_back",
        "gauge",
        "1 while signed commits hold the tip back, 0 when it is in force (-1: not required).",
        [("", held)],
    )
    _source_metrics(out, views)
    _metric(
        out,
        "homelab_ui_events_read_total",
        "counter",
        "Events the UI has read.",
        [("", views.feed.total_read)],
    )
    return "\n".join(out) + "\n"
