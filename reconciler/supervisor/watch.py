"""What wakes the supervisor: git refs, world documents, queue outcomes, observer status.

`Wakeup` runs a `FileWatch` (inotify, no polling: an idle homelab wakes
nothing) in a thread over the repository's git folders (only the folders
themselves for `HEAD` and `packed-refs`, and `refs/heads/` below them),
`ROOT/world/`, `ROOT/queue/` (of which the folders whose arrivals need a
re-plan count: `done`, `failed`, `superseded`, `rejected`) and `ROOT/state/` without its
subfolders, of which only the two files the plan depends on
(`observer_status.json`, `supervisor_flap.json`) count: the services'
heartbeats under `state/services/` and the supervisor's own status file
wake nothing. Bursts are grouped by `step`/`debounce` and by the wake event
itself: many changes during one pass cause one more pass, not many. If a
watched folder is removed, or the watch fails, it starts again after a
pause; the periodic resync covers the gap. Called by
`reconciler.supervisor.service`.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from pathlib import Path

from reconciler.errors import GitError
from reconciler.file_watch import Change, FileWatch
from reconciler.runtime_root import RuntimeRoot

log = logging.getLogger("reconciler.supervisor")
REPLAN_QUEUE_STATES = ("done", "failed", "superseded", "rejected")
STATE_FILES = ("observer_status.json", "supervisor_flap.json", "supervisor_repropose.json")


def git_dirs(repo: Path) -> list[Path]:
    """The repository's git folder and common folder (they differ in worktrees)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "--absolute-git-dir", "--git-common-dir"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError) as exc:
        raise GitError(f"{repo} is not a git repository") from exc
    git_dir = Path(out[0])
    common = Path(out[1]) if out[1] else git_dir
    if not common.is_absolute():
        common = (repo / common).resolve()
    return list(dict.fromkeys([git_dir.resolve(), common.resolve()]))


class Wakeup:
    """Sets `wake` when something the plan depends on changes on disk."""

    def __init__(
        self,
        repo: Path,
        root: RuntimeRoot,
        wake: threading.Event,
        *,
        step_ms: int = 20,
        debounce_ms: int = 300,
        hold_ms: int = 1000,
    ) -> None:
        self.git = git_dirs(repo)
        self.root = root
        self.wake = wake
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self.hold_ms = hold_ms
        self._queue = {str(root.queue_dir(s)) for s in REPLAN_QUEUE_STATES}
        self._state = {str(root.state / name) for name in STATE_FILES}
        self._world = str(root.world)
        self._folders: set[Path] = set()
        self._lock = threading.Lock()
        self._watch: FileWatch | None = None

    def relevant(self, change: Change, path: str) -> bool:
        """Filter for the watch: only changes a plan depends on."""
        p = Path(path)
        if change == "deleted" and p in self._folders:
            return True  # a watched folder went away: the watch starts again
        for git_dir in self.git:
            if p.is_relative_to(git_dir):
                rel = p.relative_to(git_dir).parts
                if not rel or rel[-1].endswith(".lock"):
                    return False
                return rel[0] in ("HEAD", "packed-refs") or rel[:2] == ("refs", "heads")
        if path.startswith(self._world):
            return not p.name.startswith(".")
        if str(p.parent) in self._queue:
            return p.name.endswith(".json") and not p.name.startswith(".")
        return path in self._state

    def _world_only(self, changes: set[tuple[Change, str]]) -> bool:
        return all(path.startswith(self._world) for _, path in changes)

    def _rest_of_tick(self, watch: FileWatch) -> set[tuple[Change, str]]:
        """World documents come in observer ticks, each followed by the observer's
        status: gather until that status (or `hold_ms`), so a pass sees a whole
        tick (500 documents written over a second on a busy machine are one pass,
        not two)."""
        more: set[tuple[Change, str]] = set()
        deadline = time.monotonic() + self.hold_ms / 1000
        while not watch.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            found = watch.changes(left, step=self.step_ms / 1000, debounce=self.debounce_ms / 1000)
            more |= found
            if not found or any(path in self._state for _, path in found):
                break
        return more

    def folders(self) -> list[tuple[Path, bool]]:
        """(folder, recursive) for every watch."""
        found: list[tuple[Path, bool]] = []
        for git_dir in self.git:
            found.append((git_dir, False))
            if (git_dir / "refs" / "heads").is_dir():
                found.append((git_dir / "refs" / "heads", True))
        found.append((self.root.world, True))
        # queue/ whole: the folders whose arrivals count are filtered by `relevant`.
        found.append((self.root.queue, True))
        found.append((self.root.state, False))
        return found

    def run(self, stop: threading.Event) -> None:
        """Watch until `stop`; start the watch again after a failure or a folder removed."""
        threading.Thread(target=self._close_on, args=(stop,), daemon=True).start()
        while not stop.is_set():
            try:
                folders = self.folders()
                self._folders = {folder for folder, _ in folders}
                with self._lock:
                    if stop.is_set():
                        return
                    self._watch = FileWatch(folders, relevant=self.relevant).start()
                watch = self._watch
                while not watch.closed:
                    changes = watch.changes(
                        step=self.step_ms / 1000, debounce=self.debounce_ms / 1000
                    )
                    if changes and self._world_only(changes):
                        changes |= self._rest_of_tick(watch)
                    if changes:
                        self.wake.set()
                    if any(c == "deleted" and Path(p) in self._folders for c, p in changes):
                        raise FileNotFoundError("a watched folder was removed")
            except Exception as exc:  # the watch must never take the service down
                log.warning("file watch failed (%s); retrying in 5s", exc)
                stop.wait(5.0)
            finally:
                with self._lock:
                    if self._watch is not None:
                        self._watch.close()
                    self._watch = None

    def _close_on(self, stop: threading.Event) -> None:
        stop.wait()
        with self._lock:
            if self._watch is not None:
                self._watch.close()

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="supervisor-watch")
        thread.daemon = True
        thread.start()
        return thread
