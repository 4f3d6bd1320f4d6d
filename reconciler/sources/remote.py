"""A repository followed by URL: the control plane's own mirror under `ROOT/git/`.

`--repo` accepts a URL (`https://`, `http://`, `ssh://`, `git://`, `file://`,
scp-style `git@host:path`) besides a local folder (`is_remote`). The mirror
is a bare repository `ROOT/git/<name>.git` (the name is made of the URL's
host and path, only `[A-Za-z0-9._-]`, plus a hash, so no URL leaves the
folder); its `HEAD` names the followed branch (`--branch`, else the remote's
HEAD, asked once with `git ls-remote --symref`), so every reader (`GitSource`,
the supervisor's watch of `refs/heads/`) treats it like a local repository
whose current branch is the last fetched commit. The operator's checkout is
never touched.

Credentials come only from `ROOT/secrets/` and never reach a command line:
HTTP(S) user and password or token from `git-username` / `git-password`
(through `GIT_ASKPASS`, a script under `ROOT/git/` that reads the files whose
paths it gets by environment), an SSH deploy key from `git-ssh-key` (through
`GIT_SSH_COMMAND` with `-i`, `IdentitiesOnly`, `BatchMode` and the pinned
`ROOT/git/known_hosts`, `StrictHostKeyChecking=yes`; `accept-new` only when
the operator asks for first-use pinning). A password inside the URL is
refused. Every git message that leaves this module goes through `redact`
(URL user info and the secret values replaced by `***`).

`Remote.fetch(timeout)` runs one `git fetch` (killed with its helpers after
`timeout`) under a lock file, so two processes never fetch at once, and
returns the old and new tip and whether the new one rewrote history.
Called by `reconciler.sources.follow` and the CLI's `--repo` handling.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from reconciler.errors import ConfigError, GitError
from reconciler.runtime_root import RuntimeRoot

SCHEMES = ("https://", "http://", "ssh://", "git://", "file://")
SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)")
USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]+@")
USERNAME_FILE = "git-username"
PASSWORD_FILE = "git-password"  # a password or an access token
SSH_KEY_FILE = "git-ssh-key"
DEFAULT_TIMEOUT = 60.0
SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
BOILERPLATE = ("Please make sure you have the correct access rights", "and the repository exists")
BRANCH_NAME = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,200}$")


def is_remote(spec: str) -> bool:
    """Whether `--repo` names a remote (a URL or scp-style `user@host:path`)."""
    return spec.startswith(SCHEMES) or bool(SCP_LIKE.match(spec))


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` without URL user info (`https://u:p@h` -> `https://***@h`) or any secret value."""
    text = USERINFO.sub(r"\1***@", text)
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def display_url(url: str) -> str:
    """The URL as shown to people: user info of a scheme URL stripped."""
    return USERINFO.sub(r"\1", url)


def check_url(url: str) -> str:
    """`url` when it carries no password; ConfigError (redacted) otherwise."""
    if url.startswith(SCHEMES):
        parts = urlsplit(url)
        if parts.password is not None:
            raise ConfigError(
                f"repository URL {redact(url)} contains a password: put it in "
                f"ROOT/secrets/{PASSWORD_FILE} (and the user in {USERNAME_FILE}) instead"
            )
        if not url.startswith("file://") and not parts.hostname:
            raise ConfigError(f"repository URL {redact(url)} has no host")
    if any(c in url for c in "\n\r\0"):
        raise ConfigError("repository URL contains a control character")
    return url


def mirror_name(url: str) -> str:
    """A file name for the mirror of `url`: readable, safe, unique per URL."""
    shown = display_url(url)
    if shown.startswith(SCHEMES):
        parts = urlsplit(shown)
        readable = f"{parts.hostname or ''}{parts.path}"
    else:
        readable = shown.split("@", 1)[-1].replace(":", "/", 1)
    readable = re.sub(r"\.git$", "", readable.strip("/"))
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", readable)
    readable = re.sub(r"\.{2,}", ".", readable).strip("-.")[:60] or "repo"
    digest = hashlib.sha256(url.encode()).hexdigest()[:10]
    return f"{readable}-{digest}.git"


def _read_secret(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc


@dataclass(frozen=True)
class FetchResult:
    branch: str
    old: str | None  # the tip before (None: first fetch)
    new: str
    forced: bool  # the new tip does not descend from the old one

    @property
    def changed(self) -> bool:
        return self.old != self.new


ASKPASS = """#!/bin/sh
# homelab: answers git's credential prompts from files under ROOT/secrets (paths by env).
case "$1" in
  Username*) exec cat "$HOMELAB_GIT_USERNAME_FILE" ;;
  *) exec cat "$HOMELAB_GIT_PASSWORD_FILE" ;;
esac
"""


class Remote:
    """One remote repository and its mirror under the runtime root."""

    def __init__(
        self,
        url: str,
        root: RuntimeRoot,
        branch: str | None = None,
        *,
        trust_new_host_key: bool = False,
    ) -> None:
        self.url = check_url(url)
        self.root = root
        if branch is not None and not BRANCH_NAME.match(branch):
            raise ConfigError(f"--branch {branch!r} is not a branch name")
        self.branch_flag = branch
        self.trust_new_host_key = trust_new_host_key
        self.folder = root.path / "git"
        self.mirror = self.folder / mirror_name(url)
        self.known_hosts = self.folder / "known_hosts"

    @property
    def shown_url(self) -> str:
        return display_url(self.url)

    # -- secrets and environment ----------------------------------------------
    def _secret_paths(self) -> dict[str, Path]:
        return {
            name: self.root.secrets / name for name in (USERNAME_FILE, PASSWORD_FILE, SSH_KEY_FILE)
        }

    def secret_values(self) -> tuple[str, ...]:
        """The secret values, only to redact them from messages."""
        found = []
        for name, path in self._secret_paths().items():
            if name == SSH_KEY_FILE:
                continue  # a key never appears in git's output; its path may
            value = _read_secret(path)
            if value:
                found.append(value)
        return tuple(found)

    def redact(self, text: str) -> str:
        return redact(text, self.secret_values())

    def env(self) -> dict[str, str]:
        """The environment of every git call: no prompt, our credentials, our known_hosts."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("GIT_", "SSH_ASKPASS", "SSH_AUTH_SOCK"))
        }
        env.update(
            GIT_TERMINAL_PROMPT="0",
            GIT_CONFIG_NOSYSTEM="1",
            GIT_CONFIG_GLOBAL=os.devnull,
            LC_ALL="C",
        )
        paths = self._secret_paths()
        if paths[PASSWORD_FILE].is_file():
            askpass = self.folder / "askpass.sh"
            if not askpass.is_file() or askpass.read_text() != ASKPASS:
                tmp = askpass.with_suffix(f".tmp{os.getpid()}")
                tmp.write_text(ASKPASS)
                tmp.chmod(0o700)
                tmp.replace(askpass)
            env["GIT_ASKPASS"] = str(askpass)
            env["HOMELAB_GIT_PASSWORD_FILE"] = str(paths[PASSWORD_FILE])
            user = paths[USERNAME_FILE]
            env["HOMELAB_GIT_USERNAME_FILE"] = str(user if user.is_file() else os.devnull)
        ssh = [
            "ssh",
            "-o",
            "BatchMode=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=" + ("accept-new" if self.trust_new_host_key else "yes"),
            "-o",
            "ConnectTimeout=15",
            "-F",
            "/dev/null",
        ]
        key = paths[SSH_KEY_FILE]
        if key.is_file():
            if key.stat().st_mode & 0o077:
                key.chmod(0o600)  # ssh refuses a key others can read
            ssh += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
        env["GIT_SSH_COMMAND"] = " ".join(shlex.quote(a) for a in ssh)
        return env

    # -- git ------------------------------------------------------------------
    def _git(self, *args: str, timeout: float = DEFAULT_TIMEOUT, what: str = "") -> str:
        """Run git against the mirror; GitError with the redacted message on failure."""
        cmd = ["git", "-c", "credential.helper=", "-c", "protocol.file.allow=always"]
        cmd += ["--git-dir", str(self.mirror), *args]
        try:
            proc = subprocess.Popen(
                cmd,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # a timeout kills git and its ssh/curl helpers together
            )
        except FileNotFoundError as exc:
            raise GitError("git is not installed (apt-get install git)") from exc
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise GitError(
                f"{what or 'git ' + args[0]} from {self.shown_url} timed out after {timeout:g}s"
            ) from None
        if proc.returncode != 0:
            lines = [ln.strip() for ln in err.decode(errors="replace").splitlines()]
            lines = [ln for ln in lines if ln and not ln.startswith(BOILERPLATE)]
            msg = self.redact(" ".join(lines[-4:]) or f"exit {proc.returncode}")
            raise GitError(f"{what or 'git ' + args[0]} from {self.shown_url} failed: {msg}")
        return out.decode(errors="replace")

    def _init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if (self.mirror / "HEAD").is_file():
            return
        tmp = self.mirror.with_name(self.mirror.name + ".init")
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(
            ["git", "init", "-q", "--bare", str(tmp)], check=True, capture_output=True, timeout=30
        )
        tmp.rename(self.mirror)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.mirror.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read_ref(self, branch: str) -> str | None:
        """The commit `refs/heads/<branch>` names, read from the ref files (no git process)."""
        loose = self.mirror / "refs" / "heads" / branch
        try:
            value = loose.read_text().strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            value = ""
        if SHA.fullmatch(value):
            return value
        try:
            packed = (self.mirror / "packed-refs").read_text()
        except FileNotFoundError:
            return None
        wanted = f"refs/heads/{branch}"
        for line in packed.splitlines():
            sha, _, name = line.partition(" ")
            if name == wanted and SHA.fullmatch(sha):
                return sha
        return None

    def branch(self) -> str | None:
        """The followed branch: the flag, else what the mirror's HEAD names once known."""
        if self.branch_flag:
            return self.branch_flag
        if not (self.mirror / "HEAD").is_file():
            return None
        head = (self.mirror / "HEAD").read_text().strip()
        if head.startswith("ref: refs/heads/") and (self.mirror / "homelab-branch").is_file():
            return head.removeprefix("ref: refs/heads/")
        return None

    def tip(self) -> str | None:
        """The last fetched commit (None before the first successful fetch)."""
        branch = self.branch()
        return self._read_ref(branch) if branch else None

    def _remote_head(self, timeout: float) -> str:
        out = self._git(
            "ls-remote", "--symref", self.url, "HEAD", timeout=timeout, what="ls-remote"
        )
        for line in out.splitlines():
            if line.startswith("ref: refs/heads/") and line.endswith("\tHEAD"):
                return line.removeprefix("ref: refs/heads/").removesuffix("\tHEAD")
        raise GitError(f"{self.shown_url} has no HEAD branch (give --branch)")

    def fetch(self, timeout: float = DEFAULT_TIMEOUT) -> FetchResult:
        """Fetch the branch into the mirror; GitError (redacted) when it fails."""
        with self._locked():
            self._init()
            branch = self.branch() or self._remote_head(timeout)
            if not BRANCH_NAME.match(branch):
                raise GitError(f"{self.shown_url} names an unusable HEAD branch {branch!r}")
            old = self._read_ref(branch)
            refspec = f"+refs/heads/{branch}:refs/heads/{branch}"
            self._git(
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--no-auto-maintenance",  # `maintain()` runs it, off the push's path
                "--no-show-forced-updates",  # `_descends` answers that
                "--no-recurse-submodules",
                self.url,
                refspec,
                timeout=timeout,
                what="fetch",
            )
            new = self._read_ref(branch)
            if new is None:
                raise GitError(f"fetch from {self.shown_url} left no branch {branch!r}")
            head = f"ref: refs/heads/{branch}\n"
            if (self.mirror / "HEAD").read_text() != head:
                (self.mirror / "HEAD").write_text(head)
            (self.mirror / "homelab-branch").touch()
            forced = old is not None and old != new and not self._descends(old, new)
            return FetchResult(branch, old, new, forced)

    def maintain(self, timeout: float = 600.0) -> None:
        """`git maintenance run --auto` on the mirror (packs loose objects when many)."""
        with self._locked():
            self._git(
                "maintenance", "run", "--auto", "--quiet", timeout=timeout, what="maintenance"
            )

    def _descends(self, old: str, new: str) -> bool:
        cmd = ["git", "--git-dir", str(self.mirror), "merge-base", "--is-ancestor", old, new]
        return subprocess.run(cmd, capture_output=True, check=False, timeout=60).returncode == 0
