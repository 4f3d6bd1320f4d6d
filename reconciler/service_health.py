"""Service health on disk: `ROOT/state/services/<name>.json`, one document per service.

The process that runs a service (`homelab up` for all four, `homelab run
<service>` for one, through `reconciler.cli.service_report`) writes its
document crash-safely on every change of state and, without fsync, as a
heartbeat every `HEARTBEAT_SECONDS` (it only proves the process is alive:
a reader takes a running service whose heartbeat is older than
`STALE_AFTER_SECONDS`, three heartbeats and a margin, as gone); one file
per service, so the four containers of the Compose stack never overwrite
each other's. The document holds `state`
(starting | running | backoff | failed | stopped), restart and failure
counts, the last error, and a `ServiceFailed` condition shaped like a
resource condition. A service restarted after a failure counts as healthy
only once it has run `SETTLE_SECONDS`. `judge` turns a document into (healthy, one line) for the
UI's `/readyz` and `/summary` (reconciler/api/controllers/ops.py,
reconciler/api/services.py, through reconciler/api/views.py) and for
`homelab health`, the containers' healthcheck (reconciler/cli/health.py).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.runtime_root import RuntimeRoot

HEARTBEAT_SECONDS = 30.0  # rare on purpose: every rewrite wakes the UI's watch and costs a write
STALE_AFTER_SECONDS = 100.0  # a running service whose heartbeat is older: its process is gone
SETTLE_SECONDS = 10.0  # a service restarted after a failure is healthy once it ran this long
SERVICE_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
FAILING_STATES = ("backoff", "failed")


def services_dir(root: RuntimeRoot) -> Path:
    return root.state / "services"


def status_path(root: RuntimeRoot, name: str) -> Path:
    if not SERVICE_NAME.match(name):
        raise ValueError(f"service name {name!r}: use lower-case letters, digits and '-'")
    return services_dir(root) / f"{name}.json"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_status(root: RuntimeRoot, doc: dict[str, Any], *, durable: bool = True) -> None:
    """Replace one service's document (temp file, fsync unless not `durable`, rename)."""
    atomic_write_json(status_path(root, str(doc["service"])), doc, durable=durable)


def read_status(root: RuntimeRoot, name: str) -> dict[str, Any] | None:
    """One service's document, or None when it is missing or unreadable."""
    try:
        doc = read_json(status_path(root, name))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def read_statuses(root: RuntimeRoot) -> dict[str, dict[str, Any]]:
    """Every service document under state/services/, by service name."""
    try:
        names = sorted(os.listdir(services_dir(root)))
    except FileNotFoundError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for file_name in names:
        if not file_name.endswith(".json") or file_name.startswith("."):
            continue
        name = file_name[:-5]
        if SERVICE_NAME.match(name):
            doc = read_status(root, name)
            if doc is not None:
                out[name] = doc
    return out


def _age(iso: object, now: float) -> float | None:
    if not isinstance(iso, str):
        return None
    try:
        then = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return max(0.0, now - then.timestamp())


def heartbeat_age(doc: dict[str, Any], now: float) -> float | None:
    return _age(doc.get("updatedAt"), now)


def judge(
    doc: dict[str, Any], now: float, stale_after: float = STALE_AFTER_SECONDS
) -> tuple[bool, str]:
    """(healthy, one line saying why) for one service document at time `now` (epoch s)."""
    state = doc.get("state")
    failures = doc.get("failures", 0)
    reason = doc.get("reason") or "error"
    if state == "backoff":
        wait = doc.get("nextStartIn")
        again = f"; restarting in {wait:g}s" if isinstance(wait, int | float) else ""
        return False, f"failing: {reason} ({failures} failures in a row{again})"
    if state == "failed":
        return (
            False,
            f"failed: {reason}; gave up after {doc.get('recentFailures', failures)} failures",
        )
    if state in ("running", "starting"):
        age = heartbeat_age(doc, now)
        if age is None or age > stale_after:
            shown = "ever" if age is None else f"{age:.0f}s"
            return False, f"no heartbeat for {shown} (is the process that runs it gone?)"
        ran = _age(doc.get("startedAt"), now)
        if isinstance(failures, int) and failures > 0 and (ran is None or ran < SETTLE_SECONDS):
            # Restarted after a failure: healthy only once it stays up, so a probe
            # landing between two quick failures does not see a flapping service as fine.
            return False, f"restarting: {reason} ({failures} failures in a row; up {ran or 0:.0f}s)"
        return True, str(state)
    if state == "stopped":
        return True, "stopped"
    return False, f"unknown state {state!r}"
