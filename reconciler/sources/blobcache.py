"""Cache of parsed manifest files keyed by git blob id.

A blob id names file content, so a cached `FileResult` is valid for as long
as the blob exists: a new commit re-parses only the files whose content
changed. The cache lives in memory and, when given a folder, persists to one
msgpack file under `ROOT/cache/` (written through the crash-safe helper) so a
fresh `homelab plan` starts warm. Called by `reconciler.sources.git`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from reconciler.atomic_files import atomic_write_bytes
from reconciler.errors import Location, ManifestError
from reconciler.resources.key import ResourceKey
from reconciler.sources.manifests import FileResult, Manifest

CACHE_FILE = "manifests-v1.msgpack"
FLUSH_BATCH = 32


def encode_result(result: FileResult) -> list[Any]:
    """A `FileResult` as plain data (paths left out: they come from the tree)."""
    return [
        [[m.kind, m.name, m.location.line, m.location.column, m.doc] for m in result.manifests],
        [[e.location.line, e.location.column, e.field, e.message] for e in result.errors],
        [list(ref) for ref in result.invalid],
        result.parsed_whole,
        result.invalid_errors,
    ]


def decode_result(raw: list[Any]) -> FileResult:
    manifests, errors, invalid, whole = raw[:4]
    invalid_errors = raw[4] if len(raw) > 4 else []  # older entries: all the file's errors
    return FileResult(
        [Manifest(k, n, Location("", line, col), doc) for k, n, line, col, doc in manifests],
        [ManifestError(Location("", line, col), f, msg) for line, col, f, msg in errors],
        [ResourceKey(k, n) for k, n in invalid],
        bool(whole),
        [[int(i) for i in ix] for ix in invalid_errors],
    )


class BlobCache:
    """blob id -> FileResult, in memory and optionally on disk."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self._entries: dict[str, FileResult] = {}
        self._loaded = folder is None
        self._dirty = 0

    def _load(self) -> None:
        self._loaded = True
        if self.folder is None:
            return
        path = self.folder / CACHE_FILE
        try:
            raw = msgspec.msgpack.decode(path.read_bytes())
            self._entries = {blob: decode_result(entry) for blob, entry in raw.items()}
        except (OSError, msgspec.DecodeError, ValueError, TypeError):
            self._entries = {}  # a missing or damaged cache only costs a re-parse

    def get(self, blob: str) -> FileResult | None:
        if not self._loaded:
            self._load()
        return self._entries.get(blob)

    def put(self, blob: str, result: FileResult) -> None:
        if not self._loaded:
            self._load()
        self._entries[blob] = result
        self._dirty += 1

    def flush(self, keep: Iterable[str]) -> None:
        """Persist new entries (dropping those not in `keep`) once there are enough.

        Rewriting the whole file for every commit would cost a long-running
        supervisor more than re-parsing the few files a later process misses,
        so a handful of new entries waits for more (at most FLUSH_BATCH files,
        a few milliseconds of parsing, are ever left unpersisted).
        """
        if self.folder is None or self._dirty < min(FLUSH_BATCH, len(self._entries)):
            return
        wanted = set(keep)
        payload = {b: encode_result(r) for b, r in self._entries.items() if b in wanted}
        try:
            # Not fsynced: a cache lost to a power cut only costs a re-parse.
            atomic_write_bytes(
                self.folder / CACHE_FILE, msgspec.msgpack.encode(payload), durable=False
            )
        except OSError:
            return  # the cache is an optimisation; a read-only root must not fail a plan
        self._dirty = 0

    def __len__(self) -> int:
        return len(self._entries)
