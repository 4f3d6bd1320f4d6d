"""Operators asking for a rejected change to be proposed again.

A rejected action ends its chain of generations: the supervisor does not
propose the same change again (`walk_chain`). An operator who changed their
mind asks for it again (the UI's "propose again"); the request is recorded
by action id in `state/supervisor_repropose.json`, changed under an
exclusive lock on `state/supervisor_repropose.lock` because several UI
processes and the CLI may write while the supervisor reads. The supervisor
then walks past that rejected generation and proposes the next one, as a
new pending action that needs an approval like any other. Called by the UI
and the supervisor service.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.queue.action import now_iso
from reconciler.runtime_root import RuntimeRoot

REPROPOSE_FILE = "supervisor_repropose.json"
LOCK_FILE = "supervisor_repropose.lock"


def _read(root: RuntimeRoot) -> dict[str, Any]:
    try:
        doc = read_json(root.state / REPROPOSE_FILE)
    except (FileNotFoundError, ValueError):
        return {}
    requested = doc.get("requested") if isinstance(doc, dict) else None
    return requested if isinstance(requested, dict) else {}


@contextmanager
def _locked(root: RuntimeRoot) -> Iterator[dict[str, Any]]:
    root.state.mkdir(parents=True, exist_ok=True)
    fd = os.open(root.state / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        requested = _read(root)
        before = dict(requested)
        yield requested
        if requested != before:
            atomic_write_json(root.state / REPROPOSE_FILE, {"requested": requested})
    finally:
        os.close(fd)


def request_again(root: RuntimeRoot, action_id: str, actor: str) -> bool:
    """Record that `actor` wants rejected `action_id` proposed again; False if already asked."""
    with _locked(root) as requested:
        if action_id in requested:
            return False
        requested[action_id] = {"actor": actor, "at": now_iso()}
    return True


def reopened(root: RuntimeRoot) -> frozenset[str]:
    """Ids of rejected actions an operator asked to propose again."""
    return frozenset(_read(root))
