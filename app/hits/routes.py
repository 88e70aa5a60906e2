"""`/api/v1/hits`: matches between agencies' records of the same item."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts.deps import AlertReader
from app.authz.principal import Principal
from app.core import concurrency
from app.core.concurrency import IfMatch
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.hits import read as hit_read
from app.hits import service
from app.hits.deps import HitActor, HitParty
from app.hits.models import Hit, HitStatus
from app.hits.schemas import HitPage, HitRead

router = APIRouter(prefix="/api/v1/hits", tags=["hits"])
ERRORS = problem_responses(401, 403, 404, 422)
DISCLOSE_ERRORS = problem_responses(401, 403, 404, 409, 422)
DECISION_ERRORS = problem_responses(401, 403, 404, 409, 412, 422)


@router.get("", response_model=HitPage, responses=ERRORS)
async def list_hits(
    session: SessionDep,
    principal: AlertReader,
    status: HitStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> HitPage:
    """Hits on your agency's records, newest first."""
    rows, next_cursor = await hit_read.list_hits(
        session, principal, status=status, limit=limit, cursor=cursor
    )
    return HitPage(
        items=await hit_read.read_models(session, principal, rows), next_cursor=next_cursor
    )


@router.get("/{hit_id}", response_model=HitRead, responses=ERRORS)
async def get_hit(
    hit: HitParty, response: Response, session: SessionDep, principal: AlertReader
) -> HitRead:
    """One hit."""
    read = await hit_read.read_one(session, principal, hit)
    response.headers["ETag"] = concurrency.etag(read.version)
    return read


async def _decide(
    session: AsyncSession,
    principal: Principal,
    hit: Hit,
    status: service.Decision,
    if_match: str | None,
    response: Response,
) -> HitRead:
    # The service locks the hit and reads it afresh before it changes it.
    changed = await service.set_status(session, principal, hit.id, status, if_match=if_match)
    read = await hit_read.read_one(session, principal, changed)
    response.headers["ETag"] = concurrency.etag(read.version)
    return read


@router.post("/{hit_id}/confirm", response_model=HitRead, responses=DECISION_ERRORS)
async def confirm_hit(
    hit: HitParty,
    response: Response,
    session: SessionDep,
    principal: HitActor,
    if_match: IfMatch = None,
) -> HitRead:
    """Mark the hit as a real match, for your side (409 if it is so already)."""
    return await _decide(session, principal, hit, HitStatus.confirmed, if_match, response)


@router.post("/{hit_id}/dismiss", response_model=HitRead, responses=DECISION_ERRORS)
async def dismiss_hit(
    hit: HitParty,
    response: Response,
    session: SessionDep,
    principal: HitActor,
    if_match: IfMatch = None,
) -> HitRead:
    """Mark the hit as not a match, for your side (409 if it is so already)."""
    return await _decide(session, principal, hit, HitStatus.dismissed, if_match, response)


@router.post("/{hit_id}/disclose", response_model=HitRead, responses=DISCLOSE_ERRORS)
async def disclose_hit(hit: HitParty, session: SessionDep, principal: AlertReader) -> HitRead:
    """Tell the other agency who holds the blind record it matched (never the content)."""
    # The service locks the hit and reads it afresh before it changes it.
    disclosed = await service.disclose(session, principal, hit.id)
    return await hit_read.read_one(session, principal, disclosed)
