"""`/api/v1/agencies/{agency_id}/identity-provider`: an agency's own OpenID Connect provider,
set, read and removed by that agency's administrators."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from app.auth import sso
from app.auth.deps import AuthContextDep
from app.auth.sso_schemas import IdentityProviderRead, IdentityProviderUpdate
from app.authz.deps import CurrentPrincipal
from app.core.db import SessionDep
from app.core.errors import problem_responses

router = APIRouter(prefix="/api/v1/agencies/{agency_id}", tags=["agencies"])
ERRORS = problem_responses(401, 403, 404, 422)
BODY_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)


@router.put(
    "/identity-provider",
    response_model=IdentityProviderRead,
    responses=BODY_ERRORS | {201: {"model": IdentityProviderRead}},
)
async def put_identity_provider(
    agency_id: uuid.UUID,
    data: IdentityProviderUpdate,
    session: SessionDep,
    principal: CurrentPrincipal,
    ctx: AuthContextDep,
    response: Response,
) -> IdentityProviderRead:
    """Set the agency's single sign-on provider (its administrators): 201 when new, 200 when
    replaced. The client secret may be left out to keep the stored one."""
    provider, created = await sso.set_provider(
        session, principal, agency_id, data, settings=ctx.settings
    )
    if created:
        response.status_code = 201
    return sso.read_model(ctx.settings, provider)


@router.get("/identity-provider", response_model=IdentityProviderRead, responses=ERRORS)
async def get_identity_provider(
    agency_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal, ctx: AuthContextDep
) -> IdentityProviderRead:
    """The agency's single sign-on provider (never its client secret)."""
    provider = await sso.get_provider(session, principal, agency_id)
    return sso.read_model(ctx.settings, provider)


@router.delete("/identity-provider", status_code=204, responses=ERRORS)
async def delete_identity_provider(
    agency_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Remove the agency's single sign-on provider; its users log in with passwords again."""
    await sso.delete_provider(session, principal, agency_id)
    return Response(status_code=204)
