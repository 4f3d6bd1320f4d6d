"""The errors page and the operator's resource actions (propose again, clear flap).

`/errors` lists every manifest error of the desired commit with
`file:line:column`, field, message and the resources they make Invalid
(the banner on every page links here). The two form posts check the CSRF
field, call `reconciler.api.resource_decisions` and redirect back to the
resource page with a notice (post/redirect/get). Registered by
`reconciler.api.app`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from reconciler.api import problems, resource_decisions
from reconciler.api.context import context, require_csrf
from reconciler.api.controllers.pages import _back, _page
from reconciler.api.decisions import InvalidInput
from reconciler.errors import StorageError
from reconciler.resources.key import ResourceKey

Req = Request[Any, Any, Any]


@get("/errors", include_in_schema=False, sync_to_thread=False)
def errors_page(request: Req) -> Template:
    found = problems.manifest_problems(context(request).views)
    return _page(request, "errors.html", "errors", found=found)


async def _resource_form(request: Req, kind: str, name: str, what: str) -> Redirect:
    form = await request.form()
    who = require_csrf(request, str(form.get("_csrf") or ""))
    ref = ResourceKey(kind, name)
    back = f"/resources/{kind}/{name}"
    decisions = context(request).decisions
    try:
        if what == "propose-again":
            notice = resource_decisions.propose_again(decisions, ref, who)
        else:
            notice = resource_decisions.clear_flap(decisions, ref, who)
    except (InvalidInput, StorageError) as exc:
        return _back(request, back, f"Not changed: {exc}")
    return _back(request, back, notice)


@post("/resources/{kind:str}/{name:str}/propose-again", include_in_schema=False, status_code=303)
async def propose_again_form(request: Req, kind: FromPath[str], name: FromPath[str]) -> Redirect:
    return await _resource_form(request, kind, name, "propose-again")


@post("/resources/{kind:str}/{name:str}/clear-flap", include_in_schema=False, status_code=303)
async def clear_flap_form(request: Req, kind: FromPath[str], name: FromPath[str]) -> Redirect:
    return await _resource_form(request, kind, name, "clear-flap")


ROUTES = [errors_page, propose_again_form, clear_flap_form]
