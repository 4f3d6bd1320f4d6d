"""The adoption registry: containers taken over without a restart.

Docker cannot change the labels of an existing container, so a container
adopted as it runs (its config already matches the manifest) carries none
of the managed labels. The executor records it here instead, one file per
resource: `ROOT/state/adopted/Container/<name>.json` holding
`{"containerId", "node", "spec", "action"}` where `spec` is the comparable
spec it was adopted at (the *last applied* spec, which the labels hold for
containers the driver created). The Docker collector treats a container
whose id is recorded here as managed. A later replace or delete removes the
record. Names are DNS labels (checked by the manifest loader), and the path
is checked to stay in its folder anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.runtime_root import RuntimeRoot

KIND_DIRS = ("Container", "ComposeStack", "Network", "Volume")


def _folder(root: RuntimeRoot, kind: str) -> Path:
    if kind not in KIND_DIRS:
        raise ValueError(f"no adoption registry for kind {kind!r}")
    return root.state / "adopted" / kind


def _path(root: RuntimeRoot, kind: str, name: str) -> Path:
    if not name or "/" in name or name in (".", "..") or "\x00" in name:
        raise ValueError(f"{name!r} is not a resource name")
    return _folder(root, kind) / f"{name}.json"


def write_adopted(root: RuntimeRoot, kind: str, name: str, record: dict[str, Any]) -> None:
    """Record `name` as adopted (atomic: the file is whole or absent)."""
    path = _path(root, kind, name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_json(path, record)


def remove_adopted(root: RuntimeRoot, kind: str, name: str) -> None:
    _path(root, kind, name).unlink(missing_ok=True)


def read_adopted(root: RuntimeRoot, kind: str) -> dict[str, dict[str, Any]]:
    """Every readable record of `kind` by resource name (unreadable files are skipped)."""
    folder = _folder(root, kind)
    out: dict[str, dict[str, Any]] = {}
    if not folder.is_dir():
        return out
    for path in sorted(folder.glob("*.json")):
        try:
            record = read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            out[path.stem] = record
    return out
