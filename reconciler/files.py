"""Crash-safe file writes: the one helper every runtime-tree write goes through.

A write goes to a temporary file in the same folder, is fsynced, renamed over
the target and the folder is fsynced, so a reader (or a process restarted
after kill -9) sees either the old or the new content, never a torn file.
Called by the observer (world documents, checkpoint), the queue, the file
driver and the CLI.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import orjson


def fsync_dir(folder: Path) -> None:
    """Make a rename or create inside `folder` durable."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `data` atomically (temp file, fsync, rename, fsync dir)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def replace_many(items: list[tuple[Path, bytes]], *, mode: int = 0o644) -> None:
    """Replace many files atomically, each by a rename, without fsyncing them.

    For a single writer that owns the folders (the observer holds its lock):
    temp names are fixed (`.<name>.tmp`) and the caller makes the whole batch
    durable at once (syncfs, then the folders), which costs far less than one
    fsync per file. Readers still see old or new content, never a torn file.
    """
    for path, data in items:
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)


def atomic_write_json(path: Path, doc: Any, *, mode: int = 0o644, durable: bool = True) -> None:
    """Write `doc` as indented, key-sorted JSON through `atomic_write_bytes`."""
    data = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
    atomic_write_bytes(path, data + b"\n", mode=mode, durable=durable)


def try_lock(path: Path) -> IO[bytes] | None:
    """Open `path` (creating it) and take an exclusive flock without waiting.

    Returns the open file, which holds the lock until closed (also by the
    kernel when the process dies), or None when another process holds it.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(path, "ab")  # noqa: SIM115 - the caller keeps it open while it holds the lock
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    return fh


def read_json(path: Path) -> Any:
    """Read a JSON document written by `atomic_write_json`."""
    return orjson.loads(path.read_bytes())
