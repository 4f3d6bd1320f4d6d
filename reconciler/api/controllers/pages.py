"""Server-rendered pages (Jinja + htmx) and their form posts.

Dashboard, resources, resource detail, action queue, action detail, events
and the login page. Each page re-fetches its own `#live` part when the
`/live` stream says something changed; the queue page instead patches the
rows that changed (`ui/static/queue.js`), and is filtered and paged on the
server (`reconciler.api.queue_page`). Form posts (login, approve, reject,
bulk approve/reject of the selected rows) check the CSRF field, call
`Decisions` and redirect back (post/redirect/get), carrying a short notice.
Approving a delete needs the resource's name typed; a bulk approval that
includes deletes first answers a page listing them, to be confirmed by
typing `delete N`. Registered by
`reconciler.api.app`; templates live in `ui/templates`.
"""

from __future__ import annotations

import contextlib
import logging
import re
from typing import Any
from urllib.parse import quote, urlencode

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from reconciler.api import problems, services
from reconciler.api.auth import Operator, client_address
from reconciler.api.context import context, require_csrf
from reconciler.api.decisions import InvalidInput
from reconciler.api.eventbrowse import BrowseQuery, time_bound, valid_cursor
from reconciler.api.queue_page import QueueFilter
from reconciler.api.queue_page import queue_page as build_queue_page
from reconciler.api.sessions import LOGIN_WINDOW_SECONDS, SESSION_COOKIE, SESSION_SECONDS
from reconciler.errors import QueueConflict, StorageError
from reconciler.events.log import reserved_actor

Req = Request[Any, Any, Any]
RESOURCES_PAGE = 100  # rows of the resource list per page
_NAME = re.compile(r"^[A-Za-z0-9._@+ -]{1,64}$")
_NEXT = re.compile(r"^/(?![/\\])[A-Za-z0-9/_.?=&%-]*$")
log = logging.getLogger("homelab.ui.login")
EVENT_FILTERS = ("type", "resource", "text", "source", "since", "until")


def _page(request: Req, name: str, nav: str, **values: Any) -> Template:
    ctx = context(request)
    who = request.scope.get("user")
    if isinstance(who, Operator):  # what every signed-in page shows: the banner, node marks
        values.update(
            manifest_problems=problems.manifest_problems(ctx.views),
            not_ready=problems.not_ready_actions(ctx.views),
        )
    values.update(
        disk=services.disk_info(ctx.views, detail=isinstance(who, Operator)),  # the banner
        base=ctx.settings.base_path,
        nav=nav,
        operator=who if isinstance(who, Operator) else None,
        csrf=ctx.keys.csrf_for(who) if isinstance(who, Operator) else "",
        notice=request.query_params.get("notice", "")[:300],
        self_url=ctx.settings.base_path
        + request.url.path
        + (f"?{request.url.query}" if request.url.query else ""),
    )
    return Template(template_name=name, context=values)


page_template = _page  # also the layout of the error pages (reconciler.api.error_pages)


def _back(request: Req, path: str, notice: str = "") -> Redirect:
    join = "&" if "?" in path else "?"
    suffix = f"{join}notice={quote(notice)}" if notice else ""
    return Redirect(f"{context(request).settings.base_path}{path}{suffix}", status_code=303)


@get("/", include_in_schema=False, sync_to_thread=False)
def dashboard(request: Req) -> Template:
    views = context(request).views
    pending = services.actions(views, "pending")
    return _page(
        request,
        "dashboard.html",
        "dashboard",
        summary=services.summary(views),
        pending=pending[:10],
        pending_total=len(pending),
        events=[services.event_out(e) for e in views.feed.recent(15)],
        notify_targets=services.notification_targets(views),
        notify_problems=services.notification_problems(views),
    )


@get("/resources", include_in_schema=False, sync_to_thread=False)
def resources_page(
    request: Req,
    kind: FromQuery[str | None] = None,
    status: FromQuery[str | None] = None,
    run: FromQuery[str | None] = None,
) -> Template:
    views = context(request).views
    rows = services.filter_rows(views, kind, status, run)
    kinds = views.cached(
        "resource_kinds", lambda: sorted({r.kind for r in services.resource_rows(views)})
    )
    raw = request.query_params.get("page", "")
    pages = max(1, -(-len(rows) // RESOURCES_PAGE))
    page = min(max(1, int(raw) if raw.isdigit() else 1), pages)
    start = (page - 1) * RESOURCES_PAGE
    shown = rows[start : start + RESOURCES_PAGE]
    query = {k: v for k, v in (("kind", kind), ("status", status), ("run", run)) if v}
    return _page(
        request,
        "resources.html",
        "resources",
        rows=shown,
        matched=len(rows),
        first=start + 1 if shown else 0,
        last=start + len(shown),
        page=page,
        pages=pages,
        page_urls={n: "?" + urlencode({**query, "page": n}) for n in (page - 1, page + 1)},
        kinds=kinds,
        kind=kind or "",
        status=status or "",
        run=run or "",
        statuses=services.STATUSES,
    )


@get("/resources/{kind:str}/{name:str}", include_in_schema=False, sync_to_thread=False)
def resource_page(request: Req, kind: FromPath[str], name: FromPath[str]) -> Template:
    detail = services.resource_detail(context(request).views, kind, name)
    if detail is None:
        raise NotFoundException(f"no resource {kind}/{name}")
    return _page(request, "resource.html", "resources", d=detail)


@get("/queue", include_in_schema=False, sync_to_thread=False)
def queue_page(request: Req) -> Template:
    wanted = QueueFilter.from_query(request.query_params)
    q = build_queue_page(context(request).views, wanted)
    return _page(request, "queue.html", "queue", q=q, back="/queue" + wanted.url())


@get("/actions/{action_id:str}", include_in_schema=False, sync_to_thread=False)
def action_page(request: Req, action_id: FromPath[str]) -> Template:
    detail = services.action_detail(context(request).views, action_id)
    if detail is None:
        raise NotFoundException(f"no action {action_id}")
    return _page(request, "action.html", "queue", d=detail)


@get("/events", include_in_schema=False, sync_to_thread=True)
def events_page(request: Req) -> Template:
    """The whole retained log, newest first, by cursor (`before`/`after`) and filters."""
    p = request.query_params
    f = {k: str(p.get(k) or "").strip()[:200] for k in EVENT_FILTERS}
    problems = []
    bounds: dict[str, str | None] = {}
    for key in ("since", "until"):
        bounds[key] = time_bound(f[key]) if f[key] else None
        if f[key] and bounds[key] is None:
            problems.append(f"{key}: {f[key]!r} is not a date or time (use 2024-05-01T12:00)")
    before, after = valid_cursor(p.get("before")), valid_cursor(p.get("after"))
    try:
        limit = min(500, max(1, int(p.get("limit") or 100)))
    except ValueError:
        limit = 100
    query = BrowseQuery(
        type=f["type"],
        resource=f["resource"],
        text=f["text"],
        source=f["source"],
        since=bounds["since"],
        until=bounds["until"],
        before=before,
        after=after,
        limit=limit,
    )
    page = context(request).views.browser.page(query)
    keep = {k: v for k, v in f.items() if v}
    if limit != 100:
        keep["limit"] = str(limit)
    return _page(
        request,
        "events.html",
        "events",
        page=page,
        f=f,
        keep=keep,
        filtered=bool(keep),
        problems=problems,
        at_cursor=bool(before or after),
    )


@get("/login", include_in_schema=False, sync_to_thread=False)
def login_page(request: Req) -> Template:
    target = request.query_params.get("next", "/")
    return _page(
        request, "login.html", "login", error="", next=target if _NEXT.match(target) else "/"
    )


def _login_refused(request: Req, status: int, error: str) -> Template:
    page = _page(request, "login.html", "login", error=error, next="/")
    page.status_code = status
    return page


@post("/login", include_in_schema=False, status_code=303)
async def login(request: Req) -> Template | Redirect:
    """Log in with the token; failures are counted per address (429 past the limit)."""
    ctx = context(request)
    address = client_address(request.scope, ctx.settings)
    wait = ctx.logins.retry_after(address)
    if wait:
        page = _login_refused(
            request, 429, f"Too many failed logins from {address}: try again in {wait} s."
        )
        page.headers["Retry-After"] = str(wait)
        return page
    form = await request.form()
    name = str(form.get("name") or "operator").strip()
    if not ctx.keys.check_token(str(form.get("token") or "").strip()):
        count = ctx.logins.failed(address)
        log.warning(
            "failed login from %s (%d in the last %d s; locked out at %d)",
            address,
            count,
            LOGIN_WINDOW_SECONDS,
            ctx.logins.failures,
        )
        return _login_refused(request, 401, "Wrong token.")
    if not _NAME.match(name):
        return _login_refused(request, 400, "Use a name of letters, digits, '._@+-' and spaces.")
    reserved = reserved_actor(name)
    if reserved:
        return _login_refused(request, 400, reserved[0].upper() + reserved[1:] + ".")
    target = str(form.get("next") or "/")
    redirect = Redirect(
        ctx.settings.base_path + (target if _NEXT.match(target) else "/"), status_code=303
    )
    secure = ctx.settings.secure_cookies
    if secure is None:
        secure = request.url.scheme == "https"
    redirect.cookies.append(
        Cookie(
            key=SESSION_COOKIE,
            value=ctx.keys.new_session(name),
            max_age=SESSION_SECONDS,
            path=(ctx.settings.base_path or "") + "/",
            httponly=True,
            samesite="strict",
            secure=secure,
        )
    )
    return redirect


@post("/logout", include_in_schema=False, status_code=303)
async def logout(request: Req) -> Redirect:
    """Ends the session server-side too: a copy of the cookie is refused afterwards."""
    form = await request.form()
    who = require_csrf(request, str(form.get("_csrf") or ""))
    if who.via == "session" and who.session:
        context(request).keys.end_session(who.session)
    redirect = _back(request, "/login")
    redirect.delete_cookie(SESSION_COOKIE, path=(context(request).settings.base_path or "") + "/")
    return redirect


def _safe_back(value: Any) -> str:
    back = str(value or "/queue")
    return back if _NEXT.match(back) else "/queue"


async def _decide_form(request: Req, action_id: str, approve: bool) -> Redirect:
    form = await request.form()
    who = require_csrf(request, str(form.get("_csrf") or ""))
    back = _safe_back(form.get("back"))
    blocked = problems.not_ready_actions(context(request).views).get(action_id)
    if approve and blocked and form.get("confirm_not_ready") != "yes":
        return _back(request, back, f"Not approved: {blocked}; tick the box to approve anyway")
    if approve:
        refused = context(request).decisions.unconfirmed_delete(
            action_id, str(form.get("confirm_name") or "")
        )
        if refused:
            return _back(request, back, refused)
    try:
        context(request).decisions.decide(action_id, approve, who, str(form.get("reason") or ""))
    except QueueConflict as exc:
        return _back(request, back, f"Not changed: {exc}")
    except (InvalidInput, StorageError) as exc:
        return _back(request, back, str(exc))
    verb = "Approved" if approve else "Rejected"
    return _back(request, back, f"{verb} {action_id[:12]}")


@post("/queue/{action_id:str}/approve", include_in_schema=False, status_code=303)
async def approve_form(request: Req, action_id: FromPath[str]) -> Redirect:
    return await _decide_form(request, action_id, True)


@post("/queue/{action_id:str}/reject", include_in_schema=False, status_code=303)
async def reject_form(request: Req, action_id: FromPath[str]) -> Redirect:
    return await _decide_form(request, action_id, False)


@post("/queue/bulk", include_in_schema=False, status_code=303)
async def bulk_form(request: Req) -> Template | Redirect:
    """Approves or rejects the selected rows; deletes are listed first, to be confirmed."""
    form = await request.form()
    who = require_csrf(request, str(form.get("_csrf") or ""))
    back = _safe_back(form.get("back"))
    ids = list(dict.fromkeys(str(i) for i in form.getall("ids"))) if "ids" in form else []
    if not ids:
        return _back(request, back, "Select at least one action first.")
    approve = form.get("decision") != "reject"
    reason = str(form.get("reason") or "").strip()
    if not approve and not reason:
        return _back(request, back, "Give a reason to reject the selected actions.")
    decisions = context(request).decisions
    if approve:
        found = []
        for action_id in ids:
            with contextlib.suppress(QueueConflict):
                found.append(decisions.queue.get(action_id))
        deletes = [f[1] for f in found if f and f[0] == "pending" and f[1].operation == "delete"]
        phrase = f"delete {len(deletes)}"
        if deletes and str(form.get("confirm_deletes") or "").strip() != phrase:
            page = _page(
                request,
                "queue_confirm.html",
                "queue",
                ids=ids,
                deletes=deletes,
                others=len(ids) - len(deletes),
                phrase=phrase,
                back=back,
                typed=str(form.get("confirm_deletes") or "")[:40],
            )
            page.status_code = 200
            return page
    done, skipped, errors = 0, [], []
    try:
        for action_id in ids:
            try:
                decisions.decide(action_id, approve, who, reason or None, refresh=False)
                done += 1
            except QueueConflict as exc:
                skipped.append(exc.current or "not found")
            except (InvalidInput, StorageError) as exc:
                errors.append(str(exc))
    finally:
        decisions.views.refresh({"queue", "events"})
    verb = "Approved" if approve else "Rejected"
    notice = f"{verb} {done}"
    if skipped:
        states = ", ".join(f"{n} {_now(st)}" for st, n in sorted(_count(skipped).items()))
        notice += f"; skipped {len(skipped)} no longer pending ({states})"
    if errors:
        notice += f"; {len(errors)} failed: {errors[0]}"
    return _back(request, back, notice)


def _now(state: str) -> str:
    return state if state == "not found" else f"already {state}"


def _count(values: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


ROUTES = [
    dashboard,
    resources_page,
    resource_page,
    queue_page,
    action_page,
    events_page,
    login_page,
    login,
    logout,
    approve_form,
    reject_form,
    bulk_form,
]
