"""`/api/v1/me/tokens`: the signed-in user's personal access tokens for scripts."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from app.auth import personal
from app.auth.deps import AuthContextDep
from app.auth.personal_schemas import (
    PersonalTokenCreate,
    PersonalTokenPage,
    PersonalTokenRead,
    PersonalTokenWithSecret,
)
from app.authz.deps import CurrentPrincipal
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT

router = APIRouter(prefix="/api/v1/me/tokens", tags=["auth"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of a page.")]


@router.post(
    "",
    response_model=PersonalTokenWithSecret,
    status_code=201,
    responses=problem_responses(400, 401, 403, 422),
)
async def create_personal_token(
    data: PersonalTokenCreate, session: SessionDep, ctx: AuthContextDep, principal: CurrentPrincipal
) -> JSONResponse:
    """Create a personal access token with some of your scopes; `token` is shown this once."""
    pat, secret = await personal.create_token(
        session, principal, data, now=ctx.clock(), platform_requires_mfa=ctx.settings.require_mfa
    )
    body = PersonalTokenWithSecret(
        **PersonalTokenRead.model_validate(pat).model_dump(), token=secret
    )
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=201,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.get("", response_model=PersonalTokenPage, responses=problem_responses(401, 403, 422))
async def list_personal_tokens(
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> PersonalTokenPage:
    """Your personal access tokens not revoked, newest first (never the tokens themselves)."""
    rows, next_cursor = await personal.list_tokens(session, principal, limit=limit, cursor=cursor)
    return PersonalTokenPage(
        items=[PersonalTokenRead.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.delete("/{token_id}", status_code=204, responses=problem_responses(401, 403, 404, 422))
async def revoke_personal_token(
    token_id: uuid.UUID, session: SessionDep, ctx: AuthContextDep, principal: CurrentPrincipal
) -> Response:
    """Revoke one of your personal access tokens; it stops working at once."""
    await personal.revoke_token(session, principal, token_id, now=ctx.clock())
    return Response(status_code=204)
