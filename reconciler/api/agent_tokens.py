"""Agent tokens: scoped, revocable bearer tokens that may only ingest events.

An agent (a backup script, a monitoring probe) gets its own token instead of
the operator's: `homelab tokens create NAME` prints `hlag_<secret>` once and
stores only its SHA-256 in `ROOT/secrets/agent_tokens.json` (0600, in the
0700 secrets folder), with who created it and when; `revoke NAME` marks it
revoked (kept, so the list shows the history) and the running UI refuses it
from its next request on, because `AgentTokens.lookup` re-reads the file
whenever its inode, size or mtime changed. A token of 256 random bits needs
no salt or slow hash: nobody can guess one from its digest. Changes take a
flock on `secrets/agent_tokens.lock` so two CLI runs never lose an update.
Called by the auth middleware (`reconciler.api.auth`) and `homelab tokens`
(`reconciler.cli.tokens`).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from reconciler.atomic_files import atomic_write_json
from reconciler.errors import ConfigError
from reconciler.queue.action import now_iso
from reconciler.resources.meta import check_dns_label
from reconciler.runtime_root import RuntimeRoot

TOKEN_PREFIX = "hlag_"
FILE_NAME = "agent_tokens.json"


@dataclass(frozen=True)
class AgentToken:
    """What `homelab tokens list` shows: never the secret, never its digest."""

    name: str
    created_at: str
    created_by: str
    revoked_at: str | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_agent_name(name: str) -> str:
    """An agent name is a DNS-1123 label: it becomes the producer `ingest-<name>`."""
    try:
        return check_dns_label(name)
    except ValueError as exc:
        raise ConfigError(f"agent name {name!r}: {exc}") from None


class AgentTokens:
    """The token file of one runtime root; safe to share between threads."""

    def __init__(self, root: RuntimeRoot) -> None:
        self.root = root
        self.path = root.secrets / FILE_NAME
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._by_digest: dict[str, str] = {}

    # ---- reading ----------------------------------------------------------
    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            doc = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except orjson.JSONDecodeError as exc:
            raise ConfigError(
                f"{self.path}: not valid JSON ({exc}); restore it from a backup or delete it "
                "and create the agent tokens again"
            ) from None
        tokens = doc.get("tokens") if isinstance(doc, dict) else None
        return {k: v for k, v in (tokens or {}).items() if isinstance(v, dict)}

    def list(self) -> list[AgentToken]:
        return [
            AgentToken(
                name,
                str(entry.get("createdAt", "")),
                str(entry.get("createdBy", "")),
                entry.get("revokedAt"),
                entry.get("revokedBy"),
            )
            for name, entry in sorted(self._read().items())
        ]

    def lookup(self, candidate: str) -> str | None:
        """The agent a presented token belongs to, or None (unknown or revoked)."""
        if not candidate.startswith(TOKEN_PREFIX):
            return None
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                try:
                    entries = self._read() if stamp else {}
                except ConfigError:
                    entries = {}  # a broken file admits no agent
                self._by_digest = {
                    str(e.get("sha256")): name
                    for name, e in entries.items()
                    if e.get("revokedAt") is None and e.get("sha256")
                }
                self._stamp = stamp
            wanted = _digest(candidate)
            for digest, name in self._by_digest.items():
                if hmac.compare_digest(digest, wanted):
                    return name
        return None

    # ---- changing ---------------------------------------------------------
    @contextmanager
    def _changing(self) -> Iterator[dict[str, dict[str, Any]]]:
        self.root.secrets.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.root.secrets / "agent_tokens.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            tokens = self._read()
            yield tokens
            atomic_write_json(self.path, {"version": 1, "tokens": tokens}, mode=0o600)
        finally:
            os.close(fd)

    def create(self, name: str, by: str) -> str:
        """A new token for `name`, returned once; refused while an active one exists."""
        check_agent_name(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self._changing() as tokens:
            old = tokens.get(name)
            if old is not None and old.get("revokedAt") is None:
                raise ConfigError(
                    f"agent {name!r} already has an active token (created {old.get('createdAt')}"
                    f" by {old.get('createdBy')}): run `homelab tokens revoke {name}` first"
                )
            tokens[name] = {
                "sha256": _digest(token),
                "createdAt": now_iso(),
                "createdBy": by,
                "revokedAt": None,
                "revokedBy": None,
            }
        return token

    def revoke(self, name: str, by: str) -> bool:
        """Revoke `name`'s token; False when it was already revoked."""
        with self._changing() as tokens:
            entry = tokens.get(name)
            if entry is None:
                known = ", ".join(sorted(tokens)) or "none"
                raise ConfigError(f"no agent token named {name!r} (known: {known})")
            if entry.get("revokedAt") is not None:
                return False
            entry["revokedAt"], entry["revokedBy"] = now_iso(), by
        return True
