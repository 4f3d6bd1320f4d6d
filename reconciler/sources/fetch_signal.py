"""Asking the source follower to fetch now (a webhook, `homelab source fetch`).

`request_fetch(root, reason)` writes `ROOT/state/source/fetch-request.json`
atomically (`{"reason", "ts"}`); the follower that fetches the remote
repository takes it with `take_fetch_request(root)` (the request is removed
as it is taken, so one request triggers one fetch) and may wait for it with a
file watch on `fetch_request_path(root).parent`. Requests that arrive while a
fetch runs are merged into the next fetch. Nothing else is ever written
there: a webhook can trigger a fetch of the configured source and nothing more.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import orjson

from reconciler.atomic_files import atomic_write_json
from reconciler.runtime_root import RuntimeRoot


def fetch_request_path(root: RuntimeRoot) -> Path:
    return root.state / "source" / "fetch-request.json"


def request_fetch(root: RuntimeRoot, reason: str) -> None:
    path = fetch_request_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, {"reason": reason[:200], "ts": time.time()}, durable=False)


def take_fetch_request(root: RuntimeRoot) -> str | None:
    """The pending request's reason, removing it; None when there is none."""
    path = fetch_request_path(root)
    taken = path.with_name(f"fetch-request.taken.{os.getpid()}")
    try:
        os.rename(path, taken)
    except FileNotFoundError:
        return None
    try:
        doc = orjson.loads(taken.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        doc = {}
    finally:
        taken.unlink(missing_ok=True)
    reason = doc.get("reason") if isinstance(doc, dict) else None
    return reason if isinstance(reason, str) else "requested"
