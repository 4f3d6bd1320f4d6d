"""Writing world documents and the observer checkpoint, crash-safe and in batches.

Each document is replaced atomically through `reconciler.files` (temp file,
rename), so a reader or a process killed with -9 sees the old or the new
document, never half of one. A batch is made durable once rather than per
file, because one fsync per document would cost milliseconds each: all
documents are renamed into place, one `syncfs` flushes them, the touched
folders are fsynced, and only then is the checkpoint written (durably).
After a power loss before that point the checkpoint still names the old
offsets and `load_world` finds any document the disk lost as unreadable,
which makes the observer rebuild. Called by the observer's folding shell.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path
from typing import Any

import orjson

from reconciler.files import atomic_write_json, fsync_dir, replace_many
from reconciler.resources.kinds import KINDS
from reconciler.settings import RuntimeRoot
from reconciler.world import Ref, world_path

CHECKPOINT_VERSION = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def encode_doc(doc: dict[str, Any]) -> bytes:
    """The exact bytes of a world document on disk (what `atomic_write_json` writes)."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def sync_filesystem(folder: Path) -> None:
    """Flush every dirty page of the filesystem holding `folder` (Linux syncfs)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if _libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class WorldLoadError(Exception):
    """A world document on disk is unreadable (torn by a power loss, edited by hand)."""


def load_world(root: RuntimeRoot) -> dict[Ref, dict[str, Any]]:
    """Every world document on disk; raises `WorldLoadError` on the first bad one."""
    docs: dict[Ref, dict[str, Any]] = {}
    for kind in KINDS:
        folder = root.world / kind
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(".json"):
                continue
            try:
                doc = orjson.loads(Path(entry.path).read_bytes())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise WorldLoadError(f"{entry.path}: unreadable world document ({exc})") from exc
            if not isinstance(doc, dict) or "eventIds" not in (doc.get("status") or {}):
                raise WorldLoadError(f"{entry.path}: not a world document written by the observer")
            docs[(kind, entry.name[:-5])] = doc
    return docs


def remove_stale_temp_files(root: RuntimeRoot) -> None:
    """Temp files left by a writer killed between create and rename."""
    for kind in KINDS:
        folder = root.world / kind
        if folder.is_dir():
            for entry in os.scandir(folder):
                if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                    os.unlink(entry.path)


def _same_bytes(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


class WorldWriter:
    """Writes batches of world documents, skipping ones whose bytes did not change."""

    def __init__(self, root: RuntimeRoot, *, durable: bool = True) -> None:
        self.root = root
        self.durable = durable
        self._written: dict[Ref, int] = {}  # ref -> hash of the bytes on disk

    def forget(self) -> None:
        self._written.clear()

    def remember(self, docs: dict[Ref, dict[str, Any]]) -> None:
        """Record documents already on disk (loaded at start) as written."""
        for ref, doc in docs.items():
            self._written[ref] = hash(encode_doc(doc))

    def write(self, docs: dict[Ref, dict[str, Any]], *, compare_disk: bool = False) -> int:
        """Write the documents whose bytes changed; return how many were written.

        `compare_disk` (a rebuild) reads documents not written by this writer
        yet and skips those whose bytes on disk are already right.
        """
        todo: list[tuple[Path, bytes]] = []
        for ref, doc in docs.items():
            data = encode_doc(doc)
            digest = hash(data)
            path = world_path(self.root, *ref)
            known = self._written.get(ref)
            if known == digest and path.exists():
                continue
            self._written[ref] = digest
            if known is None and compare_disk and _same_bytes(path, data):
                continue
            todo.append((path, data))
        if not todo:
            return 0
        for folder in {path.parent for path, _ in todo}:
            folder.mkdir(parents=True, exist_ok=True)
        replace_many(todo)
        if self.durable:
            sync_filesystem(self.root.world)
            for folder in {path.parent for path, _ in todo}:
                fsync_dir(folder)
        return len(todo)

    def remove_others(self, keep: set[Ref]) -> list[Ref]:
        """Delete documents on disk that the fold does not know (a rebuild's leftovers)."""
        removed = []
        for kind_dir in self.root.world.iterdir() if self.root.world.is_dir() else []:
            if not kind_dir.is_dir():
                continue
            for entry in os.scandir(kind_dir):
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    ref = (kind_dir.name, entry.name[:-5])
                    if ref not in keep:
                        os.unlink(entry.path)
                        self._written.pop(ref, None)
                        removed.append(ref)
        return removed

    def write_checkpoint(self, offsets: dict[str, int], documents: int) -> None:
        doc = {"version": CHECKPOINT_VERSION, "offsets": offsets, "documents": documents}
        atomic_write_json(self.root.checkpoint, doc, durable=self.durable)


def read_checkpoint(root: RuntimeRoot) -> tuple[dict[str, int], int] | None:
    """(offsets, document count) from the checkpoint, or None when absent or unusable."""
    try:
        doc = orjson.loads(root.checkpoint.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("version") != CHECKPOINT_VERSION:
        return None
    offsets = doc.get("offsets")
    if not isinstance(offsets, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in offsets.items()
    ):
        return None
    return offsets, int(doc.get("documents") or 0)
