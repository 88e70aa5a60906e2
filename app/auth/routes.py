"""`/api/v1/auth`: the OAuth2 token and revocation endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from app.auth import grants
from app.auth.context import OAuthError, kept_refusal
from app.auth.deps import AuthContextDep, basic_credentials
from app.auth.schemas import PasswordField, TokenResponse, UsernameField
from app.core.db import SessionDep
from app.core.errors import problem_responses

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.post(
    "/token",
    response_model=TokenResponse,
    response_model_exclude_none=True,
    responses=problem_responses(400, 401, 422),
)
async def issue_token(
    request: Request,
    session: SessionDep,
    ctx: AuthContextDep,
    grant_type: Annotated[str, Form(pattern="^(password|client_credentials|refresh_token)$")],
    username: UsernameField = None,
    password: PasswordField = None,
    refresh_token: Annotated[str | None, Form(max_length=200)] = None,
    client_id: Annotated[str | None, Form(max_length=100)] = None,
    client_secret: Annotated[str | None, Form(max_length=200)] = None,
    scope: Annotated[str | None, Form(max_length=200)] = None,
    otp: Annotated[
        str | None,
        Form(
            max_length=40,
            description="The password grant's second factor: the authenticator's current "
            "code, or one of the recovery codes.",
        ),
    ] = None,
) -> Response:
    """Issue tokens: `password` (users), `client_credentials` (API clients), `refresh_token`."""
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    # A refusal's records (failed login, revoked token family) are kept; it is not cached.
    async with kept_refusal(session, headers=headers):
        if grant_type == "password":
            if not username or not password:
                raise OAuthError("invalid_request", "username and password are required.")
            grant = await grants.password_grant(
                session, ctx, username=username, password=password, otp=otp
            )
        elif grant_type == "client_credentials":
            basic = basic_credentials(request.headers.get("authorization"))
            creds = basic or (client_id, client_secret)
            if not creds[0] or not creds[1]:
                raise OAuthError("invalid_client", "Client authentication failed.", status=401)
            grant = await grants.client_credentials_grant(
                session, ctx, client_id=creds[0], client_secret=creds[1], scope=scope
            )
        else:
            if not refresh_token:
                raise OAuthError("invalid_request", "refresh_token is required.")
            grant = await grants.refresh_grant(session, ctx, refresh_token=refresh_token)
    body = TokenResponse(
        access_token=grant.access_token,
        expires_in=grant.expires_in,
        scope=grant.scope,
        refresh_token=grant.refresh_token,
    )
    return JSONResponse(body.model_dump(exclude_none=True), headers=headers)


@router.post("/revoke", status_code=200, responses=problem_responses(422))
async def revoke_token(
    session: SessionDep,
    ctx: AuthContextDep,
    token: Annotated[str, Form(min_length=1, max_length=4096)],
    # RFC 7009 lets a client send the hint; every token kind is looked up anyway.
    token_type_hint: Annotated[str | None, Form(max_length=40)] = None,  # noqa: ARG001
) -> dict[str, str]:
    """Revoke a refresh or access token (RFC 7009); unknown tokens are not an error."""
    await grants.revoke(session, ctx, token=token)
    return {"status": "revoked"}
