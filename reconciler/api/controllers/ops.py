"""Operations endpoints: `/summary`, `/healthz`, `/readyz`, `/metrics` and the live stream.

`/summary`, `/healthz` and `/readyz` are open (the runbook curls them);
`/summary` holds counts, ages and the desired commit only. `/live` is the
server-sent event stream the pages subscribe to: one `changed` message
whenever the views change (bursts coalesced), a comment every 15 s so
proxies keep the connection; at most `SSE_PER_CLIENT` streams per client
address and `SSE_TOTAL` in all (429 past that; `reconciler.api.limits`).
Registered by `reconciler.api.app`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncGenerator
from typing import Any

import orjson
from litestar import MediaType, Request, get
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response, ServerSentEvent, ServerSentEventMessage

from reconciler.api import schemas as s
from reconciler.api import services
from reconciler.api.context import context, operator
from reconciler.api.limits import StreamSlots, TooManyStreams
from reconciler.api.metrics import render_metrics
from reconciler.api.views import RuntimeViews

Req = Request[Any, Any, Any]
KEEPALIVE_SECONDS = 15.0
COALESCE_SECONDS = 0.1


@get("/summary", sync_to_thread=False)
def get_summary(request: Req) -> Response[s.Summary]:
    """Resources in sync / drifted / invalid / flapping, queue sizes, observer lag."""
    body = services.summary_json(context(request).views)
    return Response(body, media_type=MediaType.JSON)  # type: ignore[arg-type]


@get("/healthz", sync_to_thread=False)
def healthz() -> s.Health:
    """The process answers."""
    return s.Health(status="ok", checks={})


def readiness(views: RuntimeViews) -> tuple[bool, dict[str, str]]:
    checks: dict[str, str] = {}
    caught_up = views.observer.get("caughtUp")
    checks["observer"] = "caught up" if caught_up is True else "not caught up (or not running)"
    writable = all(
        os.access(views.root.queue_dir(st), os.W_OK | os.X_OK) for st in ("pending", "approved")
    )
    checks["queue"] = "writable" if writable else "queue folders not writable"
    services_ok = True
    for name, info in services.service_infos(views, time.time()).items():
        checks[f"service:{name}"] = info.check
        services_ok &= info.healthy
    return caught_up is True and writable and services_ok, checks


@get(
    "/readyz",
    sync_to_thread=False,
    responses={503: ResponseSpec(s.Health, description="Not ready; `checks` says why")},
)
def readyz(request: Req) -> Response[s.Health]:
    """Ready when the observer has caught up, the queue is writable and no service is failing."""
    ok, checks = readiness(context(request).views)
    body = s.Health(status="ready" if ok else "not ready", checks=checks)
    return Response(body, status_code=200 if ok else 503)


@get(
    "/metrics",
    media_type=MediaType.TEXT,
    sync_to_thread=False,
    responses={401: ResponseSpec(s.Problem, description="Not authenticated")},
)
def metrics(request: Req) -> str:
    """Prometheus text format."""
    return render_metrics(context(request).views)


async def _changes(
    views: RuntimeViews, slots: StreamSlots, address: str
) -> AsyncGenerator[ServerSentEventMessage, None]:
    try:
        slots.take(address)  # taken here, so the finally below always gives it back
    except TooManyStreams:
        return
    wake = views.subscribe()
    try:
        yield ServerSentEventMessage(event="changed", data=str(views.version), retry=2000)
        while not views.closed:
            try:
                await asyncio.wait_for(wake.wait(), KEEPALIVE_SECONDS)
            except TimeoutError:
                yield ServerSentEventMessage(comment="keepalive")
                continue
            await asyncio.sleep(COALESCE_SECONDS)
            wake.clear()
            if views.closed:
                break
            counts, _ = services._counts(views)
            payload = {"version": views.version, "pending": counts.pending}
            yield ServerSentEventMessage(event="changed", data=orjson.dumps(payload).decode())
    finally:
        views.unsubscribe(wake)
        slots.give_back(address)


@get("/live", include_in_schema=False, sync_to_thread=False)
def live(request: Req) -> ServerSentEvent | Response[s.Problem]:
    """Server-sent events: `changed` whenever the runtime root changes."""
    ctx = context(request)
    address = operator(request).address
    try:
        ctx.streams.check(address)
    except TooManyStreams as exc:
        return Response(s.Problem(429, str(exc)), status_code=429, headers={"Retry-After": "5"})
    return ServerSentEvent(
        _changes(ctx.views, ctx.streams, address),
        headers={"X-Accel-Buffering": "no", "Cache-Control": "no-cache"},
    )


ROUTES = [get_summary, healthz, readyz, metrics, live]
