"""World documents: the observed state, one JSON file per resource.

`ROOT/world/<kind>/<name>.json` is written only by the observer (through
`reconciler.atomic_files`) and read by everyone else. This module owns the
document's shape (`new_world_doc`), its path, and `WorldReader`, which keeps
parsed documents in memory and re-reads only files whose size or mtime
changed. Called by the observer, the planner, the executor and the UI.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.resources.key import ResourceKey
from reconciler.resources.meta import API_VERSION
from reconciler.runtime_root import RuntimeRoot
from reconciler.world.doc import InvalidWorldDoc, WorldDoc, world_doc_from_json


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


def observed_spec(doc: WorldDoc | None) -> dict[str, Any] | None:
    """The spec as seen, or None when the resource does not exist (or is not known)."""
    return doc.observed_spec if doc is not None else None


class TornRead(OSError):
    """The file changed while it was read (its name was swapped and the old inode rewritten)."""


def read_doc_bytes(path: str | Path) -> tuple[bytes, os.stat_result]:
    """A world document's bytes, checked whole.

    The observer writes a document by swapping it with a twin whose inode it
    rewrites on the next write (`reconciler.atomic_files.swap_in_many`), so a reader
    that opened the old inode just before a swap could read it while it is
    rewritten. The read counts only when the inode's size and times did not
    move during it and the name still points at it; otherwise `TornRead`.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        before = os.fstat(fd)
        chunks = []
        while chunk := os.read(fd, max(before.st_size, 4096)):
            chunks.append(chunk)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    stamp = (before.st_size, before.st_mtime_ns, before.st_ctime_ns)
    if stamp != (after.st_size, after.st_mtime_ns, after.st_ctime_ns):
        raise TornRead(f"{path}: changed while read")
    if os.stat(path).st_ino != after.st_ino:
        raise TornRead(f"{path}: replaced while read")
    return b"".join(chunks), after


def read_world_doc(path: str | Path) -> WorldDoc:
    """One world document, typed; OSError (TornRead included) or InvalidWorldDoc when unusable."""
    return world_doc_from_json(read_doc_bytes(path)[0])


@dataclass
class _Entry:
    stamp: tuple[int, int, int]
    doc: WorldDoc


class WorldReader:
    """All world documents, re-reading only what changed since the last call."""

    def __init__(self, root: RuntimeRoot) -> None:
        self.root = root
        self._cache: dict[ResourceKey, _Entry] = {}

    def read(self) -> dict[ResourceKey, WorldDoc]:
        seen: dict[ResourceKey, _Entry] = {}
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
                ref = ResourceKey(kind_dir.name, entry.name[:-5])
                cached = self._cache.get(ref)
                try:
                    st = entry.stat()
                    if cached is None or cached.stamp != (st.st_ino, st.st_mtime_ns, st.st_size):
                        data, st = read_doc_bytes(entry.path)
                        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
                        cached = _Entry(stamp, world_doc_from_json(data))
                except (OSError, InvalidWorldDoc):
                    # Removed, or rewritten while read: keep what was read before
                    # (its stale stamp makes the next call read it again).
                    if cached is None:
                        continue
                seen[ref] = cached
        self._cache = seen
        return {ref: e.doc for ref, e in seen.items()}

    def total_bytes(self) -> int:
        """The size of the documents last read (from their stat; no file is read again)."""
        return sum(e.stamp[2] for e in self._cache.values())


def read_world(root: RuntimeRoot) -> dict[ResourceKey, WorldDoc]:
    return WorldReader(root).read()
