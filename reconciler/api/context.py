"""The objects a request handler needs, kept on the app's state.

`AppContext` bundles settings, the in-memory views, the write side, the
session keys, the failed-login counter, the live-stream slots and the git
webhook service;
`create_app` builds it and the controllers fetch it with `context(request)`.
Kept apart from `app.py` so controllers import no factory code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException

from reconciler.api.auth import Agent, Operator
from reconciler.api.config import UISettings
from reconciler.api.decisions import Decisions
from reconciler.api.hooks import GitHooks
from reconciler.api.limits import StreamSlots
from reconciler.api.sessions import Keys, LoginThrottle
from reconciler.api.views import RuntimeViews


@dataclass(frozen=True)
class AppContext:
    settings: UISettings
    views: RuntimeViews
    decisions: Decisions
    keys: Keys
    logins: LoginThrottle
    streams: StreamSlots
    hooks: GitHooks


def context(connection: ASGIConnection[Any, Any, Any, Any]) -> AppContext:
    ctx: AppContext = connection.app.state["ctx"]
    return ctx


def principal(connection: ASGIConnection[Any, Any, Any, Any]) -> Operator | Agent:
    """Whoever the auth middleware admitted: an operator, or an agent on its one route."""
    user = connection.scope.get("user")
    if not isinstance(user, Operator | Agent):
        raise NotAuthorizedException("authentication required")
    return user


def operator(connection: ASGIConnection[Any, Any, Any, Any]) -> Operator:
    """The operator; an agent token is refused (403) even if a route forgot to."""
    user = principal(connection)
    if isinstance(user, Agent):
        raise PermissionDeniedException(f"agent token {user.name!r} may only ingest events")
    return user


def require_csrf(connection: ASGIConnection[Any, Any, Any, Any], submitted: str | None) -> Operator:
    """The operator, if the request carries their CSRF token (bearer callers need none)."""
    who = operator(connection)
    if not context(connection).keys.check_csrf(who, submitted):
        raise PermissionDeniedException("CSRF token missing or wrong: reload the page and retry")
    return who


def csrf_guard(connection: ASGIConnection[Any, Any, Any, Any], _: Any) -> None:
    """Guard of state-changing API routes: the token comes in the X-CSRF-Token header.

    An agent needs none: it can only come with a bearer token, which a browser
    never sends on its own.
    """
    if isinstance(principal(connection), Agent):
        return
    require_csrf(connection, connection.headers.get("x-csrf-token"))
