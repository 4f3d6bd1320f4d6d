"""Who is asking: the operator token, agent tokens, sessions, trusted-proxy identity, CSRF.

`AuthMiddleware` (plain ASGI, so the open routes stay cheap) puts an
`Operator` in `scope["user"]` from, in order: an `Authorization: Bearer`
token (the operator's; an agent token instead gives an `Agent`, allowed
only `POST /api/events` and refused with 403 and an `auth.refused` audit
event everywhere else; an unknown or revoked token is 401), the identity
header of a trusted proxy (Tailscale Serve, a reverse proxy; only when the
TCP peer is one of the configured proxy addresses) or a signed session
cookie. Anything but the open paths without an operator gets 401 (API) or a
redirect to the login page (pages); an identity header from any other
address gets 403. CSRF tokens are HMACs of the session, so
only pages we rendered can post; bearer-token callers need none because a
browser never sends that header on its own. Used by `reconciler.api.app`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from litestar.types import ASGIApp, Receive, Scope, Send

from reconciler.api.agent_tokens import AgentTokens
from reconciler.api.config import UISettings
from reconciler.atomic_files import atomic_write_bytes
from reconciler.runtime_root import RuntimeRoot

SESSION_COOKIE = "homelab_session"
SESSION_SECONDS = 12 * 3600
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/summary", "/login"})
OPEN_PREFIXES = ("/static/",)
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AGENT_ROUTES = frozenset({("POST", "/api/events")})
Audit = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class Operator:
    """An authenticated operator: `name` for the audit trail, `via` how we know."""

    name: str
    address: str
    via: str  # "bearer", "proxy" or "session"
    session: str = ""


@dataclass(frozen=True)
class Agent:
    """A caller holding an agent token: may ingest events as `name`, nothing else."""

    name: str
    address: str
    via: str = "agent-token"


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


class Keys:
    """Secrets derived from the operator token: rotating the token ends every session."""

    def __init__(self, token: str) -> None:
        self.token = token.encode()
        self._mac = hashlib.sha256(b"homelab-ui-session:" + self.token).digest()

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

    def read_session(self, value: str) -> str | None:
        raw, _, sig = value.partition(".")
        if not raw or not hmac.compare_digest(sig, self.sign(raw)):
            return None
        try:
            body = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        if not isinstance(body, dict) or int(body.get("e", 0)) < time.time():
            return None
        name = body.get("u")
        return name if isinstance(name, str) and name else None

    def csrf_for(self, operator: Operator) -> str:
        return self.sign(f"csrf:{operator.via}:{operator.name}:{operator.session}")

    def check_csrf(self, operator: Operator, submitted: str | None) -> bool:
        if operator.via == "bearer":
            return True
        return bool(submitted) and hmac.compare_digest(str(submitted), self.csrf_for(operator))


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class AuthMiddleware:
    """ASGI middleware: identify the operator or refuse the request."""

    def __init__(
        self,
        app: ASGIApp,
        settings: UISettings,
        keys: Keys,
        agents: AgentTokens | None = None,
        audit: Audit | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.keys = keys
        self.agents = agents
        self.audit = audit
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]
        self.identity_header = settings.identity_header.lower()

    def _from_proxy(self, peer: str) -> bool:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in net for net in self.proxies)

    def identify(self, scope: Scope) -> Operator | Agent | str | None:
        """The operator or agent, None when anonymous, or a refusal message (403)."""
        headers = _headers(scope)
        client = scope.get("client")
        peer = client[0] if client else ""
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            presented = auth[7:].strip()
            if self.keys.check_token(presented):
                return Operator(headers.get("x-operator", "token")[:64] or "token", peer, "bearer")
            agent = self.agents.lookup(presented) if self.agents else None
            return Agent(agent, peer) if agent else None
        claimed = headers.get(self.identity_header)
        if claimed is not None:
            if self.settings.auth_mode != "proxy" or not self._from_proxy(peer):
                return f"identity header {self.settings.identity_header} from untrusted {peer}"
            forwarded = headers.get("x-forwarded-for", "").split(",")[-1].strip()
            return Operator(claimed[:128], forwarded or peer, "proxy")
        session = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
        if session:
            name = self.keys.read_session(session)
            if name:
                return Operator(name, peer, "session", session)
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            if path == "/login":
                found = self.identify(scope)
                scope["user"] = found if isinstance(found, Operator) else None
            await self.app(scope, receive, send)
            return
        found = self.identify(scope)
        if isinstance(found, Agent):
            found = self._admit_agent(scope, found)
        if isinstance(found, Operator | Agent):
            scope["user"] = found
            await self.app(scope, receive, send)
            return
        await _refuse(scope, send, found, self.settings.base_path)

    def _admit_agent(self, scope: Scope, agent: Agent) -> Agent | str:
        """The agent on its one route; elsewhere a refusal, audited (never the token)."""
        method = scope.get("method", "GET")
        if (method, scope["path"]) in AGENT_ROUTES:
            return agent
        message = (
            f"agent token {agent.name!r} may only POST /api/events, not {method} "
            f"{scope['path']}: operator endpoints need the operator token or a login"
        )
        if self.audit is not None:
            self.audit(
                "auth.refused",
                {
                    "agent": agent.name,
                    "via": agent.via,
                    "address": agent.address,
                    "method": method,
                    "path": scope["path"],
                    "reason": "agent token used on an operator endpoint",
                },
            )
        return message


async def _refuse(scope: Any, send: Any, message: str | None, base: str) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4401, "reason": ""})
        return
    headers = _headers(scope)
    wants_page = (
        scope["method"] == "GET"
        and "text/html" in headers.get("accept", "")
        and not scope["path"].startswith("/api/")
    )
    if message is None and wants_page:
        status, body = 303, b""
        target = quote(
            scope["path"]
            + ("?" + scope["query_string"].decode() if scope.get("query_string") else ""),
            safe="/",
        )
        extra: list[tuple[bytes, bytes]] = [(b"location", f"{base}/login?next={target}".encode())]
    else:
        status = 401 if message is None else 403
        detail = message or "authentication required: log in or send Authorization: Bearer TOKEN"
        body = orjson.dumps({"status_code": status, "detail": detail})
        extra = [(b"content-type", b"application/json")]
        if status == 401:
            extra.append((b"www-authenticate", b'Bearer realm="homelab"'))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-length", str(len(body)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": body})


def operator_of(scope: Any) -> Operator:
    user = scope.get("user") if isinstance(scope, dict) else None
    if not isinstance(user, Operator):
        raise PermissionError("no operator")
    return user
