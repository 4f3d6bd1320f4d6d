"""The File collector: what each managed path on this machine holds, in full.

The paths come from the File world documents (the executor reports
`observed.resource` after writing a file, so the world knows them) and,
when the observer reads a repository, from the File manifests at its tip
(`DesiredFile`, which also says which of owner/group the manifest manages
and whether the file's text may be shown). Each check yields the comparable
shape of `reconciler.resources.normalize` (`{node, path, mode, sha256}`,
plus `owner`/`group` only when the manifest sets them, written in the
manifest's notation: see `reconciler.drivers.accounts.notation`) and the
runtime facts of `reconciler.resources.file_runtime` (`size`, and the text
of a small UTF-8 file that is not secret-backed; a file known only from the
world is treated like a secret). The content is read again only when its
size, mtime or inode changed; mode and ownership come from a fresh `lstat`
every time (a chmod or chown changes neither). An event is emitted only when
the observation (spec or runtime) differs from the world. Called
periodically by the observer service.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from typing import Any

from reconciler.drivers.accounts import notation
from reconciler.observer.collectors import Emit
from reconciler.observer.collectors.node import DesiredFile
from reconciler.resources.file_runtime import TEXT_LIMIT, file_runtime
from reconciler.resources.key import ResourceKey


@dataclass(frozen=True)
class Reading:
    """What the bytes of one version of a file give (cached by size, mtime, inode)."""

    stamp: tuple[int, int, int]
    sha256: str
    runtime: dict[str, Any]


def _read(path: str, show_content: bool) -> Reading | None:
    """Hash the file (and keep its text when it may be shown); None if not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            return None
        stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        if show_content and st.st_size <= TEXT_LIMIT:
            data = fh.read(TEXT_LIMIT + 1)
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            return Reading(stamp, digest, file_runtime(data, show_content=True))
        hasher, size = hashlib.sha256(), 0
        for block in iter(lambda: fh.read(1 << 20), b""):
            hasher.update(block)
            size += len(block)
    return Reading(stamp, "sha256:" + hasher.hexdigest(), {"size": size})


def observe_file(
    item: DesiredFile, content: Reading | None = None
) -> tuple[dict[str, Any], Reading] | None:
    """(comparable spec, reading) of the file, or None when it is not a regular file.

    `content` is an earlier reading, reused while the file's stamp is the same;
    the reading's `runtime` holds the facts beside the spec.
    """
    try:
        st = os.stat(item.path, follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    if content is None or content.stamp != (st.st_size, st.st_mtime_ns, st.st_ino):
        content = _read(item.path, item.show_content)
        if content is None:
            return None
    spec: dict[str, Any] = {
        "node": item.node,
        "path": item.path,
        "mode": f"0{stat.S_IMODE(st.st_mode) & 0o777:03o}",
        "sha256": content.sha256,
    }
    if item.owner is not None:
        spec["owner"] = notation("owner", st.st_uid, item.owner)
    if item.group is not None:
        spec["group"] = notation("group", st.st_gid, item.group)
    return spec, content


class FileCollector:
    """Checks known File paths on local nodes; remembers paths once seen."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self._files: dict[str, DesiredFile] = {}
        self._cache: dict[tuple[str, bool], Reading] = {}  # (path, show_content) -> reading

    def learn(self, world: dict[ResourceKey, dict[str, Any]], desired: list[DesiredFile]) -> None:
        for (kind, name), doc in world.items():
            status = doc.get("status") or {}
            spec = status.get("observed")
            if kind == "File" and status.get("managed") and isinstance(spec, dict):
                # Known from the world only: keep the ownership it shows, never the text.
                self._files[name] = DesiredFile(
                    name,
                    str(spec.get("node") or "local"),
                    str(spec.get("path")),
                    _text(spec.get("owner")),
                    _text(spec.get("group")),
                    show_content=False,
                )
        for item in desired:
            self._files[item.name] = item

    def paths(self) -> list[tuple[str, str]]:
        """(node, path) of every file it checks."""
        return [(item.node, item.path) for item in self._files.values()]

    def _observe(self, item: DesiredFile) -> tuple[dict[str, Any], dict[str, Any]] | None:
        key = (item.path, item.show_content)
        try:
            found = observe_file(item, self._cache.get(key))
        except OSError:
            found = None
        if found is None:
            self._cache.pop(key, None)
            return None
        spec, self._cache[key] = found
        return spec, found[1].runtime

    def check(self, world: dict[ResourceKey, dict[str, Any]], local_nodes: set[str]) -> int:
        """Emit what differs from the world; return the number of events emitted."""
        emitted = 0
        for name, item in sorted(self._files.items()):
            if item.node not in local_nodes:
                continue
            status = (world.get(ResourceKey("File", name)) or {}).get("status") or {}
            found = self._observe(item)
            if found is None:
                if status.get("exists") or not status:
                    self.emit(
                        "observed.missing",
                        ResourceKey("File", name),
                        {"reason": f"{item.path} is absent"},
                    )
                    emitted += 1
                continue
            spec, runtime = found
            if (
                not status.get("exists")
                or status.get("observed") != spec
                or status.get("runtime") != runtime
            ):
                data = {
                    "spec": spec,
                    "runtime": runtime,
                    "health": "Healthy",
                    "node": item.node,
                    "managed": True,
                }
                self.emit("observed.resource", ResourceKey("File", name), data)
                emitted += 1
        return emitted


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
