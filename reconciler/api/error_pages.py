"""Errors as pages for browsers, as JSON for the API; a sub-path served directly.

`EXCEPTION_HANDLERS` (installed by `reconciler.api.app`): a browser's request
(`Accept: text/html`, not under `/api/` or `/schema`) that ends in an HTTP error
(404 of an unknown path or resource, 405, ...) gets `ui/templates/error.html` in
the layout, with the navigation when its session cookie is valid; any other
caller keeps Litestar's JSON body (`{"status_code", "detail"}`). An unexpected
exception is logged with its traceback (logger `homelab.ui`) and answered 500
with a fixed sentence, as a page or as JSON: the traceback and the exception's
text never reach the client.

`strip_base_path`: wraps the ASGI app so that, with `--base-path /homelab`, a
request to `/homelab/queue` is served as `/queue`, so
`homelab up --base-path /homelab` answers under the prefix without a proxy; a
proxy that strips the prefix itself (docs/vps-control-plane.md) still works, as
paths without it are passed on unchanged. Used by `reconciler.api.server`.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.response import Template
from litestar.types import ASGIApp, Receive, Scope, Send

from reconciler.api.auth import Operator, _cookie
from reconciler.api.context import context
from reconciler.api.sessions import SESSION_COOKIE

log = logging.getLogger("homelab.ui")
Req = Request[Any, Any, Any]

TITLES = {
    400: "Bad request",
    401: "Log in first",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request too large",
    422: "Invalid input",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Not ready",
    507: "Disk full",
}
SERVER_ERROR = (
    "The UI failed to answer this request. Nothing was changed by it; the details "
    "are in the UI's log. Reload to try again."
)


def wants_page(request: Req) -> bool:
    """A browser navigating to a page, not an API or schema client."""
    path = request.scope["path"]
    if path.startswith(("/api/", "/schema", "/static/", "/live")):
        return False
    return "text/html" in request.headers.get("accept", "")


def _operator(request: Req) -> Operator | None:
    """The signed-in operator, also for a path no route (hence no auth middleware) saw."""
    who = request.scope.get("user")
    if isinstance(who, Operator):
        return who
    if "user" in request.scope:
        return None
    session = _cookie(request.headers.get("cookie", ""), SESSION_COOKIE)
    name = context(request).keys.read_session(session) if session else None
    client = request.scope.get("client")
    return Operator(name, client[0] if client else "", "session", session or "") if name else None


def _error_page(request: Req, status: int, detail: str) -> Response[Any]:
    from reconciler.api.controllers.pages import page_template

    request.scope["user"] = _operator(request)
    template: Template = page_template(
        request,
        "error.html",
        "",
        static_page=True,  # no live refresh of an error (it would fetch the error again)
        status=status,
        heading=TITLES.get(status, "Error"),
        detail=detail,
        path=request.scope["path"],
    )
    template.status_code = status
    template.headers.update(_security_headers())
    return template


def _security_headers() -> dict[str, str]:
    """The app's security headers: a handler's response does not get them by itself."""
    from reconciler.api.app import SECURITY_HEADERS

    return {h.name: h.value for h in SECURITY_HEADERS if h.value is not None}


def http_error(request: Req, exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    if status >= 500:
        return server_error(request, exc)
    if not wants_page(request):
        body: dict[str, Any] = {"status_code": status, "detail": exc.detail}
        if exc.extra:
            body["extra"] = exc.extra
        headers = {**_security_headers(), **(exc.headers or {})}
        return Response(body, status_code=status, headers=headers, media_type=MediaType.JSON)
    try:
        return _error_page(request, status, str(exc.detail))
    except Exception:  # the page itself failed: still the plain answer, never a traceback
        log.exception("ui: the %s page for %s failed to render", status, request.scope["path"])
        return Response(
            f"{status} {TITLES.get(status, 'Error')}: {exc.detail}\n",
            status_code=status,
            headers=_security_headers(),
            media_type=MediaType.TEXT,
        )


def server_error(request: Req, exc: Exception) -> Response[Any]:
    log.error(
        "ui: %s %s failed", request.method, request.scope["path"], exc_info=(type(exc), exc, None)
    )
    if wants_page(request):
        try:
            return _error_page(request, 500, SERVER_ERROR)
        except Exception:
            log.exception("ui: the 500 page failed to render")
            return Response(
                f"500: {SERVER_ERROR}\n",
                status_code=500,
                headers=_security_headers(),
                media_type=MediaType.TEXT,
            )
    body = {"status_code": 500, "detail": "Internal Server Error"}
    return Response(body, status_code=500, headers=_security_headers(), media_type=MediaType.JSON)


EXCEPTION_HANDLERS: dict[type[Exception] | int, Any] = {
    HTTPException: http_error,
    Exception: server_error,
}


def strip_base_path(app: ASGIApp, base: str) -> ASGIApp:
    """`app` served under `base` too (see the module's docstring); `app` when `base` is ""."""
    if not base:
        return app
    raw_base = base.encode()

    async def under_base(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path: str = scope["path"]
            if path == base or path.startswith(base + "/"):
                scope = dict(scope)  # type: ignore[assignment]
                scope["path"] = path[len(base) :] or "/"
                raw = scope.get("raw_path")
                if raw and raw.startswith(raw_base):
                    scope["raw_path"] = raw[len(raw_base) :] or b"/"
        await app(scope, receive, send)

    return under_base
