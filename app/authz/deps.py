"""The typed principal dependencies: `CurrentPrincipal`, `BasicOrBearerPrincipal`, scopes.

Turning a credential into a principal needs the auth package (tokens, users, clients),
which sits above every domain package that has routes. So this module only declares
what it needs, an `Authenticator`, and reads the one the app installed on its state
(`install_authenticator`, called by `create_app`). An app without one fails closed: a
RuntimeError on first use, never an anonymous principal.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, Request, Security
from fastapi.openapi.models import OAuthFlowClientCredentials, OAuthFlowPassword, OAuthFlows
from fastapi.security import OAuth2
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz import scopes
from app.authz.principal import Principal, Scope
from app.core.db import SessionDep

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


# Both take the principal from `get_principal` and name their scope on a second use of
# the OAuth2 scheme: FastAPI caches a dependency per (callable, scopes), so naming the
# scope on `get_principal` itself would authenticate again for each scope a route
# declares, where this way every route authenticates once, whatever it takes.
@functools.cache
def RequireScope(scope: Scope) -> Any:
    """A bearer principal that holds `scope` (else 403), the scope shown in OpenAPI.

    `principal: Annotated[Principal, RequireScope(Scope.alerts_write)]`: the OpenAPI
    security requirement then names the scope, not only the OAuth2 scheme. For a scope
    checked before anything is loaded; see `DeferredScope` for one checked after.
    """

    # Defaults, not `Annotated`: this module's annotations are strings, and `scope` is
    # a closure variable they could not name.
    async def require(
        principal: Principal = Depends(get_principal),
        _named: str | None = Security(oauth2_scheme, scopes=[scope.value]),
    ) -> Principal:
        scopes.require_scope(principal, scope)
        return principal

    return Depends(require)


@functools.cache
def DeferredScope(scope: Scope) -> Any:
    """The bearer principal, `scope` shown in OpenAPI but checked by the service.

    For a route whose guard loads its row first: a caller that may not see the row is
    answered 404, and only one that may is refused 403 without `scope` (the service's
    `scopes.require_scope` or a policy function built on it).
    """

    async def named(
        principal: Principal = Depends(get_principal),
        _named: str | None = Security(oauth2_scheme, scopes=[scope.value]),
    ) -> Principal:
        return principal

    return Depends(named)
