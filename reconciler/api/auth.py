"""Who is asking: the operator token, agent tokens, sessions, trusted-proxy identity, CSRF.

`AuthMiddleware` (plain ASGI, so the open routes stay cheap) puts an
`Operator` in `scope["user"]` from, in order: an `Authorization: Bearer`
token (the operator's; an agent token instead gives an `Agent`, allowed
only `POST /api/events` and refused with 403 and an `auth.refused` audit
event everywhere else; an unknown or revoked token is 401), the identity
header of a trusted proxy (Tailscale Serve, a reverse proxy; only when the
TCP peer is one of the configured proxy addresses) or a signed session
cookie (sessions, cookies and the token are in `reconciler.api.sessions`).
`POST /api/hooks/git` needs none of these: the webhook proves itself
with its shared secret (`reconciler.api.hooks`) and can only ask for a
fetch. Anything but the open paths without an operator gets 401 (API) or a
redirect to the login page (pages); an identity header from any other
address, or an operator name reserved for the services (`X-Operator:
executor`), gets 403. CSRF tokens are HMACs of the session, so
only pages we rendered can post; bearer-token callers need none because a
browser never sends that header on its own. Used by `reconciler.api.app`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson
from litestar.types import ASGIApp, Receive, Scope, Send

from reconciler.api.agent_tokens import AgentTokens
from reconciler.api.config import UISettings
from reconciler.api.sessions import SESSION_COOKIE, Keys
from reconciler.events.log import reserved_actor

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/summary", "/login"})
OPEN_PREFIXES = ("/static/",)
# Routes that prove their caller themselves: the git webhook (a shared secret).
SELF_AUTHENTICATED = frozenset({("POST", "/api/hooks/git")})
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
                name = headers.get("x-operator", "token")[:64] or "token"
                return reserved_actor(name) or Operator(name, peer, "bearer")
            agent = self.agents.lookup(presented) if self.agents else None
            return Agent(agent, peer) if agent else None
        claimed = headers.get(self.identity_header)
        if claimed is not None:
            if self.settings.auth_mode != "proxy" or not self._from_proxy(peer):
                return f"identity header {self.settings.identity_header} from untrusted {peer}"
            forwarded = headers.get("x-forwarded-for", "").split(",")[-1].strip()
            name = claimed[:128]
            return reserved_actor(name) or Operator(name, forwarded or peer, "proxy")
        session = _cookie(headers.get("cookie", ""), SESSION_COOKIE)
        if session:
            holder = self.keys.read_session(session)
            if holder:
                return Operator(holder, peer, "session", session)
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
        if (scope.get("method"), path) in SELF_AUTHENTICATED:
            scope["user"] = None
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


def client_address(scope: Any, settings: UISettings) -> str:
    """The client's address: the TCP peer, or the last hop a trusted proxy forwarded."""
    client = scope.get("client")
    peer: str = client[0] if client else ""
    if settings.trusted_proxies:
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return peer
        nets = [ipaddress.ip_network(p, strict=False) for p in settings.trusted_proxies]
        if any(address in net for net in nets):
            forwarded = _headers(scope).get("x-forwarded-for", "").split(",")[-1].strip()
            return forwarded or peer
    return peer


def operator_of(scope: Any) -> Operator:
    user = scope.get("user") if isinstance(scope, dict) else None
    if not isinstance(user, Operator):
        raise PermissionError("no operator")
    return user
