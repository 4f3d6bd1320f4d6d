"""The quarantine report: log lines and events the observer could not fold.

A corrupt complete line (`BadLine`) or an event the fold rejected (unknown
kind, bad name, malformed data) is recorded once in
`ROOT/logs/event-quarantine.json`, keyed by `file:offset` or event id so a
rebuild does not duplicate entries, and logged as a warning. The log itself
is never modified: nothing is lost, and an operator can repair and re-ingest.
Called by the observer's folding shell; read by operators and `homelab events`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.events.reader import BadLine
from reconciler.observer.fold import Diagnostic
from reconciler.runtime_root import RuntimeRoot

log = logging.getLogger("reconciler.observer")
MAX_ENTRIES = 10_000


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Quarantine:
    """Collects problems and rewrites the report (atomically) when new ones appear."""

    def __init__(self, root: RuntimeRoot) -> None:
        self.path = root.logs / "event-quarantine.json"
        self.entries: dict[str, dict[str, Any]] = {}
        self.omitted = 0
        self._changed = False
        try:
            doc = read_json(self.path)
            if isinstance(doc, dict) and isinstance(doc.get("entries"), dict):
                self.entries = doc["entries"]
                self.omitted = int(doc.get("omitted") or 0)
        except (OSError, ValueError):
            pass

    def _add(self, key: str, entry: dict[str, Any]) -> None:
        if key in self.entries:
            return
        if len(self.entries) >= MAX_ENTRIES:
            self.omitted += 1
        else:
            self.entries[key] = {**entry, "seenAt": _now()}
        self._changed = True

    def bad_line(self, bad: BadLine) -> None:
        key = f"{bad.file}:{bad.offset}"
        if key not in self.entries:
            log.warning(
                "events/%s at byte %d: corrupt line quarantined (%s)",
                bad.file,
                bad.offset,
                bad.reason,
            )
        self._add(
            key,
            {
                "file": f"events/{bad.file}",
                "offset": bad.offset,
                "reason": bad.reason,
                "line": bad.line.decode("utf-8", errors="replace"),
            },
        )

    def diagnostic(self, diag: Diagnostic) -> None:
        if diag.event_id not in self.entries:
            log.warning("%s", diag.message)
        self._add(diag.event_id, {"event": diag.event_id, "reason": diag.message})

    def note(self, message: str) -> None:
        log.warning("%s", message)

    def flush(self) -> None:
        if self._changed:
            doc = {"entries": self.entries, "omitted": self.omitted}
            atomic_write_json(self.path, doc)
            self._changed = False
