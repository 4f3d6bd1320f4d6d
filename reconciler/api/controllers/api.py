"""The JSON API under `/api`: resources, actions, approve/reject, events, ingest.

Thin handlers: read the context, call `reconciler.api.services` (reads) or
`Decisions` (writes), return a schema. Errors become documented responses:
404 for unknown ids, 409 with the current state when an action is no longer
pending, 400 for invalid input, 403 without a CSRF token. Registered by
`reconciler.api.app.create_app`.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import MediaType, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Response

from reconciler.api import schemas as s
from reconciler.api import services
from reconciler.api.context import context, csrf_guard, operator, principal
from reconciler.api.decisions import Forbidden, InvalidInput
from reconciler.api.eventfeed import EventQuery
from reconciler.errors import QueueConflict, StorageError

Req = Request[Any, Any, Any]
Q = Annotated[str | None, QueryParameter(max_length=200)]
ERRORS: dict[int, ResponseSpec] = {
    401: ResponseSpec(s.Problem, description="Not authenticated"),
    403: ResponseSpec(s.Problem, description="Refused (identity header, CSRF)"),
}
NOT_FOUND = {404: ResponseSpec(s.Problem, description="No such resource or action")}
DECIDE = {
    **ERRORS,
    **NOT_FOUND,
    400: ResponseSpec(s.Problem, description="Invalid input"),
    409: ResponseSpec(s.Conflict, description="The action is no longer pending"),
    422: ResponseSpec(s.Problem, description="A delete needs confirmName: the resource's name"),
    507: ResponseSpec(s.Problem, description="The runtime root's disk is full; nothing moved"),
}


@get("/api/resources", responses=ERRORS, sync_to_thread=False)
def list_resources(request: Req, kind: Q = None, status: Q = None) -> Response[list[s.ResourceRow]]:
    """Every resource with its reconcile status, health and drift."""
    body = services.rows_json(context(request).views, kind, status)
    return Response(body, media_type=MediaType.JSON)  # type: ignore[arg-type]


@get(
    "/api/resources/{kind:str}/{name:str}", responses={**ERRORS, **NOT_FOUND}, sync_to_thread=False
)
def get_resource(request: Req, kind: FromPath[str], name: FromPath[str]) -> s.ResourceDetail:
    """Desired and observed spec, the patch between them, conditions and history."""
    detail = services.resource_detail(context(request).views, kind, name)
    if detail is None:
        raise NotFoundException(f"no resource {kind}/{name}")
    return detail


@get("/api/actions", responses=ERRORS, sync_to_thread=False)
def list_actions(
    request: Req,
    queue_state: Annotated[
        str | None,
        QueryParameter(
            name="state",
            pattern="^(pending|approved|running|done|failed|rejected|superseded)$",
            description="Only actions in this queue state.",
        ),
    ] = None,
) -> list[s.ActionRow]:
    return services.actions(context(request).views, queue_state)


@get("/api/actions/{action_id:str}", responses={**ERRORS, **NOT_FOUND}, sync_to_thread=False)
def get_action(request: Req, action_id: FromPath[str]) -> s.ActionDetail:
    """One action with its patch, outcome and timeline of events."""
    detail = services.action_detail(context(request).views, action_id)
    if detail is None:
        raise NotFoundException(f"no action {action_id}")
    return detail


def decide(request: Req, action_id: str, approve: bool, reason: str | None) -> Response[Any]:
    ctx = context(request)
    try:
        result = ctx.decisions.decide(action_id, approve, operator(request), reason)
    except QueueConflict as exc:
        if exc.current is None:
            return Response(s.Problem(404, f"no action {action_id}"), status_code=404)
        body = s.Conflict(id=action_id, state=exc.current, detail=str(exc))
        return Response(body, status_code=409)
    except InvalidInput as exc:
        return Response(s.Problem(400, str(exc)), status_code=400)
    except StorageError as exc:  # a full disk: 507 Insufficient Storage, nothing was moved
        return Response(s.Problem(507, str(exc)), status_code=507)
    return Response(result, status_code=200)


@post(
    "/api/actions/{action_id:str}/approve",
    guards=[csrf_guard],
    responses=DECIDE,
    response_description="The action is approved",
    status_code=200,
    sync_to_thread=True,
)
def approve_action(
    request: Req, action_id: FromPath[str], data: JSONBody[s.Decision | None] = None
) -> Response[Any]:
    """Approve a pending action (X-CSRF-Token needed with a session cookie).

    A delete needs `confirmName`, the resource's name, as the UI asks it typed.
    """
    refused = context(request).decisions.unconfirmed_delete(
        action_id, data.confirmName if data else None
    )
    if refused:
        return Response(s.Problem(422, refused), status_code=422)
    return decide(request, action_id, True, data.reason if data else None)


@post(
    "/api/actions/{action_id:str}/reject",
    guards=[csrf_guard],
    responses=DECIDE,
    response_description="The action is rejected",
    status_code=200,
    sync_to_thread=True,
)
def reject_action(
    request: Req, action_id: FromPath[str], data: JSONBody[s.Rejection]
) -> Response[s.DecisionResult]:
    """Reject a pending action with a reason."""
    return decide(request, action_id, False, data.reason)


@get("/api/events", responses=ERRORS, sync_to_thread=False)
def list_events(
    request: Req,
    type: Q = None,
    kind: Q = None,
    name: Q = None,
    source: Q = None,
    action: Q = None,
    before: Q = None,
    after: Q = None,
    limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
) -> s.EventPage:
    """Newest first; pass `next` back as `before` for the following page."""
    query = EventQuery(type, kind, name, source, action, before, after, limit)
    return services.events(context(request).views, query)


@post(
    "/api/events",
    guards=[csrf_guard],
    responses={
        **ERRORS,
        400: ResponseSpec(s.Problem, description="Invalid event"),
        403: ResponseSpec(s.Problem, description="Reserved event type or another agent's name"),
    },
    status_code=201,
    sync_to_thread=True,
)
def ingest_events(request: Req, data: JSONBody[s.IngestBatch]) -> Response[s.IngestResult]:
    """Append events from a remote agent under the producer `ingest-<agent>`.

    Agent tokens (`homelab tokens create NAME`) may call only this route, as
    their own agent name; the project's own event types (`observed.*`,
    `node.*`, `resource.*`, `action.*`, ...) are refused with 403 and audited.
    """
    try:
        result = context(request).decisions.ingest(data, principal(request))
    except InvalidInput as exc:
        return Response(s.Problem(400, str(exc)), status_code=400)  # type: ignore[arg-type]
    except Forbidden as exc:
        return Response(s.Problem(403, str(exc)), status_code=403)  # type: ignore[arg-type]
    return Response(result, status_code=201)


ROUTES = [
    list_resources,
    get_resource,
    list_actions,
    get_action,
    approve_action,
    reject_action,
    list_events,
    ingest_events,
]
