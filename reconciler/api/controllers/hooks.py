"""`POST /api/hooks/git`: a git host says the repository changed; ask for a fetch.

Open to the world on purpose (the auth middleware lets exactly this route
through without a login): the sender proves itself with the shared secret
instead (`reconciler.api.hooks`), and the most it can cause is a fetch of
the configured source. The route caps the body at `MAX_BODY_BYTES` (413,
audited); the rest is `GitHooks`, run in a worker thread since it writes
files (a disk that cannot take them is a 507, not a 500). Registered by `reconciler.api.app`.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread
from litestar import Request, post
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response

from reconciler.api import schemas as s
from reconciler.api.auth import client_address
from reconciler.api.context import context
from reconciler.api.hook_senders import HookRefused
from reconciler.api.hooks import MAX_BODY_BYTES, WINDOW_SECONDS
from reconciler.errors import StorageError

Req = Request[Any, Any, Any]
HOOK_PATH = "/api/hooks/git"
REFUSALS = {
    401: ResponseSpec(s.Problem, description="Unsigned, wrongly signed or replayed"),
    413: ResponseSpec(s.Problem, description="Body over the size limit"),
    429: ResponseSpec(s.Problem, description="Too many webhooks; retry later"),
    507: ResponseSpec(s.Problem, description="The runtime root's disk is full"),
}


def _problem(refusal: HookRefused) -> Response[Any]:
    headers = {"Retry-After": str(int(WINDOW_SECONDS))} if refusal.status == 429 else {}
    body = s.Problem(refusal.status, f"webhook refused: {refusal.reason}")
    return Response(body, status_code=refusal.status, headers=headers)


@post(
    HOOK_PATH,
    status_code=202,
    request_max_body_size=MAX_BODY_BYTES,
    responses=REFUSALS,
    security=[],
    tags=["hooks"],
)
async def git_hook(request: Req) -> Response[Any]:
    """Webhook of GitHub, Gitea, Forgejo, Gogs or GitLab: verify it, then fetch the source now.

    Needs no login: GitHub, Gitea, Forgejo and Gogs sign the body with the
    secret in ROOT/secrets/git-webhook (HMAC-SHA256), GitLab sends it as
    X-Gitlab-Token. Push events ask for a fetch; others are accepted and ignored.
    """
    hooks = context(request).hooks
    headers = {k.lower(): v for k, v in request.headers.items()}
    address = client_address(request.scope, context(request).settings)
    try:
        await anyio.to_thread.run_sync(hooks.admit, headers, address)
        try:
            body = await request.body()
        except RequestEntityTooLarge:
            refusal = HookRefused(413, f"the body is over {MAX_BODY_BYTES} bytes")
            await anyio.to_thread.run_sync(hooks.refused_now, refusal, headers, address)
            raise refusal from None
        sender, fetch = await anyio.to_thread.run_sync(hooks.receive, headers, body, address)
    except HookRefused as refusal:
        return _problem(refusal)
    except (StorageError, OSError) as exc:  # a full disk: say so, the sender may retry
        detail = f"webhook not recorded: the runtime root cannot be written ({exc})"
        return Response(s.Problem(507, detail), status_code=507)
    return Response(
        s.HookResult(accepted=True, provider=sender.provider, event=sender.event, fetch=fetch),
        status_code=202,
    )


ROUTES = [git_hook]
