"""What wakes the supervisor: git refs, world documents, queue outcomes, observer status.

`Wakeup` runs `watchfiles` (inotify, no polling) in a thread over the
repository's git folder (only `refs/heads/...`, `packed-refs` and `HEAD`
matter), `ROOT/world/`, the queue folders whose arrivals need a re-plan
(`done`, `failed`, `superseded`, `rejected`) and the two state files the
plan depends on (`observer_status.json`, `supervisor_flap.json`). Bursts are
grouped by watchfiles' `step`/`debounce` and by the wake event itself: many
changes during one pass cause one more pass, not many. If the watch dies
(a folder removed), it restarts after a pause; the periodic resync covers
the gap. Called by `reconciler.supervisor.service`.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from pathlib import Path

import watchfiles

from reconciler.errors import GitError
from reconciler.runtime_root import RuntimeRoot

log = logging.getLogger("reconciler.supervisor")
REPLAN_QUEUE_STATES = ("done", "failed", "superseded", "rejected")
STATE_FILES = ("observer_status.json", "supervisor_flap.json")


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
    ) -> None:
        self.git = git_dirs(repo)
        self.root = root
        self.wake = wake
        self.step_ms = step_ms
        self.debounce_ms = debounce_ms
        self._queue = {str(root.queue_dir(s)) for s in REPLAN_QUEUE_STATES}
        self._state = {str(root.state / name) for name in STATE_FILES}
        self._world = str(root.world)

    def relevant(self, _change: watchfiles.Change, path: str) -> bool:
        """Filter for watchfiles: only changes a plan depends on."""
        p = Path(path)
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

    def paths(self) -> list[Path]:
        return [
            *self.git,
            self.root.world,
            *(self.root.queue_dir(s) for s in REPLAN_QUEUE_STATES),
            self.root.state,
        ]

    def run(self, stop: threading.Event) -> None:
        """Watch until `stop`; restart the watch after failures."""
        while not stop.is_set():
            try:
                for _changes in watchfiles.watch(
                    *self.paths(),
                    watch_filter=self.relevant,
                    debounce=self.debounce_ms,
                    step=self.step_ms,
                    stop_event=stop,
                    rust_timeout=0,
                    raise_interrupt=False,
                ):
                    self.wake.set()
            except Exception as exc:  # the watch must never take the service down
                log.warning("file watch failed (%s); retrying in 5s", exc)
                stop.wait(5.0)

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="supervisor-watch")
        thread.daemon = True
        thread.start()
        return thread
