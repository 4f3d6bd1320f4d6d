"""Writing world documents and the observer checkpoint, crash-safe and in batches.

Each document is replaced atomically by `reconciler.atomic_files.swap_in_many`
(new bytes over a hidden twin, then one rename that exchanges the two
names), so a reader or a process killed with -9 sees the old or the new
document, never half of one. Nothing is fsynced per document or per tick:
durability is the folding shell's protocol (`reconciler.observer.world_builder`):
the checkpoint says whether the documents on disk were synced (`synced`)
and on which boot it was written (`bootId`). A tick first marks a synced
checkpoint unsynced, durably, before it touches a document; a later `sync`
flushes the filesystem once (`syncfs`) and marks it synced again. After a
power loss or kernel crash (a new boot id) an unsynced checkpoint makes the
observer rebuild, because the disk may then hold any mix of document
versions; after a process crash on the same boot the page cache holds
exactly what was written and the observer resumes. Called by the folding
shell.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from reconciler.atomic_files import atomic_write_json, swap_in_many, twin_name, twin_path
from reconciler.resources.key import ResourceKey
from reconciler.resources.kinds import KINDS
from reconciler.runtime_root import RuntimeRoot

CHECKPOINT_VERSION = 2
_FRESH_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


def encode_doc(doc: dict[str, Any]) -> bytes:
    """The exact bytes of a world document on disk (what `atomic_write_json` writes)."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def boot_id() -> str:
    """This boot of the machine ("" where the kernel does not say)."""
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ""


class WorldLoadError(Exception):
    """A world document on disk is unreadable (torn by a power loss, edited by hand)."""


def load_world(root: RuntimeRoot) -> dict[ResourceKey, dict[str, Any]]:
    """Every world document on disk; raises `WorldLoadError` on the first bad one."""
    docs: dict[ResourceKey, dict[str, Any]] = {}
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
            docs[ResourceKey(kind, entry.name[:-5])] = doc
    return docs


def remove_stale_temp_files(root: RuntimeRoot) -> None:
    """Temp files that belong to no document (left by a rebuild that removed it).

    A document's twin (`.<name>.json.tmp`) is kept: the next write reuses it.
    """
    for kind in KINDS:
        folder = root.world / kind
        if folder.is_dir():
            names = {e.name for e in os.scandir(folder)}
            twins = {twin_name(name) for name in names}
            for name in names:
                if name.startswith(".") and name.endswith(".tmp") and name not in twins:
                    os.unlink(folder / name)


def _same_bytes(path: str, data: bytes) -> bool:
    """Whether the file holds exactly `data` (a rebuild compares 25,000 of them: no pathlib)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.read(fd, len(data) + 1) == data  # a longer file reads one byte more
    except OSError:
        return False
    finally:
        os.close(fd)


class WorldWriter:
    """Writes batches of world documents, skipping ones whose bytes did not change."""

    def __init__(self, root: RuntimeRoot, *, durable: bool = True) -> None:
        self.root = root
        self.durable = durable
        self._written: dict[ResourceKey, int] = {}  # ref -> hash of the bytes on disk

    def forget(self) -> None:
        self._written.clear()

    def remember(self, docs: dict[ResourceKey, dict[str, Any]]) -> None:
        """Record documents already on disk (loaded at start) as written."""
        for ref, doc in docs.items():
            self._written[ref] = hash(encode_doc(doc))

    def write(self, docs: dict[ResourceKey, dict[str, Any]], *, compare_disk: bool = False) -> int:
        """Write the documents whose bytes changed; return how many were written.

        `compare_disk` (a rebuild) reads documents not written by this writer
        yet and skips those whose bytes on disk are already right.
        """
        todo: list[tuple[str, str, bytes]] = []
        world = str(self.root.world)
        for ref, doc in docs.items():
            data = encode_doc(doc)
            digest = hash(data)
            known = self._written.get(ref)
            if known == digest:
                continue
            self._written[ref] = digest
            kind, name = ref
            filename = f"{name}.json"
            folder = f"{world}/{kind}"
            if known is None and compare_disk and _same_bytes(f"{folder}/{filename}", data):
                continue
            todo.append((folder, filename, data))
        if not todo:
            return 0
        for folder in {folder for folder, _, _ in todo}:
            os.makedirs(folder, exist_ok=True)
        swap_in_many(todo)
        return len(todo)

    def write_into(self, docs: dict[ResourceKey, dict[str, Any]], folder: Path) -> int:
        """Write every document into a new world being built in `folder` (not `world/` yet).

        Plain writes into files that may already exist empty (created ahead by
        `reconciler.observer.fresh_world`): no twin and no rename, since no
        reader looks at `folder` before it is swapped in whole.
        """
        dirfds: dict[str, int] = {}
        try:
            for ref, doc in docs.items():
                kind, name = ref
                data = encode_doc(doc)
                self._written[ref] = hash(data)
                dirfd = dirfds.get(kind)
                if dirfd is None:
                    os.makedirs(folder / kind, mode=0o700, exist_ok=True)
                    dirfd = dirfds[kind] = os.open(folder / kind, os.O_RDONLY | os.O_DIRECTORY)
                fd = os.open(f"{name}.json", _FRESH_FLAGS, 0o600, dir_fd=dirfd)
                try:
                    view = memoryview(data)
                    at = 0
                    while at < len(data):
                        at += os.write(fd, view[at:])
                finally:
                    os.close(fd)
        finally:
            for dirfd in dirfds.values():
                os.close(dirfd)
        return len(docs)

    def forget_refs(self, refs: list[ResourceKey]) -> None:
        """Documents gone from disk (deleted by hand): the next write must not skip them."""
        for ref in refs:
            self._written.pop(ref, None)

    def remove_others(self, keep: set[ResourceKey]) -> list[ResourceKey]:
        """Delete documents on disk that the fold does not know (a rebuild's leftovers)."""
        removed = []
        for kind_dir in self.root.world.iterdir() if self.root.world.is_dir() else []:
            if not kind_dir.is_dir():
                continue
            for entry in os.scandir(kind_dir):
                if entry.name.endswith(".json") and not entry.name.startswith("."):
                    ref = ResourceKey(kind_dir.name, entry.name[:-5])
                    if ref not in keep:
                        os.unlink(entry.path)
                        with contextlib.suppress(FileNotFoundError):
                            os.unlink(twin_path(Path(entry.path)))
                        self._written.pop(ref, None)
                        removed.append(ref)
        return removed

    def write_checkpoint(self, checkpoint: Checkpoint, *, durable: bool) -> None:
        doc = {
            "version": CHECKPOINT_VERSION,
            "offsets": checkpoint.offsets,
            "fingerprints": checkpoint.fingerprints,
            "documents": checkpoint.documents,
            "synced": checkpoint.synced,
            "bootId": checkpoint.boot_id,
        }
        atomic_write_json(self.root.checkpoint, doc, durable=durable and self.durable)


@dataclass(frozen=True)
class Checkpoint:
    """Where folding got to, and whether the world on disk is synced up to there."""

    offsets: dict[str, int]
    documents: int
    synced: bool
    boot_id: str
    fingerprints: dict[str, dict[str, Any]] = field(default_factory=dict)


def read_checkpoint(root: RuntimeRoot) -> Checkpoint | None:
    """The checkpoint, or None when absent or unusable (an older version included)."""
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
    prints = doc.get("fingerprints")
    prints = prints if isinstance(prints, dict) else {}
    return Checkpoint(
        offsets,
        int(doc.get("documents") or 0),
        doc.get("synced") is True,
        str(doc.get("bootId")),
        {k: v for k, v in prints.items() if isinstance(v, dict)},
    )
