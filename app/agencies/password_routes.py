"""`/api/v1`: a user's password after the account exists (reset links, own change).

Included by `app.agencies.routes` under its prefix.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.agencies import invitations, passwords
from app.agencies.schemas import PasswordChange, PasswordResetRead, UserRead
from app.authz.deps import CurrentPrincipal
from app.core.db import SessionDep
from app.core.deps import HashingDep
from app.core.errors import problem_responses

router = APIRouter()


@router.post(
    "/users/{user_id}/password-reset",
    response_model=PasswordResetRead,
    status_code=201,
    tags=["users"],
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def reset_password(
    user_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    hashing: HashingDep,
) -> JSONResponse:
    """Issue a one-time set-password link for a user, shown this once; the user's sessions
    end and their password stops until they choose a new one with it."""
    settings = request.app.state.settings
    user, token, expires_at = await passwords.issue_password_reset(
        session,
        principal,
        user_id,
        hashing=hashing,
        ttl_seconds=settings.invitation_ttl_seconds,
    )
    body = PasswordResetRead(
        user=UserRead.model_validate(user),
        token=token,
        set_password_url=invitations.set_password_url(settings.public_url),
        expires_at=expires_at,
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"}
    )


@router.post(
    "/me/password",
    status_code=204,
    tags=["agencies"],
    responses=problem_responses(400, 401, 403, 422, 429),
)
async def change_own_password(
    data: PasswordChange, request: Request, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Change your own password (users); every session and token of yours ends, this one
    included: log in again with the new password."""
    await passwords.change_own_password(session, request, principal, data)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})
