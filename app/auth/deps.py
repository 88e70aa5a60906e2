"""The `CurrentPrincipal` dependency: bearer token → live principal, or 401."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import OAuth2

from app.auth import credentials, principals
from app.auth.context import AuthContext, ErrorAfterCommit
from app.core.db import SessionDep
from app.core.errors import Unauthorized
from app.core.principal import Principal
from app.core.security import PasswordHashing
from app.core.tokens import KeyRing

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path

# Declares both grants in OpenAPI, so Swagger UI's Authorize button can use either.
oauth2_scheme = OAuth2(
    flows=OAuthFlows(
        password=OAuthFlowPassword(tokenUrl=TOKEN_URL),
        clientCredentials=OAuthFlowClientCredentials(tokenUrl=TOKEN_URL),
    ),
    scheme_name="OAuth2",
    description="Bearer access tokens from `POST /api/v1/auth/token`.",
    auto_error=False,
)


# Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread
# hand-off on every request for a dictionary look-up.
async def get_auth_context(request: Request) -> AuthContext:
    """The app's settings, key ring and password hashing."""
    return request.app.state.auth


async def get_hashing(request: Request) -> PasswordHashing:
    """The app's password hasher."""
    return request.app.state.auth.hashing


AuthContextDep = Annotated[AuthContext, Depends(get_auth_context)]
HashingDep = Annotated[PasswordHashing, Depends(get_hashing)]


async def get_principal(
    session: SessionDep,
    ctx: AuthContextDep,
    authorization: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """The caller, from `Authorization: Bearer <token>`; 401 unless the token is perfect."""
    if not authorization:
        raise Unauthorized("Authentication required.")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use `Authorization: Bearer <access token>`.")
    return await principals.principal_from_token(session, ctx.keys, token.strip())


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client id, secret) from `Authorization: Basic …`, or None when it is not that."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return (unquote(client_id), unquote(secret)) if sep else None


async def get_basic_or_bearer_principal(
    request: Request, session: SessionDep, ctx: AuthContextDep
) -> Principal:
    """The caller from a bearer token, or an API client's id and secret over HTTP Basic."""
    header = request.headers.get("authorization")
    scheme = (header or "").partition(" ")[0].lower()
    if scheme == "basic":
        creds = basic_credentials(header)
        if creds is None or not creds[0] or not creds[1]:
            raise Unauthorized("Malformed HTTP Basic credentials.")
        try:
            return await credentials.basic_client_principal(
                session, ctx, client_id=creds[0], client_secret=creds[1]
            )
        except ErrorAfterCommit as exc:
            # Keep the failure's audit record and back-off count, then refuse.
            await session.commit()
            raise exc.error from None
    if scheme == "bearer" and header and header.partition(" ")[2].strip():
        return await principals.principal_from_token(
            session, ctx.keys, header.partition(" ")[2].strip()
        )
    raise Unauthorized("Use HTTP Basic with an API client's id and secret, or a bearer token.")


BasicOrBearerPrincipal = Annotated[Principal, Depends(get_basic_or_bearer_principal)]


__all__ = [
    "AuthContextDep",
    "BasicOrBearerPrincipal",
    "CurrentPrincipal",
    "HashingDep",
    "KeyRing",
]
