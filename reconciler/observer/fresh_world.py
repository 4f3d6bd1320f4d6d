"""An empty world rebuilt in a folder of its own, its files created while the fold runs.

A rebuild over an empty world (first start, or the world folder deleted)
must create one file per resource, and on this project's disks creating a
file costs 0.1-2 ms of kernel time: 25,000 of them took 6-8 s, as long as
the whole fold. `FreshWorld` takes that off the folding path: it starts a
helper process (`python -m reconciler.observer.fresh_world ROOT FOLDER`)
that reads the log itself, decodes only each event's `ref`, and creates an
empty file for every resource it names in `ROOT/.world-build/<kind>/`,
on the other core, while the folding process decodes and folds. Once the
fold is done the helper is stopped (what it did not create yet, the writer
creates), every document is written into its file in the build folder
(`WorldWriter.write_into`: plain writes, no twin, no rename, nothing fsynced
per file), files the fold made no document for are removed, and the build
folder is swapped with `world/` in one `renameat2(RENAME_EXCHANGE)`.

Crash safety: the rebuild deleted the checkpoint (durably) before it
started, and writes a new one only after the swap; the swap exchanges two
folder names atomically. So at every point a crash (kill -9, or a power
loss) leaves `world/` holding either the old world (before the swap) or the
complete new one (after it), never a mix, and `.world-build/` holding
garbage (the partial new world, or the old one after the swap), which
`remove_leftover` deletes when the observer next opens the root; with no
checkpoint it rebuilds. The durability of the new documents is the folding
shell's one `syncfs` before it marks the checkpoint synced, as for any
batch of writes. The helper runs only when a core is spare and the rebuild
folds on one (the shell decides, `WorldBuilder._use_helpers`); a rebuild
that folds on two has its second folding process create the files of the
resources it folded once it handed its fold over
(`reconciler.observer.replay_split.create_files`), stopped here as well;
without either the writer creates every file itself, still without twin or
rename. Used only when the world on disk holds no document (a
rebuild over an existing world compares and rewrites in place, which writes
nothing when the world is right). A filesystem that cannot exchange names
gets the old (empty) world removed and the new one renamed into place.
Readers of `world/` see its documents appear all at once. Watches on the
old `world/` folder end with it: the supervisor's watch restarts on its own;
the observer starts its watch after `open`, except when it reopens the root
after a full disk, where an empty world rebuilt so is not watched for
documents deleted by hand until the observer restarts (open work: swap
per kind folder, or re-add the watch).
Called by the folding shell (`reconciler.observer.world_builder`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec

from reconciler.atomic_files import exchange_names, fsync_dir
from reconciler.events.reader import ZST, LogEvent, LogRef, list_log, read_log_bytes
from reconciler.observer.fold import ref_problem
from reconciler.resources.kinds import KINDS
from reconciler.runtime_root import PRIVATE_DIR, RuntimeRoot

FILE_MODE = 0o600


class _RefOnly(msgspec.Struct, gc=False):
    """An event line with everything but its ref skipped (decoded without building it)."""

    ref: LogRef | None = None


_REFS = msgspec.json.Decoder(_RefOnly)


def world_is_empty(root: RuntimeRoot) -> bool:
    """Whether `world/` holds no world document (hidden twins and temp files do not count)."""
    try:
        entries = list(os.scandir(root.world))
    except FileNotFoundError:
        return True
    if any(not e.is_dir(follow_symlinks=False) and not e.name.startswith(".") for e in entries):
        return False  # something that is no kind folder: not ours to swap away unseen
    kinds = [e for e in entries if e.is_dir(follow_symlinks=False)]
    for kind in kinds:
        for entry in os.scandir(kind.path):
            if entry.name.endswith(".json") and not entry.name.startswith("."):
                return False
    return True


def remove_leftover(root: RuntimeRoot) -> bool:
    """Delete a build folder left by an interrupted rebuild; True if there was one.

    Before the swap it holds a partial new world, after it the old one:
    garbage either way, since `world/` is complete in both cases.
    """
    folder = root.world_build
    if not folder.exists():
        return False
    shutil.rmtree(folder)
    return True


class FreshWorld:
    """One rebuild's build folder and the helper process creating its files."""

    def __init__(self, root: RuntimeRoot, *, durable: bool = True) -> None:
        self.root = root
        self.folder = root.world_build
        self.durable = durable
        self._helper: subprocess.Popen[bytes] | None = None
        self._also: list[Callable[[], None]] = []

    def stop_with_helper(self, stop: Callable[[], None]) -> None:
        """Another process creating files here (the rebuild's second folding process, once
        it handed its fold over): `stop` ends it where this helper is stopped."""
        self._also.append(stop)

    def start(self, *, helper: bool = True) -> None:
        """Make the empty build folder; `helper`: start creating the files the log names."""
        remove_leftover(self.root)
        self.folder.mkdir(mode=PRIVATE_DIR)
        for kind in KINDS:
            (self.folder / kind).mkdir(mode=PRIVATE_DIR)
        if not helper:
            return
        self._helper = subprocess.Popen(
            [sys.executable, "-m", __name__, str(self.root.path), str(self.folder)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
        )

    def stop(self) -> None:
        """Stop the helper (what it did not create yet, the writer creates)."""
        also, self._also = self._also, []
        for stop in also:
            stop()
        helper, self._helper = self._helper, None
        if helper is not None:
            if helper.poll() is None:
                helper.kill()
            helper.wait()

    def prune(self, keep: dict[str, set[str]]) -> None:
        """Remove created files that got no document (`keep`: kind -> file names)."""
        for kind in KINDS:
            wanted = keep.get(kind, set())
            folder = self.folder / kind
            for entry in os.scandir(folder):
                if entry.name not in wanted:
                    os.unlink(entry.path)

    def install(self) -> None:
        """Swap the build folder in as `world/` (atomically), then delete the old world."""
        self.stop()
        parent, world, build = self.root.path, self.root.world.name, self.folder.name
        if not self.root.world.exists():
            self.root.world.mkdir(mode=PRIVATE_DIR)
        err = exchange_names(parent, build, world)
        if err:
            if err not in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise OSError(err, os.strerror(err), str(self.root.world))
            # No exchange here: the old world holds no document (see `world_is_empty`).
            shutil.rmtree(self.root.world)
            os.rename(self.folder, self.root.world)
        if self.durable:
            fsync_dir(parent)
        remove_leftover(self.root)  # the old world, now under the build folder's name


def _create(root: RuntimeRoot, folder: Path) -> None:
    """Helper process: an empty file in `folder/<kind>/` for every resource the log names."""
    names: set[str] = set()
    seen: set[LogRef] = set()
    dirfds = {kind: os.open(folder / kind, os.O_RDONLY | os.O_DIRECTORY) for kind in KINDS}
    for files in list_log(root).values():
        for f in files:
            path = root.events / (f.key + (ZST if f.compressed else ""))
            try:
                data = read_log_bytes(path)
            except (OSError, ValueError):
                continue  # compacted or removed meanwhile: the writer creates what is missing
            for ref in _refs(data):
                if ref is None or ref in seen:
                    continue
                seen.add(ref)
                probe = LogEvent(id="", ts="", source="", type="", ref=ref)
                if ref_problem(probe, names) is not None:
                    continue
                with contextlib.suppress(FileExistsError):
                    fd = os.open(
                        f"{ref.name}.json",
                        os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                        FILE_MODE,
                        dir_fd=dirfds[ref.kind],
                    )
                    os.close(fd)


def _refs(data: bytes) -> list[LogRef | None]:
    end = data.rfind(b"\n")
    if end < 0:
        return []
    buf = data[: end + 1]
    try:
        return [r.ref for r in _REFS.decode_lines(buf)]
    except (msgspec.DecodeError, msgspec.ValidationError):
        refs: list[LogRef | None] = []
        for line in buf.split(b"\n"):
            with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
                if line.strip():
                    refs.append(_REFS.decode(line).ref)
        return refs


if __name__ == "__main__":
    _create(RuntimeRoot(Path(sys.argv[1])), Path(sys.argv[2]))
