"""The File collector: stat and sha256 of each managed path on this machine.

The paths come from the File world documents (the executor reports
`observed.resource` after writing a file, so the world knows them) and,
when the observer reads a repository, from the File manifests at its tip.
Each check yields the comparable shape of `reconciler.resources.normalize`
(`{node, path, mode, sha256}`); a file is hashed again only when its size,
mtime or inode changed, and an event is emitted only when the observation
differs from the world. Called periodically by the observer service.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import Any

from reconciler.observer.collectors import Emit
from reconciler.observer.collectors.node import DesiredFile
from reconciler.resources.key import ResourceKey


def observe_file(node: str, path: str) -> dict[str, Any] | None:
    """The comparable spec of the file at `path`, or None when it is not a regular file."""
    try:
        st = os.stat(path, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {
        "node": node,
        "path": path,
        "mode": f"0{stat.S_IMODE(st.st_mode) & 0o777:03o}",
        "sha256": "sha256:" + digest.hexdigest(),
    }


class FileCollector:
    """Checks known File paths on local nodes; remembers paths once seen."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self._paths: dict[str, tuple[str, str]] = {}  # name -> (node, path)
        self._stamps: dict[str, tuple[int, int, int]] = {}
        self._cache: dict[str, dict[str, Any] | None] = {}

    def learn(self, world: dict[ResourceKey, dict[str, Any]], desired: list[DesiredFile]) -> None:
        for (kind, name), doc in world.items():
            status = doc.get("status") or {}
            spec = status.get("observed")
            if kind == "File" and status.get("managed") and isinstance(spec, dict):
                self._paths[name] = (str(spec.get("node") or "local"), str(spec.get("path")))
        for item in desired:
            self._paths[item.name] = (item.node, item.path)

    def _observe(self, node: str, path: str) -> dict[str, Any] | None:
        try:
            st = os.stat(path, follow_symlinks=False)
            stamp = (st.st_size, st.st_mtime_ns, st.st_ino)
        except OSError:
            self._stamps.pop(path, None)
            return None
        if self._stamps.get(path) == stamp and path in self._cache:
            return self._cache[path]
        try:
            spec = observe_file(node, path)
        except OSError:
            spec = None
        self._stamps[path], self._cache[path] = stamp, spec
        return spec

    def check(self, world: dict[ResourceKey, dict[str, Any]], local_nodes: set[str]) -> int:
        """Emit what differs from the world; return the number of events emitted."""
        emitted = 0
        for name, (node, path) in sorted(self._paths.items()):
            if node not in local_nodes:
                continue
            status = (world.get(ResourceKey("File", name)) or {}).get("status") or {}
            spec = self._observe(node, path)
            if spec is None:
                if status.get("exists") or not status:
                    self.emit(
                        "observed.missing",
                        ResourceKey("File", name),
                        {"reason": f"{path} is absent"},
                    )
                    emitted += 1
            elif not status.get("exists") or status.get("observed") != spec:
                data = {"spec": spec, "health": "Healthy", "node": node, "managed": True}
                self.emit("observed.resource", ResourceKey("File", name), data)
                emitted += 1
        return emitted
