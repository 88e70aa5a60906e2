"""The auth package's `Authenticator`: bearer tokens and HTTP Basic clients → principals.

Routes take `CurrentPrincipal` and `BasicOrBearerPrincipal` from `app.authz.deps`;
`create_app` installs `TokenAuthenticator` there, so the domain packages below auth get
live principals without importing it.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from app.auth import credentials, principals
from app.auth.context import AuthContext, kept_refusal
from app.authz.principal import Principal
from app.core.errors import Unauthorized


# Async on purpose: FastAPI runs a plain `def` dependency in its thread pool, a thread
# hand-off on every request for a dictionary look-up.
async def get_auth_context(request: Request) -> AuthContext:
    """The app's settings, key ring and password hashing."""
    return request.app.state.auth


AuthContextDep = Annotated[AuthContext, Depends(get_auth_context)]


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


class TokenAuthenticator:
    """Resolves credentials with the `AuthContext` on the app's state at each request.

    Read per request, not kept: tests swap the context (its clock) on a running app.
    """

    async def bearer(
        self, request: Request, session: AsyncSession, authorization: str | None
    ) -> Principal:
        """The caller, from `Authorization: Bearer <token>`; 401 unless the token is perfect."""
        if not authorization:
            raise Unauthorized("Authentication required.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Use `Authorization: Bearer <access token>`.")
        ctx = await get_auth_context(request)
        return await principals.principal_from_token(
            session,
            ctx.keys,
            token.strip(),
            now=ctx.clock(),
            platform_requires_mfa=ctx.settings.require_mfa,
        )

    async def basic_or_bearer(self, request: Request, session: AsyncSession) -> Principal:
        """The caller from a bearer token, or an API client's id and secret over HTTP Basic."""
        ctx = await get_auth_context(request)
        header = request.headers.get("authorization")
        scheme = (header or "").partition(" ")[0].lower()
        if scheme == "basic":
            creds = basic_credentials(header)
            if creds is None or not creds[0] or not creds[1]:
                raise Unauthorized("Malformed HTTP Basic credentials.")
            # A failure's audit record and back-off count are kept, then it is refused.
            async with kept_refusal(session):
                return await credentials.basic_client_principal(
                    session, ctx, client_id=creds[0], client_secret=creds[1]
                )
        if scheme == "bearer" and header and header.partition(" ")[2].strip():
            return await principals.principal_from_token(
                session,
                ctx.keys,
                header.partition(" ")[2].strip(),
                now=ctx.clock(),
                platform_requires_mfa=ctx.settings.require_mfa,
            )
        raise Unauthorized("Use HTTP Basic with an API client's id and secret, or a bearer token.")
