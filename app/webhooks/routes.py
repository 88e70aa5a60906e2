"""`/api/v1/subscriptions` and `/api/v1/deliveries`: webhooks for partner systems."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from app.core import concurrency
from app.core.concurrency import IfMatch
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.webhooks import service
from app.webhooks.deps import OwnSubscription, WebhookManager
from app.webhooks.models import DeliveryStatus
from app.webhooks.schemas import (
    DeliveryPage,
    DeliveryRead,
    ReplayRequest,
    ReplayResult,
    SubscriptionCreate,
    SubscriptionPage,
    SubscriptionRead,
    SubscriptionUpdate,
    SubscriptionUpdated,
    SubscriptionWithSecret,
)

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
ERRORS = problem_responses(401, 403, 404, 409, 422)
# Routes with a JSON body also answer 400 when it is not valid JSON or not UTF-8
# (app/core/errors.py); Schemathesis found that status undocumented.
BODY_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(max_length=200)]


def _with_secret(sub: object, secret: str) -> SubscriptionWithSecret:
    read = SubscriptionRead.model_validate(sub)
    return SubscriptionWithSecret(**read.model_dump(), secret=secret)


@router.post(
    "/subscriptions", response_model=SubscriptionWithSecret, status_code=201, responses=BODY_ERRORS
)
async def create_subscription(
    data: SubscriptionCreate, request: Request, session: SessionDep, principal: WebhookManager
) -> SubscriptionWithSecret:
    """Subscribe an endpoint of your agency; the `whsec_…` secret is shown this once."""
    sub, secret = await service.create(session, principal, data, request.app.state.settings)
    return _with_secret(sub, secret)


@router.get("/subscriptions", response_model=SubscriptionPage, responses=ERRORS)
async def list_subscriptions(
    session: SessionDep,
    principal: WebhookManager,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> SubscriptionPage:
    """Your agency's subscriptions."""
    rows, next_cursor = await service.list_subscriptions(
        session, principal, limit=limit, cursor=cursor
    )
    return SubscriptionPage(
        items=[SubscriptionRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get("/subscriptions/{sub_id}", response_model=SubscriptionRead, responses=ERRORS)
async def get_subscription(sub: OwnSubscription, response: Response) -> SubscriptionRead:
    """One subscription (never its secret)."""
    response.headers["ETag"] = concurrency.etag(sub.version)
    return SubscriptionRead.model_validate(sub)


@router.patch(
    "/subscriptions/{sub_id}",
    response_model=SubscriptionUpdated,
    responses=problem_responses(400, 401, 403, 404, 409, 412, 422),
)
async def update_subscription(
    sub: OwnSubscription,
    data: SubscriptionUpdate,
    request: Request,
    response: Response,
    session: SessionDep,
    principal: WebhookManager,
    if_match: IfMatch = None,
) -> SubscriptionUpdated:
    """Change the URL (a new secret, shown once) or filters, or re-enable a subscription.

    With `If-Match`, only from that version (412 when stale).
    """
    # The service locks the subscription and reads it afresh before it changes it.
    changed, secret = await service.update(
        session, principal, sub.id, data, request.app.state.settings, if_match=if_match
    )
    response.headers["ETag"] = concurrency.etag(changed.version)
    read = SubscriptionRead.model_validate(changed)
    return SubscriptionUpdated(**read.model_dump(), secret=secret)


@router.delete("/subscriptions/{sub_id}", status_code=204, responses=ERRORS)
async def delete_subscription(
    sub: OwnSubscription, session: SessionDep, principal: WebhookManager
) -> Response:
    """Stop delivering to this endpoint."""
    await service.delete(session, principal, sub.id)
    return Response(status_code=204)


@router.post(
    "/subscriptions/{sub_id}/rotate-secret", response_model=SubscriptionWithSecret, responses=ERRORS
)
async def rotate_secret(
    sub: OwnSubscription, request: Request, session: SessionDep, principal: WebhookManager
) -> SubscriptionWithSecret:
    """A new secret (shown once); the old one keeps signing during the overlap."""
    rotated, secret = await service.rotate_secret(
        session, principal, sub.id, request.app.state.settings
    )
    return _with_secret(rotated, secret)


@router.post(
    "/subscriptions/{sub_id}/ping", response_model=DeliveryRead, status_code=202, responses=ERRORS
)
async def ping(sub: OwnSubscription, session: SessionDep) -> DeliveryRead:
    """Queue a `ping` event to this endpoint."""
    return DeliveryRead.model_validate(await service.ping(session, sub))


@router.get("/subscriptions/{sub_id}/deliveries", response_model=DeliveryPage, responses=ERRORS)
async def list_deliveries(
    sub: OwnSubscription,
    session: SessionDep,
    status: DeliveryStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> DeliveryPage:
    """The delivery log: status, attempts, last answer (first 256 bytes), latency."""
    rows, next_cursor = await service.list_deliveries(
        session, sub, status=status, limit=limit, cursor=cursor
    )
    return DeliveryPage(
        items=[DeliveryRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.post("/deliveries/{delivery_id}/retry", response_model=DeliveryRead, responses=ERRORS)
async def retry_delivery(
    delivery_id: uuid.UUID, session: SessionDep, principal: WebhookManager
) -> DeliveryRead:
    """Send a failed or cancelled delivery again now (same `webhook-id`, current state)."""
    return DeliveryRead.model_validate(await service.retry(session, principal, delivery_id))


@router.post("/subscriptions/{sub_id}/replay", response_model=ReplayResult, responses=BODY_ERRORS)
async def replay(
    sub: OwnSubscription, data: ReplayRequest, session: SessionDep, principal: WebhookManager
) -> ReplayResult:
    """Re-send everything since a time, as your agency may see it now, in order."""
    return ReplayResult(queued=await service.replay(session, principal, sub, data.since))
