"""Operator sessions: the token, signed session cookies, their revocation, login throttling.

The operator token lives in ROOT/state/ui_token (0600). `Keys` signs session
cookies and CSRF tokens with a key derived from it (rotating the token ends
every session). Logging out revokes the session's nonce in
`ROOT/state/ui_revoked.json` (nonce -> expiry, pruned once expired), so a
copied cookie stops working at logout and after a restart; the file is
re-read when another process changed it. `LoginThrottle` counts failed
logins per client address and refuses further attempts (429) once
`LOGIN_FAILURES` failed within `LOGIN_WINDOW_SECONDS`. Used by
`reconciler.api.auth` (the middleware), `reconciler.api.app` and the login
and logout handlers in `reconciler.api.controllers.pages`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections import deque
from pathlib import Path
from typing import Protocol

import orjson

from reconciler.atomic_files import atomic_write_bytes, atomic_write_json
from reconciler.runtime_root import RuntimeRoot

SESSION_COOKIE = "homelab_session"
SESSION_SECONDS = 12 * 3600
LOGIN_FAILURES = 10  # failed logins from one address ...
LOGIN_WINDOW_SECONDS = 600  # ... within this window lock that address out
_THROTTLE_ADDRESSES = 10_000  # addresses remembered at most (memory bound under a spray)


def load_or_create_token(root: RuntimeRoot) -> tuple[str, bool]:
    """The operator token in ROOT/state/ui_token (0600); created on first start."""
    path = root.state / "ui_token"
    try:
        token = path.read_text().strip()
        if len(token) >= 32:
            return token, False
    except FileNotFoundError:
        pass
    token = secrets.token_urlsafe(32)
    root.state.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, token.encode() + b"\n", mode=0o600)
    return token, True


class Who(Protocol):
    """What a CSRF token is bound to (`reconciler.api.auth.Operator`)."""

    @property
    def name(self) -> str: ...
    @property
    def via(self) -> str: ...
    @property
    def session(self) -> str: ...


class Revocations:
    """Nonces of logged-out sessions, kept until the session would have expired anyway."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._nonces: dict[str, int] = {}
        self._stamp: int | None = None
        self._lock = threading.Lock()
        self._reload()

    def _reload(self) -> None:
        if self.path is None:
            return
        try:
            stamp = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if stamp == self._stamp:
            return
        try:
            loaded = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return  # a damaged file revokes nothing more; the next logout rewrites it
        if isinstance(loaded, dict):
            self._nonces = {str(k): int(v) for k, v in loaded.items() if isinstance(v, int)}
        self._stamp = stamp

    def revoke(self, nonce: str, expires: int) -> None:
        with self._lock:
            self._reload()
            now = int(time.time())
            self._nonces = {n: e for n, e in self._nonces.items() if e >= now}
            self._nonces[nonce] = expires
            if self.path is not None:
                atomic_write_json(self.path, self._nonces, mode=0o600)
                self._stamp = self.path.stat().st_mtime_ns

    def revoked(self, nonce: str) -> bool:
        self._reload()
        return nonce in self._nonces


class Keys:
    """Secrets derived from the operator token: rotating the token ends every session."""

    def __init__(self, token: str, revocations: Revocations | None = None) -> None:
        self.token = token.encode()
        self._mac = hashlib.sha256(b"homelab-ui-session:" + self.token).digest()
        self.revocations = revocations or Revocations(None)

    def sign(self, text: str) -> str:
        return hmac.new(self._mac, text.encode(), hashlib.sha256).hexdigest()

    def check_token(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.token)

    def new_session(self, name: str, now: float | None = None) -> str:
        body = {
            "u": name,
            "e": int((now or time.time()) + SESSION_SECONDS),
            "n": secrets.token_hex(8),
        }
        raw = base64.urlsafe_b64encode(orjson.dumps(body)).decode().rstrip("=")
        return f"{raw}.{self.sign(raw)}"

    def _body(self, value: str) -> dict[str, object] | None:
        raw, _, sig = value.partition(".")
        if not raw or not hmac.compare_digest(sig, self.sign(raw)):
            return None
        try:
            body = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(body, dict) or int(body.get("e", 0)) < time.time():
            return None
        if self.revocations.revoked(str(body.get("n", ""))):
            return None
        return body

    def read_session(self, value: str) -> str | None:
        """The operator name of a valid, unexpired, not logged-out session cookie."""
        body = self._body(value)
        name = body.get("u") if body else None
        return name if isinstance(name, str) and name else None

    def csrf_for(self, operator: Who) -> str:
        return self.sign(f"csrf:{operator.via}:{operator.name}:{operator.session}")

    def check_csrf(self, operator: Who, submitted: str | None) -> bool:
        if operator.via == "bearer":
            return True
        return bool(submitted) and hmac.compare_digest(str(submitted), self.csrf_for(operator))

    def end_session(self, value: str) -> None:
        """Logout: the cookie (and every copy of it) is refused from now on."""
        body = self._body(value)
        if body is not None:
            expires = body.get("e")
            self.revocations.revoke(
                str(body.get("n", "")), expires if isinstance(expires, int) else 0
            )


class LoginThrottle:
    """Failed logins per client address in a sliding window; thread-safe."""

    def __init__(
        self, failures: int = LOGIN_FAILURES, window: float = LOGIN_WINDOW_SECONDS
    ) -> None:
        self.failures = failures
        self.window = window
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._seen.get(address) or deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, address: str, now: float | None = None) -> int:
        """Seconds until `address` may try again; 0 when it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(address, now)
            if len(times) < self.failures:
                return 0
            return max(1, int(times[-self.failures] + self.window - now) + 1)

    def failed(self, address: str, now: float | None = None) -> int:
        """Record a failure; the number of failures of `address` within the window."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._seen) >= _THROTTLE_ADDRESSES and address not in self._seen:
                self._seen = {a: t for a, t in self._seen.items() if self._recent(a, now)}
                if len(self._seen) >= _THROTTLE_ADDRESSES:
                    self._seen.pop(next(iter(self._seen)))
            times = self._recent(address, now)
            times.append(now)
            self._seen[address] = times
            return len(times)
