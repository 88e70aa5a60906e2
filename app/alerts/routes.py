"""`/api/v1/alerts`: post, read, change, publish, withdraw and query alerts."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import batch, service
from app.alerts import query as alert_query
from app.alerts import read as alert_read
from app.alerts.deps import AlertAuthor, AlertEditor, AlertReader, VisibleAlert
from app.alerts.models import Alert
from app.alerts.schemas import (
    AccessRead,
    AlertCreate,
    AlertPage,
    AlertRead,
    AlertUpdate,
    AudiencePreview,
    AudiencePreviewRequest,
    CountryFilter,
    SerialFilter,
    TagFilter,
    TextQuery,
    WithdrawRequest,
)
from app.authz.principal import Principal
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.idempotency import IdempotencyKey, idempotent
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.core.types import Instant
from app.sharing.handling import AlertKind, AlertStatus, Tlp

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

READ_ERRORS = problem_responses(401, 403, 404, 422)
WRITE_ERRORS = problem_responses(401, 403, 404, 409, 422)
# Routes with a JSON body also answer 400 when it is not valid JSON or not UTF-8
# (app/core/errors.py); Schemathesis found that status undocumented.
BODY_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)


async def _one(session: AsyncSession, principal: Principal, alert: Alert) -> AlertRead:
    return (await alert_read.read_models(session, principal, [alert]))[0]


def _etag(read: AlertRead) -> dict[str, str]:
    return {"ETag": f'"{read.version}"'}


async def _keyed(
    session: AsyncSession,
    principal: Principal,
    request: Request,
    key: str | None,
    status_code: int,
    run: Callable[[], Awaitable[AlertRead]],
) -> JSONResponse:
    """A keyed alert POST: run once; a repeat answers with the alert as the caller may
    read it now (`GET /alerts/{id}`), with its ETag."""

    async def reread(first: Any) -> AlertRead:
        alert = await alert_query.read_alert(session, principal, uuid.UUID(first["id"]))
        return await _one(session, principal, alert)

    return await idempotent(
        session,
        principal,
        request,
        key,
        status_code=status_code,
        run=run,
        reread=reread,
        headers_of=_etag,
    )


@router.post("", response_model=AlertRead, status_code=201, responses=BODY_ERRORS)
async def create_alert(
    request: Request,
    data: Annotated[AlertCreate, Body()],
    session: SessionDep,
    principal: AlertAuthor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Post an alert: a draft, or published at once with `publish: true`."""

    async def run() -> AlertRead:
        return await _one(session, principal, await service.create_alert(session, principal, data))

    return await _keyed(session, principal, request, idempotency_key, 201, run)


@router.post(":batch", response_model=batch.BatchAnswer, responses=BODY_ERRORS)
async def post_batch(
    request: Request,
    data: batch.BatchCreate,
    session: SessionDep,
    principal: AlertAuthor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Post up to 500 alerts at once; each gets the answer `POST /alerts` would give it.

    One transaction: the alerts refused (each with its problem, fields named
    `body.alerts.<index>.…`) leave nothing behind, the others are stored together. Send an
    `Idempotency-Key` to repeat a batch safely.
    """

    async def reread(first: Any) -> batch.BatchAnswer:
        return await batch.reread_batch(session, principal, first)

    async def run() -> batch.BatchAnswer:
        return await batch.post_batch(session, principal, data.alerts)

    return await idempotent(
        session, principal, request, idempotency_key, status_code=200, run=run, reread=reread
    )


@router.get("", response_model=AlertPage, responses=READ_ERRORS)
async def list_alerts(
    session: SessionDep,
    principal: AlertReader,
    kind: AlertKind | None = None,
    status: AlertStatus | None = None,
    country: CountryFilter = None,
    tlp: Tlp | None = None,
    originator: uuid.UUID | None = None,
    tag: TagFilter = None,
    serial: SerialFilter = None,
    q: TextQuery = None,
    occurred_since: Instant | None = None,
    occurred_until: Instant | None = None,
    updated_since: Instant | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """The alerts your agency may see, newest first."""
    filters = alert_query.AlertFilters(
        kind=kind,
        status=status,
        country=country,
        tlp=tlp,
        originator=originator,
        tag=tag,
        serial=serial,
        q=q,
        occurred_since=occurred_since,
        occurred_until=occurred_until,
        updated_since=updated_since,
    )
    rows, next_cursor = await alert_query.list_alerts(
        session, principal, filters, limit=limit, cursor=cursor
    )
    # Plain bodies: FastAPI validates them once, as `AlertPage`, and serialises them.
    return {"items": await alert_read.bodies(session, principal, rows), "next_cursor": next_cursor}


@router.post(
    "/preview-audience",
    response_model=AudiencePreview,
    responses=problem_responses(400, 401, 403, 422),
)
async def preview_audience(
    data: AudiencePreviewRequest, session: SessionDep, principal: AlertAuthor
) -> AudiencePreview:
    """Which agencies would receive an alert with this handling, and why (nothing stored)."""
    return await alert_read.preview_audience(session, principal, data)


@router.get("/{alert_id}", response_model=AlertRead, responses=READ_ERRORS)
async def get_alert(
    alert: VisibleAlert, response: Response, session: SessionDep, principal: AlertReader
) -> AlertRead:
    """One alert (its tombstone if it was withdrawn and you are not its originator)."""
    await alert_query.record_read(session, principal, alert)
    read = await _one(session, principal, alert)
    response.headers.update(_etag(read))
    return read


@router.get("/{alert_id}/access", response_model=AccessRead, responses=READ_ERRORS)
async def explain_access(
    alert: VisibleAlert, session: SessionDep, principal: AlertReader
) -> AccessRead:
    """Which sharing rule lets your agency see this alert."""
    return await alert_read.explain_access(session, principal, alert)


@router.patch(
    "/{alert_id}",
    response_model=AlertRead,
    responses=problem_responses(400, 401, 403, 404, 409, 412, 422, 428),
)
async def update_alert(
    alert: VisibleAlert,
    data: AlertUpdate,
    response: Response,
    session: SessionDep,
    principal: AlertEditor,
    if_match: Annotated[
        str | None, Header(description="The ETag (version) you are changing.")
    ] = None,
) -> AlertRead:
    """Change an alert; send `If-Match` with its current ETag (412 when stale)."""
    # The service locks the alert and reads it afresh before it changes it.
    changed = await service.update_alert(session, principal, alert.id, data, if_match=if_match)
    read = await _one(session, principal, changed)
    response.headers.update(_etag(read))
    return read


@router.post("/{alert_id}/publish", response_model=AlertRead, responses=WRITE_ERRORS)
async def publish_alert(
    alert: VisibleAlert,
    request: Request,
    session: SessionDep,
    principal: AlertEditor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Publish a draft."""

    async def run() -> AlertRead:
        published = await service.publish_alert(session, principal, alert.id)
        return await _one(session, principal, published)

    return await _keyed(session, principal, request, idempotency_key, 200, run)


@router.post("/{alert_id}/withdraw", response_model=AlertRead, responses=BODY_ERRORS)
async def withdraw_alert(
    alert: VisibleAlert,
    data: WithdrawRequest,
    request: Request,
    session: SessionDep,
    principal: AlertEditor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Withdraw a published alert; recipients keep a tombstone with your reason."""

    async def run() -> AlertRead:
        withdrawn = await service.withdraw_alert(session, principal, alert.id, data.reason)
        return await _one(session, principal, withdrawn)

    return await _keyed(session, principal, request, idempotency_key, 200, run)
