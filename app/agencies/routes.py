"""`/api/v1`: agencies, users, API clients and `me`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from app.agencies import invitations, password_routes, service
from app.agencies.models import AgencyStatus
from app.agencies.schemas import (
    AgencyCreate,
    AgencyPage,
    AgencyRead,
    AgencyUpdate,
    ApiClientCreate,
    ApiClientPage,
    ApiClientRead,
    ApiClientRotated,
    ApiClientWithSecret,
    InvitationCreate,
    InvitationRead,
    MeRead,
    SecretRotation,
    SetPassword,
    UserCreate,
    UserPage,
    UserRead,
    UserUpdate,
)
from app.authz.deps import CurrentPrincipal
from app.core.db import SessionDep
from app.core.deps import HashingDep
from app.core.errors import problem_responses
from app.core.idempotency import IdempotencyKey, idempotent
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.core.schemas import AgencyCountryCode

router = APIRouter(prefix="/api/v1")

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")]
Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` of a page.")]
READ_ERRORS = problem_responses(401, 403, 404, 422)
WRITE_ERRORS = problem_responses(401, 403, 404, 409, 422)
# Routes with a JSON body also answer 400 when it is not valid JSON or not UTF-8
# (app/core/errors.py); Schemathesis found that status undocumented.
BODY_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)


@router.get("/me", response_model=MeRead, tags=["agencies"], responses=problem_responses(401))
async def read_me(session: SessionDep, principal: CurrentPrincipal) -> MeRead:
    """Who the caller is: user or client, role, scopes and agency."""
    agency = await service.get_agency(session, principal.agency_id)
    return MeRead(
        kind=principal.kind,
        id=principal.id,
        name=principal.name,
        role=principal.role,
        scopes=sorted(principal.scopes),
        agency=AgencyRead.model_validate(agency),
    )


# --- agencies ---------------------------------------------------------------------------


@router.post(
    "/agencies",
    response_model=AgencyRead,
    status_code=201,
    tags=["agencies"],
    responses=BODY_ERRORS,
)
async def create_agency(
    data: AgencyCreate,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Register an agency (platform administrators)."""

    async def run() -> AgencyRead:
        return AgencyRead.model_validate(await service.create_agency(session, principal, data))

    async def reread(first: dict[str, Any]) -> AgencyRead:
        return AgencyRead.model_validate(await service.get_agency(session, uuid.UUID(first["id"])))

    return await idempotent(
        session, principal, request, idempotency_key, status_code=201, run=run, reread=reread
    )


@router.get("/agencies", response_model=AgencyPage, tags=["agencies"], responses=READ_ERRORS)
async def list_agencies(
    session: SessionDep,
    _principal: CurrentPrincipal,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    country: Annotated[AgencyCountryCode | None, Query()] = None,
    status: AgencyStatus | None = None,
) -> AgencyPage:
    """The directory of agencies, oldest first."""
    rows, next_cursor = await service.list_agencies(
        session, limit=limit, cursor=cursor, country=country, status=status
    )
    return AgencyPage(items=[AgencyRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get(
    "/agencies/{agency_id}", response_model=AgencyRead, tags=["agencies"], responses=READ_ERRORS
)
async def get_agency(
    agency_id: uuid.UUID, session: SessionDep, _principal: CurrentPrincipal
) -> AgencyRead:
    """One agency of the directory (any signed-in principal)."""
    return AgencyRead.model_validate(await service.get_agency(session, agency_id))


@router.patch(
    "/agencies/{agency_id}", response_model=AgencyRead, tags=["agencies"], responses=BODY_ERRORS
)
async def update_agency(
    agency_id: uuid.UUID, data: AgencyUpdate, session: SessionDep, principal: CurrentPrincipal
) -> AgencyRead:
    """Change an agency; `status: suspended` locks out its users and clients."""
    agency = await service.update_agency(session, principal, agency_id, data)
    return AgencyRead.model_validate(agency)


@router.post(
    "/agencies/{agency_id}/invitation",
    response_model=InvitationRead,
    status_code=201,
    tags=["agencies"],
    responses=BODY_ERRORS,
)
async def invite_first_admin(
    agency_id: uuid.UUID,
    data: InvitationCreate,
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    hashing: HashingDep,
) -> JSONResponse:
    """Invite an agency's first `agency_admin` (platform administrators); the one-time
    set-password link is shown this once."""
    settings = request.app.state.settings
    user, token, expires_at = await invitations.invite_first_admin(
        session,
        principal,
        agency_id,
        data,
        hashing=hashing,
        ttl_seconds=settings.invitation_ttl_seconds,
    )
    body = InvitationRead(
        user=UserRead.model_validate(user),
        token=token,
        set_password_url=invitations.set_password_url(settings.public_url),
        expires_at=expires_at,
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"}
    )


# Under /auth, where a new user goes with the link's token; served here, by the
# invitations it redeems, so the auth package does not reach into agencies' services.
@router.post(
    "/auth/set-password", status_code=204, tags=["auth"], responses=problem_responses(400, 422)
)
async def set_password(data: SetPassword, session: SessionDep, hashing: HashingDep) -> Response:
    """Set your own password with a one-time link's token (an invitation or a reset)."""
    await invitations.set_password(session, data, hashing=hashing)
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


# --- users ------------------------------------------------------------------------------


@router.post(
    "/agencies/{agency_id}/users",
    response_model=UserRead,
    status_code=201,
    tags=["users"],
    responses=BODY_ERRORS,
)
async def create_user(
    agency_id: uuid.UUID,
    data: UserCreate,
    session: SessionDep,
    principal: CurrentPrincipal,
    hashing: HashingDep,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Add a user to the agency."""

    async def run() -> UserRead:
        user = await service.create_user(session, principal, agency_id, data, hashing=hashing)
        return UserRead.model_validate(user)

    async def reread(first: dict[str, Any]) -> UserRead:
        user = await service.get_user(session, principal, uuid.UUID(first["id"]))
        return UserRead.model_validate(user)

    return await idempotent(
        session, principal, request, idempotency_key, status_code=201, run=run, reread=reread
    )


@router.get(
    "/agencies/{agency_id}/users", response_model=UserPage, tags=["users"], responses=READ_ERRORS
)
async def list_users(
    agency_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> UserPage:
    """The agency's users, oldest first."""
    rows, next_cursor = await service.list_users(
        session, principal, agency_id, limit=limit, cursor=cursor
    )
    return UserPage(items=[UserRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/users/{user_id}", response_model=UserRead, tags=["users"], responses=READ_ERRORS)
async def get_user(
    user_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> UserRead:
    """One user."""
    return UserRead.model_validate(await service.get_user(session, principal, user_id))


@router.patch("/users/{user_id}", response_model=UserRead, tags=["users"], responses=BODY_ERRORS)
async def update_user(
    user_id: uuid.UUID, data: UserUpdate, session: SessionDep, principal: CurrentPrincipal
) -> UserRead:
    """Change a user's name, role or active flag (a new role ends the user's sessions)."""
    user = await service.update_user(session, principal, user_id, data)
    return UserRead.model_validate(user)


@router.delete("/users/{user_id}", status_code=204, tags=["users"], responses=WRITE_ERRORS)
async def delete_user(
    user_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Close a user's account; their sessions end at once."""
    await service.delete_user(session, principal, user_id)
    return Response(status_code=204)


# --- API clients ------------------------------------------------------------------------


def _with_secret(client: object, secret: str) -> ApiClientWithSecret:
    read = ApiClientRead.model_validate(client)
    return ApiClientWithSecret(**read.model_dump(), client_secret=secret)


@router.post(
    "/agencies/{agency_id}/clients",
    response_model=ApiClientWithSecret,
    status_code=201,
    tags=["clients"],
    responses=BODY_ERRORS,
)
async def create_client(
    agency_id: uuid.UUID, data: ApiClientCreate, session: SessionDep, principal: CurrentPrincipal
) -> ApiClientWithSecret:
    """Register an API client; `client_secret` is shown this once."""
    client, secret = await service.create_client(session, principal, agency_id, data)
    return _with_secret(client, secret)


@router.get(
    "/agencies/{agency_id}/clients",
    response_model=ApiClientPage,
    tags=["clients"],
    responses=READ_ERRORS,
)
async def list_clients(
    agency_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ApiClientPage:
    """The agency's API clients (never their secrets)."""
    rows, next_cursor = await service.list_clients(
        session, principal, agency_id, limit=limit, cursor=cursor
    )
    return ApiClientPage(items=list(rows), next_cursor=next_cursor)


@router.post(
    "/clients/{client_id}/rotate-secret",
    response_model=ApiClientRotated,
    tags=["clients"],
    responses=BODY_ERRORS,
)
async def rotate_client_secret(
    client_id: uuid.UUID,
    session: SessionDep,
    principal: CurrentPrincipal,
    data: SecretRotation | None = None,
) -> JSONResponse:
    """Issue a new secret, shown this once; the old one stops at once, or after
    `overlap_seconds` (its access tokens with it)."""
    overlap = data.overlap_seconds if data else 0
    client, secret = await service.rotate_client_secret(
        session, principal, client_id, overlap_seconds=overlap
    )
    body = ApiClientRotated(
        **_with_secret(client, secret).model_dump(),
        previous_secret_expires_at=client.previous_secret_expires_at,
    )
    return JSONResponse(body.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.delete("/clients/{client_id}", status_code=204, tags=["clients"], responses=WRITE_ERRORS)
async def delete_client(
    client_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Revoke an API client and every token it holds."""
    await service.delete_client(session, principal, client_id)
    return Response(status_code=204)


router.include_router(password_routes.router)
