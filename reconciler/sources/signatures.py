"""Signed commits: which commit may be planned when the source requires signatures.

`SignedCommitGate.decide(tip)` answers the one question the supervisor,
the executor and `homelab plan` ask before loading a commit: given the tip
of the tracked branch (of a local folder or of the follower's mirror), which
commit is in force, and if it is not the tip, why. Signatures are required
when the operator says so outside the repository (`--require-signed-commits`
on `homelab plan`, `HOMELAB_REQUIRE_SIGNED_COMMITS=1` for the services), when
`homelab.yaml` at the tip sets `requireSignedCommits: true`, or when it did at
the commit in force, so an unsigned commit can never turn the check off (a
signed one can).

A tip is verified with `git verify-commit` against keys kept under the
runtime root, never in the repository: SSH keys in `ROOT/signing/allowed_signers`
(`gpg.ssh.allowedSignersFile`, the `ssh-keygen -Y` format with namespace
`git`) and GPG keys in the keyring `ROOT/signing/gnupg/` (`GNUPGHOME`, so
the user's own keyring is never consulted). A tip that does not verify is
never planned: the last verified commit stays in force (recorded in
`ROOT/state/source/signed-commits.json` by the supervisor) and `held` says
why; when no commit was verified yet there is nothing to plan. An unsigned
commit in force while signatures were not required clears the record, so
requiring them again never rolls back to an older signed commit.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.atomic_files import atomic_write_json, read_json
from reconciler.resources.repo import REPO_CONFIG_FILE
from reconciler.runtime_root import RuntimeRoot
from reconciler.sources.manifests import parse_repo_config

ENV_REQUIRE = "HOMELAB_REQUIRE_SIGNED_COMMITS"
ALLOWED_SIGNERS = "allowed_signers"
GNUPG_HOME = "gnupg"
VERIFY_TIMEOUT_SECONDS = 30.0
_COMMIT = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
_SSH_SIGNER = re.compile(r'Good "git" signature for (.+?) with (\S+) key (\S+)')
_GPG_SIGNER = re.compile(r'Good signature from "([^"]+)"')


def signing_dir(root: RuntimeRoot) -> Path:
    return root.path / "signing"


def state_path(root: RuntimeRoot) -> Path:
    return root.state / "source" / "signed-commits.json"


def required_by_environment() -> bool:
    return os.environ.get(ENV_REQUIRE, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Verdict:
    """Whether a commit is signed by an allowed key; `signer` or `reason` says more."""

    ok: bool
    signer: str | None = None
    reason: str = ""


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def verify_commit(repo: Path, commit: str, root: RuntimeRoot) -> Verdict:
    """`git verify-commit` of `commit` against the keys under `ROOT/signing/`."""
    keys = signing_dir(root)
    allowed = keys / ALLOWED_SIGNERS
    gnupg = keys / GNUPG_HOME
    if not allowed.is_file() and not gnupg.is_dir():
        return Verdict(
            False,
            reason="no allowed signing keys: put SSH public keys in ROOT/signing/allowed_signers "
            "or a GPG keyring in ROOT/signing/gnupg/",
        )
    settings = ["-c", f"gpg.ssh.allowedSignersFile={allowed if allowed.is_file() else os.devnull}"]
    env = {**os.environ, "GNUPGHOME": str(gnupg), "LC_ALL": "C"}
    try:
        proc = subprocess.run(
            ["git", *settings, "-C", str(repo), "verify-commit", commit],
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            timeout=VERIFY_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Verdict(False, reason=f"git verify-commit could not run: {exc}")
    said = proc.stderr + proc.stdout
    if proc.returncode == 0:
        ssh = _SSH_SIGNER.search(said)
        if ssh:
            return Verdict(True, f"{ssh.group(1)} ({ssh.group(2)} {ssh.group(3)})")
        gpg = _GPG_SIGNER.search(said)
        return Verdict(True, gpg.group(1) if gpg else "an allowed key")
    if not said.strip():
        return Verdict(False, reason=f"commit {commit[:12]} is not signed")
    return Verdict(
        False, reason=f"commit {commit[:12]} is not signed by an allowed key ({_last_line(said)})"
    )


@dataclass(frozen=True)
class GateDecision:
    """The commit to plan (None: nothing may be planned) and why the tip is not it."""

    tip: str
    commit: str | None
    required: bool = False
    verified: bool = False  # the commit in force carries an allowed signature
    signer: str | None = None
    held: str | None = None  # why the tip is held back; None when the tip is in force

    def to_json(self) -> dict[str, Any]:
        return {
            "required": self.required,
            "tip": self.tip,
            "inForce": self.commit,
            "verified": self.verified,
            "signer": self.signer,
            "heldBack": self.held,
        }


class SignedCommitGate:
    """One per service and repository; verdicts are cached per commit and key files."""

    def __init__(self, root: RuntimeRoot, repo: Path, *, require: bool | None = None) -> None:
        self.root = root
        self.repo = repo
        self.require = required_by_environment() if require is None else require
        self._verdicts: dict[tuple[str, Any], Verdict] = {}
        self._configs: dict[str, bool] = {}

    def _keys_stamp(self) -> Any:
        stamps: list[tuple[int, int, int] | None] = []
        for name in (ALLOWED_SIGNERS, f"{GNUPG_HOME}/pubring.kbx", f"{GNUPG_HOME}/pubring.gpg"):
            try:
                st = (signing_dir(self.root) / name).stat()
            except OSError:
                stamps.append(None)
                continue
            stamps.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(stamps)

    def verify(self, commit: str) -> Verdict:
        key = (commit, self._keys_stamp())
        verdict = self._verdicts.get(key)
        if verdict is None:
            if len(self._verdicts) > 1000:
                self._verdicts.clear()
            verdict = self._verdicts[key] = verify_commit(self.repo, commit, self.root)
        return verdict

    def config_requires(self, commit: str) -> bool:
        """Whether homelab.yaml at `commit` sets requireSignedCommits (False if unreadable)."""
        found = self._configs.get(commit)
        if found is None:
            found = self._configs[commit] = self._read_config_requires(commit)
        return found

    def _read_config_requires(self, commit: str) -> bool:
        try:
            proc = subprocess.run(
                ["git", "-C", str(self.repo), "cat-file", "blob", f"{commit}:{REPO_CONFIG_FILE}"],
                capture_output=True,
                timeout=VERIFY_TIMEOUT_SECONDS,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        if proc.returncode != 0:
            return False
        config, _errors = parse_repo_config(REPO_CONFIG_FILE, proc.stdout)
        return config is not None and config.requireSignedCommits

    def recorded(self) -> dict[str, Any]:
        try:
            doc = read_json(state_path(self.root))
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def decide(self, tip: str, *, record: bool = True) -> GateDecision:
        """The commit in force for `tip`; with `record`, remember it when it is the tip."""
        previous = self.recorded()
        tip_requires = self.config_requires(tip)
        required = self.require or tip_requires or previous.get("required") is True
        if not required:
            decision = GateDecision(tip, tip)
        else:
            verdict = self.verify(tip)
            if verdict.ok:
                decision = GateDecision(tip, tip, True, True, verdict.signer)
            else:
                decision = self._held(tip, verdict, previous)
        if record and decision.commit == tip:
            self._record(decision, tip_requires)
        return decision

    @staticmethod
    def _held(tip: str, verdict: Verdict, previous: dict[str, Any]) -> GateDecision:
        last = previous.get("commit")
        if previous.get("verified") is True and isinstance(last, str) and _COMMIT.match(last):
            signer = previous.get("signer")
            return GateDecision(
                tip,
                last,
                True,
                True,
                signer if isinstance(signer, str) else None,
                f"tip {tip[:12]} is held back: {verdict.reason}; the last verified commit "
                f"{last[:12]} stays in force",
            )
        return GateDecision(
            tip,
            None,
            True,
            held=f"tip {tip[:12]} is held back: {verdict.reason}; no commit was verified "
            "yet, so nothing is planned",
        )

    def _record(self, decision: GateDecision, requires: bool) -> None:
        doc = {
            "commit": decision.commit,
            "verified": decision.verified,
            "signer": decision.signer,
            "required": requires,
        }
        path = state_path(self.root)
        if not decision.verified and not requires:
            path.unlink(missing_ok=True)  # the same as no record: nothing verified nor required
            return
        if self.recorded() == doc:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, doc)
