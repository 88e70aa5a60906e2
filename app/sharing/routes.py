"""`/api/v1/sharing-groups` and `/api/v1/agencies/{id}/sharing-policy`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from app.authz.deps import CurrentPrincipal
from app.core import concurrency
from app.core.concurrency import IfMatch
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.idempotency import IdempotencyKey, idempotent
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.sharing import groups, policies
from app.sharing.schemas import (
    SharingGroupCreate,
    SharingGroupPage,
    SharingGroupRead,
    SharingGroupUpdate,
    SharingPolicyBody,
    SharingPolicyRead,
)

router = APIRouter(prefix="/api/v1", tags=["sharing"])
READ_ERRORS = problem_responses(401, 403, 404, 422)
WRITE_ERRORS = problem_responses(401, 403, 404, 409, 422)
# Routes with a JSON body also answer 400 when it is not valid JSON or not UTF-8
# (app/core/errors.py); Schemathesis found that status undocumented.
BODY_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)


@router.post(
    "/sharing-groups", response_model=SharingGroupRead, status_code=201, responses=BODY_ERRORS
)
async def create_group(
    data: SharingGroupCreate,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Create a sharing group owned by your agency."""

    async def run() -> SharingGroupRead:
        group = await groups.create_group(session, principal, data)
        return await groups.group_read(session, principal, group)

    async def reread(first: dict[str, Any]) -> SharingGroupRead:
        group = await groups.get_group(session, principal, uuid.UUID(first["id"]))
        return await groups.group_read(session, principal, group)

    return await idempotent(
        session, principal, request, idempotency_key, status_code=201, run=run, reread=reread
    )


@router.get("/sharing-groups", response_model=SharingGroupPage, responses=READ_ERRORS)
async def list_groups(
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> SharingGroupPage:
    """Groups your agency owns or belongs to."""
    rows, next_cursor = await groups.list_groups(session, principal, limit=limit, cursor=cursor)
    items = [await groups.group_read(session, principal, g) for g in rows]
    return SharingGroupPage(items=items, next_cursor=next_cursor)


@router.get("/sharing-groups/{group_id}", response_model=SharingGroupRead, responses=READ_ERRORS)
async def get_group(
    group_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> SharingGroupRead:
    """One group (its members unless the owner hides them)."""
    group = await groups.get_group(session, principal, group_id)
    return await groups.group_read(session, principal, group)


@router.patch("/sharing-groups/{group_id}", response_model=SharingGroupRead, responses=BODY_ERRORS)
async def update_group(
    group_id: uuid.UUID, data: SharingGroupUpdate, session: SessionDep, principal: CurrentPrincipal
) -> SharingGroupRead:
    """Rename a group or change whether its members are hidden."""
    group = await groups.update_group(session, principal, group_id, data)
    return await groups.group_read(session, principal, group)


@router.delete("/sharing-groups/{group_id}", status_code=204, responses=WRITE_ERRORS)
async def delete_group(
    group_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Retire a group; nobody reads alerts through it any more."""
    await groups.delete_group(session, principal, group_id)
    return Response(status_code=204)


@router.put(
    "/sharing-groups/{group_id}/members/{agency_id}",
    response_model=SharingGroupRead,
    responses=WRITE_ERRORS,
)
async def add_member(
    group_id: uuid.UUID, agency_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> SharingGroupRead:
    """Add an agency to the group."""
    group = await groups.add_member(session, principal, group_id, agency_id)
    return await groups.group_read(session, principal, group)


@router.delete(
    "/sharing-groups/{group_id}/members/{agency_id}",
    response_model=SharingGroupRead,
    responses=WRITE_ERRORS,
)
async def remove_member(
    group_id: uuid.UUID, agency_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> SharingGroupRead:
    """Remove an agency: it loses access to the group's alerts at once."""
    group = await groups.remove_member(session, principal, group_id, agency_id)
    return await groups.group_read(session, principal, group)


@router.get(
    "/agencies/{agency_id}/sharing-policy", response_model=SharingPolicyRead, responses=READ_ERRORS
)
async def get_policy(
    agency_id: uuid.UUID, response: Response, session: SessionDep, principal: CurrentPrincipal
) -> SharingPolicyRead:
    """Your agency's per-kind defaults and ceilings."""
    read = await policies.get_policy(session, principal, agency_id)
    response.headers["ETag"] = concurrency.etag(read.version)
    return read


@router.put(
    "/agencies/{agency_id}/sharing-policy",
    response_model=SharingPolicyRead,
    responses=problem_responses(400, 401, 403, 404, 409, 412, 422),
)
async def put_policy(
    agency_id: uuid.UUID,
    data: SharingPolicyBody,
    response: Response,
    session: SessionDep,
    principal: CurrentPrincipal,
    if_match: IfMatch = None,
) -> SharingPolicyRead:
    """Replace your agency's sharing policy (agency administrators; 412 if `If-Match` is stale)."""
    read = await policies.put_policy(session, principal, agency_id, data, if_match=if_match)
    response.headers["ETag"] = concurrency.etag(read.version)
    return read
