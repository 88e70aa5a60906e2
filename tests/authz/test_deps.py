"""The principal dependencies: the installed authenticator decides, none installed fails closed."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.deps import CurrentPrincipal, DeferredScope, RequireScope, install_authenticator
from app.authz.principal import Principal, Role, Scope
from app.core.errors import Unauthorized, install_error_handlers

READER = Principal(
    kind="user",
    id=uuid.uuid4(),
    agency_id=uuid.uuid4(),
    role=Role.reader,
    scopes=frozenset({Scope.alerts_read}),
    name="reader@example.org",
    token_id="t",
)


class _Session:
    async def rollback(self) -> None:
        pass

    async def commit(self) -> None:
        pass


class _Database:
    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[_Session]:
        yield _Session()


class _OneUser:
    """Knows one bearer token, `good`; counts how often it is asked."""

    def __init__(self) -> None:
        self.asked = 0

    async def bearer(
        self, request: Request, session: AsyncSession, authorization: str | None
    ) -> Principal:
        self.asked += 1
        if authorization != "Bearer good":
            raise Unauthorized()
        return READER

    async def basic_or_bearer(self, request: Request, session: AsyncSession) -> Principal:
        return await self.bearer(request, session, request.headers.get("authorization"))


def _app(*, authenticator: _OneUser | None) -> FastAPI:
    app = FastAPI()
    app.state.db = _Database()
    if authenticator is not None:
        install_error_handlers(app)  # else the RuntimeError reaches the test
        install_authenticator(app, authenticator)

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> str:
        return principal.name

    @app.get("/read")
    async def read(principal: Annotated[Principal, RequireScope(Scope.alerts_read)]) -> str:
        return principal.name

    @app.get("/write")
    async def write(principal: Annotated[Principal, RequireScope(Scope.alerts_write)]) -> str:
        return principal.name

    @app.get("/later")
    async def later(principal: Annotated[Principal, DeferredScope(Scope.alerts_write)]) -> str:
        return principal.name

    @app.get("/all")
    async def all_of_them(
        me: CurrentPrincipal,
        reader: Annotated[Principal, RequireScope(Scope.alerts_read)],
        writer: Annotated[Principal, DeferredScope(Scope.alerts_write)],
    ) -> str:
        return me.name if me is reader is writer else "three principals"

    return app


async def _get(app: FastAPI, path: str, token: str | None = "good") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers)


async def test_the_installed_authenticator_decides() -> None:
    app = _app(authenticator=_OneUser())
    assert (await _get(app, "/me")).json() == READER.name
    assert (await _get(app, "/me", token="bad")).status_code == 401
    assert (await _get(app, "/me", token=None)).status_code == 401


async def test_require_scope_refuses_without_the_scope_and_shows_it() -> None:
    app = _app(authenticator=_OneUser())
    assert (await _get(app, "/read")).json() == READER.name
    refused = await _get(app, "/write")
    assert refused.status_code == 403
    assert "alerts:write" in refused.json()["detail"]
    assert (await _get(app, "/write", token="bad")).status_code == 401
    paths = app.openapi()["paths"]
    assert paths["/me"]["get"]["security"] == [{"OAuth2": []}]
    assert paths["/write"]["get"]["security"] == [{"OAuth2": ["alerts:write"]}]


async def test_no_authenticator_installed_fails_closed() -> None:
    with pytest.raises(RuntimeError, match="authenticator"):
        await _get(_app(authenticator=None), "/me")


async def test_deferred_scope_shows_the_scope_and_leaves_the_check_to_the_service() -> None:
    app = _app(authenticator=_OneUser())
    assert (await _get(app, "/later")).json() == READER.name  # no alerts:write, not refused
    assert (await _get(app, "/later", token="bad")).status_code == 401
    paths = app.openapi()["paths"]
    assert paths["/later"]["get"]["security"] == [{"OAuth2": ["alerts:write"]}]


async def test_a_route_authenticates_once_whatever_scopes_it_names() -> None:
    authenticator = _OneUser()
    app = _app(authenticator=authenticator)
    assert (await _get(app, "/all")).json() == READER.name
    assert authenticator.asked == 1
    paths = app.openapi()["paths"]
    assert paths["/all"]["get"]["security"] == [{"OAuth2": ["alerts:read", "alerts:write"]}]
