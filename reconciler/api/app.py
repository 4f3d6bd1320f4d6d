"""`create_app()`: the Litestar application of the operator UI and HTTP API.

Builds the in-memory views of the runtime root, the write side (approvals,
rejections, ingest), the session keys from the operator token, and wires
routes (with the git webhook, `reconciler.api.controllers.hooks`), the auth
middleware, templates and static assets (from the
`reconciler.ui_assets` package, i.e. the repository's `ui/` folder), a
Content-Security-Policy, the request body cap and `BoundedRequest`, whose JSON
decoding turns a body nested too deeply for the decoder into a 400 instead of
a 500 (msgspec raises RecursionError past ~1,000 levels). The file watcher thread
starts and stops with the app's lifespan. Called by `homelab run ui`
(`reconciler.api.server`) and the tests.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from litestar import Litestar, Request
from litestar.datastructures import CacheControlHeader, ResponseHeader, State
from litestar.exceptions import ClientException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from reconciler import __version__
from reconciler.api.agent_tokens import AgentTokens
from reconciler.api.auth import AuthMiddleware
from reconciler.api.config import UISettings
from reconciler.api.context import AppContext
from reconciler.api.controllers import api, operator_pages, ops, pages
from reconciler.api.controllers import hooks as hook_routes
from reconciler.api.decisions import Decisions
from reconciler.api.disk import DiskThresholds
from reconciler.api.error_pages import EXCEPTION_HANDLERS
from reconciler.api.hooks import GitHooks
from reconciler.api.limits import StreamSlots
from reconciler.api.rendering import install_filters
from reconciler.api.sessions import Keys, LoginThrottle, Revocations, load_or_create_token
from reconciler.api.views import RuntimeViews

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    ResponseHeader(name="Content-Security-Policy", value=CSP),
    ResponseHeader(name="X-Content-Type-Options", value="nosniff"),
    ResponseHeader(name="Referrer-Policy", value="same-origin"),
    ResponseHeader(name="X-Frame-Options", value="DENY"),
]


def ui_assets() -> Path:
    """The `ui/` folder: inside the installed package, or beside it in a checkout."""
    installed = Path(str(resources.files("reconciler") / "ui_assets"))
    if (installed / "templates").is_dir():
        return installed  # copied there by the build hook in setup.py
    return Path(__file__).resolve().parents[2] / "ui"


def _templates(folder: Path) -> TemplateConfig[JinjaTemplateEngine]:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    install_filters(env)
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(env))


class BoundedRequest(Request[Any, Any, Any]):
    """A request whose JSON body, nested deeper than the decoder recurses, is a 400."""

    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError:
            raise ClientException(
                f"{self.method} {self.url.path}: the JSON body is nested too deeply to "
                "decode; send a flatter document (event data is stored up to 255 levels)"
            ) from None


def create_app(settings: UISettings, *, watch: bool = True) -> Litestar:
    """The app; `watch=False` leaves refreshing to the caller (tests, benchmarks)."""
    root = settings.root.ensure()
    views = RuntimeViews(
        root,
        event_capacity=settings.event_capacity,
        disk_thresholds=DiskThresholds(settings.disk_warn_percent, settings.disk_warn_bytes),
    )
    views.refresh()
    token = settings.token or load_or_create_token(root)[0]
    keys = Keys(token, Revocations(root.state / "ui_revoked.json"))
    decisions = Decisions(root, views)
    hooks = GitHooks(root, decisions.audit)
    ctx = AppContext(settings, views, decisions, keys, LoginThrottle(), StreamSlots(), hooks)
    folder = ui_assets()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        gc.freeze()  # the loaded views are long-lived: keep them out of every full collection
        stop = threading.Event()
        watcher = threading.Thread(target=views.watch, args=(stop,), name="ui-watch", daemon=True)
        if watch:
            watcher.start()
        try:
            yield
        finally:
            stop.set()
            views.close()
            if watch:
                watcher.join(timeout=10)
            decisions.close()

    static = create_static_files_router(
        path="/static",
        directories=[folder / "static"],
        cache_control=CacheControlHeader(max_age=3600),
    )
    openapi = OpenAPIConfig(
        title="homelab-reconciler",
        version=__version__,
        path="/schema",
        description="Operator API: summary, resources, the action queue, events.",
        security=[{"bearer": []}],
        components=Components(
            security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
        ),
    )
    return Litestar(
        route_handlers=[
            *api.ROUTES,
            *hook_routes.ROUTES,
            *ops.ROUTES,
            *pages.ROUTES,
            *operator_pages.ROUTES,
            static,
        ],
        middleware=[
            DefineMiddleware(
                AuthMiddleware,
                settings=settings,
                keys=keys,
                agents=AgentTokens(root),
                audit=decisions.audit,
            )
        ],
        template_config=_templates(folder),
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi,
        request_max_body_size=settings.max_body_bytes,
        request_class=BoundedRequest,
        response_headers=SECURITY_HEADERS,
        state=State({"ctx": ctx}),
        lifespan=[lifespan],
        logging_config=None,
    )


def app_context(app: Litestar) -> AppContext:
    ctx: Any = app.state["ctx"]
    assert isinstance(ctx, AppContext)
    return ctx
