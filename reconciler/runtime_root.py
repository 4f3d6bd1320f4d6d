"""Where things live: the runtime root's layout and how flags pick it.

`RuntimeRoot` names every folder of the runtime tree (events, world, state,
queue, logs, cache, secrets, stacks) so no other module builds those paths by
hand. `resolve_root` and `resolve_repo` implement the CLI conventions
(`--root` > `$HOMELAB_ROOT` > `/opt/homelab` when writable > a per-user
state folder). The tree is private to the services' user: folders 0700,
files 0600 (`ensure` creates and tightens the folders, `atomic_files` and
the event log create files so, and the CLI runs under umask 077). It holds
operator names and client addresses, specs, the operator token and
secrets; a reverse proxy needs none of it (it only talks HTTP to the UI),
and an operator reads it through the CLI as that user or through the UI.
Called by the CLI and every service.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from reconciler.errors import ConfigError

DEFAULT_ROOT = Path("/opt/homelab")
QUEUE_STATES = ("pending", "approved", "running", "done", "failed", "rejected", "superseded")


def user_state_dir() -> Path:
    """The per-user state folder used when /opt/homelab is not writable."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "homelab"


@dataclass(frozen=True)
class RuntimeRoot:
    """The runtime tree: the only place the services write."""

    path: Path

    @property
    def events(self) -> Path:
        return self.path / "events"

    @property
    def world(self) -> Path:
        return self.path / "world"

    @property
    def world_build(self) -> Path:
        """Where a rebuild writes a new world before swapping it in (`observer.fresh_world`)."""
        return self.path / ".world-build"

    @property
    def state(self) -> Path:
        return self.path / "state"

    @property
    def queue(self) -> Path:
        return self.path / "queue"

    @property
    def logs(self) -> Path:
        return self.path / "logs"

    @property
    def cache(self) -> Path:
        return self.path / "cache"

    @property
    def secrets(self) -> Path:
        return self.path / "secrets"

    @property
    def stacks(self) -> Path:
        return self.path / "stacks"

    @property
    def checkpoint(self) -> Path:
        return self.state / "observer_checkpoint.json"

    def queue_dir(self, state: str) -> Path:
        if state not in QUEUE_STATES:
            raise ConfigError(f"unknown queue state {state!r}; expected one of {QUEUE_STATES}")
        return self.queue / state

    def instance_id(self) -> str:
        """This runtime root's id, created on first use (`state/instance_id`).

        Containers carry it as a label, so two control planes sharing one
        Docker engine (a test `homelab up` beside the real stack) never see,
        or propose to prune, each other's containers.
        """
        path = self.state / "instance_id"
        try:
            existing = path.read_text().strip()
        except FileNotFoundError:
            existing = ""
        if existing:
            return existing
        self.state.mkdir(parents=True, exist_ok=True)
        candidate = secrets.token_hex(8)
        try:
            # O_EXCL: when two services start at once, the first one's id wins.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return self.instance_id()
        with os.fdopen(fd, "w") as fh:
            fh.write(candidate + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return candidate

    def ensure(self) -> RuntimeRoot:
        """Create the runtime tree's folders 0700, tightening older ones (idempotent)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tops = (self.events, self.world, self.state, self.logs, self.cache, self.secrets)
        folders = [self.path, *tops, self.queue, *(self.queue / s for s in QUEUE_STATES)]
        for folder in folders:
            folder.mkdir(exist_ok=True, mode=PRIVATE_DIR)
            _tighten(folder)
        return self


PRIVATE_DIR = 0o700


def _tighten(folder: Path) -> None:
    """Drop group and other access from a folder of ours (one made before 0700 was the rule)."""
    st = folder.stat()
    if st.st_uid == os.geteuid() and st.st_mode & 0o077:
        os.chmod(folder, st.st_mode & 0o700)


def _writable(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


def resolve_root(flag: str | None) -> RuntimeRoot:
    """Pick the runtime root: flag, then $HOMELAB_ROOT, then /opt/homelab, then per-user."""
    chosen = flag or os.environ.get("HOMELAB_ROOT")
    if chosen:
        path = Path(chosen).expanduser()
        if path.exists() and not path.is_dir():
            raise ConfigError(f"runtime root {path} exists and is not a folder")
        return RuntimeRoot(path.absolute())
    if _writable(DEFAULT_ROOT):
        return RuntimeRoot(DEFAULT_ROOT)
    return RuntimeRoot(user_state_dir())


def resolve_repo(flag: str | None) -> Path:
    """Pick the git repository: flag, then $HOMELAB_REPO, then the current folder."""
    chosen = flag or os.environ.get("HOMELAB_REPO") or os.getcwd()
    path = Path(chosen).expanduser().absolute()
    if not path.is_dir():
        raise ConfigError(f"repository {path} is not a folder (give --repo PATH or $HOMELAB_REPO)")
    return path
