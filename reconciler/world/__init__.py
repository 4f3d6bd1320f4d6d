"""World documents: the observed state, one JSON file per resource.

`ROOT/world/<kind>/<name>.json` is written only by the observer (through
`reconciler.files`) and read by everyone else. This module owns the
document's shape (`new_world_doc`), its path, and `WorldReader`, which keeps
parsed documents in memory and re-reads only files whose size or mtime
changed. Called by the observer, the planner, the executor and the UI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from reconciler.resources.meta import API_VERSION
from reconciler.settings import RuntimeRoot

Ref = tuple[str, str]


def world_path(root: RuntimeRoot, kind: str, name: str) -> Path:
    # kind comes from the registry and name is a DNS-1123 label, so this stays inside world/.
    return root.world / kind / f"{name}.json"


def new_world_doc(kind: str, name: str) -> dict[str, Any]:
    """An empty world document: nothing observed yet."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "labels": {}},
        "status": {
            "exists": False,
            "managed": False,
            "observed": None,
            "observedAt": None,
            "health": "Unknown",
            "conditions": [],
            "basis": "",
            "lastAction": None,
            "lastEventId": None,
        },
    }


def observed_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    """The spec as seen, or None when the resource does not exist."""
    status = doc.get("status") or {}
    if not status.get("exists"):
        return None
    spec = status.get("observed")
    return spec if isinstance(spec, dict) else None


@dataclass
class _Entry:
    stamp: tuple[int, int]
    doc: dict[str, Any]


class WorldReader:
    """All world documents, re-reading only what changed since the last call."""

    def __init__(self, root: RuntimeRoot) -> None:
        self.root = root
        self._cache: dict[Ref, _Entry] = {}

    def read(self) -> dict[Ref, dict[str, Any]]:
        seen: dict[Ref, _Entry] = {}
        try:
            kinds = list(os.scandir(self.root.world))
        except FileNotFoundError:
            kinds = []
        for kind_dir in kinds:
            if not kind_dir.is_dir():
                continue
            for entry in os.scandir(kind_dir.path):
                if not entry.name.endswith(".json") or entry.name.startswith("."):
                    continue
                ref = (kind_dir.name, entry.name[:-5])
                st = entry.stat()
                stamp = (st.st_mtime_ns, st.st_size)
                cached = self._cache.get(ref)
                if cached is None or cached.stamp != stamp:
                    try:
                        cached = _Entry(stamp, orjson.loads(Path(entry.path).read_bytes()))
                    except (OSError, orjson.JSONDecodeError):
                        continue  # removed or replaced while reading; next call sees it
                seen[ref] = cached
        self._cache = seen
        return {ref: e.doc for ref, e in seen.items()}


def read_world(root: RuntimeRoot) -> dict[Ref, dict[str, Any]]:
    return WorldReader(root).read()
