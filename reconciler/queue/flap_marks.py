"""The flapping marks: which resources the supervisor stopped proposing for, and why.

The marks live in `state/supervisor_flap.json` (per resource: the desired
hash it was marked at, since when, the patch and the evidence; per
resource, when an operator last cleared it), changed under an exclusive
lock on `state/supervisor_flap.lock` because the supervisor, the CLI
(`homelab actions clear-flap`) and the UI ("clear flap") all write it. Kept
below the services so each of them can; the flap guard that decides is
`reconciler.supervisor.flap`.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import RuntimeRoot

FLAP_FILE = "supervisor_flap.json"
LOCK_FILE = "supervisor_flap.lock"


def ref_key(ref: ResourceKey) -> str:
    return f"{ref[0]}/{ref[1]}"


@contextmanager
def locked_marks(root: RuntimeRoot) -> Iterator[dict[str, Any]]:
    """The flap state, read and written back under the lock."""
    root.state.mkdir(parents=True, exist_ok=True)
    fd = os.open(root.state / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path = root.state / FLAP_FILE
        try:
            doc: dict[str, Any] = read_json(path)
        except (FileNotFoundError, ValueError):
            doc = {}
        doc.setdefault("flapping", {})
        doc.setdefault("clearedAt", {})
        before = repr(doc)
        yield doc
        if repr(doc) != before:
            atomic_write_json(path, doc)
    finally:
        os.close(fd)


def read_flap_state(root: RuntimeRoot) -> dict[str, Any]:
    try:
        doc: dict[str, Any] = read_json(root.state / FLAP_FILE)
    except (FileNotFoundError, ValueError):
        doc = {}
    return {"flapping": doc.get("flapping") or {}, "clearedAt": doc.get("clearedAt") or {}}


def clear_flapping(root: RuntimeRoot, ref: ResourceKey) -> bool:
    """Operator clears a mark; earlier successes no longer count. False if not flapping."""
    key = ref_key(ref)
    with locked_marks(root) as doc:
        was = doc["flapping"].pop(key, None) is not None
        doc["clearedAt"][key] = time.time()
    return was
