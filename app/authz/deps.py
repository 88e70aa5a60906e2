"""The typed dependencies routes take: `CurrentPrincipal`, `BasicOrBearerPrincipal`, `RequireScope`.

Turning a credential into a principal needs the auth package (tokens, users, clients),
which sits above every domain package that has routes. So this module only declares
what it needs, an `Authenticator`, and reads the one the app installed on its state
(`install_authenticator`, called by `create_app`). An app without one fails closed: a
RuntimeError on first use, never an anonymous principal.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import OAuth2
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.principal import Principal, Scope
from app.core.db import SessionDep
from app.core.errors import Forbidden

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


class Authenticator(Protocol):
    """Who the caller is, from what it presented; every failure is an error, never None."""

    async def bearer(
        self, request: Request, session: AsyncSession, authorization: str | None
    ) -> Principal:
        """The caller of `Authorization: Bearer <token>`; 401 unless the token is perfect."""
        ...

    async def basic_or_bearer(self, request: Request, session: AsyncSession) -> Principal:
        """The caller from a bearer token or an API client's HTTP Basic id and secret."""
        ...


def install_authenticator(app: FastAPI, authenticator: Authenticator) -> None:
    """Make `authenticator` the one every principal dependency of `app` asks."""
    app.state.authenticator = authenticator


def _authenticator(request: Request) -> Authenticator:
    found: Authenticator | None = getattr(request.app.state, "authenticator", None)
    if found is None:
        raise RuntimeError(
            "No authenticator installed: create_app() must call install_authenticator()."
        )
    return found


async def get_principal(
    request: Request,
    session: SessionDep,
    authorization: Annotated[str | None, Depends(oauth2_scheme)],
) -> Principal:
    """The caller, from `Authorization: Bearer <token>`; 401 unless the token is perfect."""
    return await _authenticator(request).bearer(request, session, authorization)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_basic_or_bearer_principal(request: Request, session: SessionDep) -> Principal:
    """The caller from a bearer token, or an API client's id and secret over HTTP Basic."""
    return await _authenticator(request).basic_or_bearer(request, session)


BasicOrBearerPrincipal = Annotated[Principal, Depends(get_basic_or_bearer_principal)]


def RequireScope(scope: Scope) -> Any:
    """A bearer principal that holds `scope` (else 403), the scope shown in OpenAPI.

    `principal: Annotated[Principal, RequireScope(Scope.alerts_write)]`: the OpenAPI
    security requirement then names the scope, not only the OAuth2 scheme.
    """

    # A default, not `Annotated`: this module's annotations are strings, and `scope` is
    # a closure variable they could not name.
    async def require(
        principal: Principal = Security(get_principal, scopes=[scope.value]),
    ) -> Principal:
        if not principal.has_scope(scope):
            raise Forbidden(f"This needs the `{scope.value}` scope.")
        return principal

    return Depends(require)
