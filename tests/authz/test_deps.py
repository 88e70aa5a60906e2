"""The principal dependencies on the real app: its authenticator decides, none fails closed.

Routes are added to the app `create_app` builds, on the test's database; tokens come from
the real token endpoint.
"""

from __future__ import annotations

from typing import Annotated

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.deps import Authenticator, CurrentPrincipal, DeferredScope, RequireScope
from app.authz.principal import Principal, Role, Scope
from app.core.db import Database
from tests.factories import bearer, make_world


def _probe_routes(app: FastAPI) -> None:
    @app.get("/probe/me")
    async def me(principal: CurrentPrincipal) -> str:
        return principal.name

    @app.get("/probe/read")
    async def read(principal: Annotated[Principal, RequireScope(Scope.alerts_read)]) -> str:
        return principal.name

    @app.get("/probe/write")
    async def write(principal: Annotated[Principal, RequireScope(Scope.alerts_write)]) -> str:
        return principal.name

    @app.get("/probe/later")
    async def later(principal: Annotated[Principal, DeferredScope(Scope.alerts_write)]) -> str:
        return principal.name

    @app.get("/probe/all")
    async def all_of_them(
        me: CurrentPrincipal,
        reader: Annotated[Principal, RequireScope(Scope.alerts_read)],
        writer: Annotated[Principal, DeferredScope(Scope.alerts_write)],
    ) -> str:
        return me.name if me is reader is writer else "three principals"

    app.openapi_schema = None


class _Counting:
    """The app's own authenticator, counting how often a request asks it."""

    def __init__(self, inner: Authenticator) -> None:
        self.inner = inner
        self.asked = 0

    async def bearer(
        self, request: Request, session: AsyncSession, authorization: str | None
    ) -> Principal:
        self.asked += 1
        return await self.inner.bearer(request, session, authorization)

    async def basic_or_bearer(self, request: Request, session: AsyncSession) -> Principal:
        self.asked += 1
        return await self.inner.basic_or_bearer(request, session)


@pytest.fixture
async def reader(client: httpx.AsyncClient, db: Database, app: FastAPI) -> tuple[str, dict]:
    """A reader of Kenya, logged in: its e-mail and its bearer headers."""
    _probe_routes(app)
    world = await make_world(
        client, db, app.state.auth.hashing, roles=(Role.reader,), countries=("KE",)
    )
    actor = world["KE_reader"]
    assert actor.user is not None
    return actor.user.email, actor.headers


async def test_the_installed_authenticator_decides(
    client: httpx.AsyncClient, reader: tuple[str, dict]
) -> None:
    email, headers = reader
    assert (await client.get("/probe/me", headers=headers)).json() == email
    assert (await client.get("/probe/me", headers=bearer("not-a-token"))).status_code == 401
    assert (await client.get("/probe/me")).status_code == 401


async def test_require_scope_refuses_without_the_scope_and_shows_it(
    client: httpx.AsyncClient, app: FastAPI, reader: tuple[str, dict]
) -> None:
    email, headers = reader
    assert (await client.get("/probe/read", headers=headers)).json() == email
    refused = await client.get("/probe/write", headers=headers)
    assert refused.status_code == 403
    assert "alerts:write" in refused.json()["detail"]
    assert (await client.get("/probe/write", headers=bearer("not-a-token"))).status_code == 401
    paths = app.openapi()["paths"]
    assert paths["/probe/me"]["get"]["security"] == [{"OAuth2": []}]
    assert paths["/probe/write"]["get"]["security"] == [{"OAuth2": ["alerts:write"]}]


async def test_no_authenticator_installed_fails_closed(
    client: httpx.AsyncClient,
    app: FastAPI,
    reader: tuple[str, dict],
    caplog: pytest.LogCaptureFixture,
) -> None:
    email, headers = reader
    del app.state.authenticator
    refused = await client.get("/probe/me", headers=headers)
    assert refused.status_code == 500
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert email not in refused.text
    assert "No authenticator installed" in caplog.text


async def test_deferred_scope_shows_the_scope_and_leaves_the_check_to_the_service(
    client: httpx.AsyncClient, app: FastAPI, reader: tuple[str, dict]
) -> None:
    email, headers = reader
    # A reader has no alerts:write, and is not refused here: the service checks later.
    assert (await client.get("/probe/later", headers=headers)).json() == email
    assert (await client.get("/probe/later", headers=bearer("not-a-token"))).status_code == 401
    paths = app.openapi()["paths"]
    assert paths["/probe/later"]["get"]["security"] == [{"OAuth2": ["alerts:write"]}]


async def test_a_route_authenticates_once_whatever_scopes_it_names(
    client: httpx.AsyncClient, app: FastAPI, reader: tuple[str, dict]
) -> None:
    email, headers = reader
    counting = _Counting(app.state.authenticator)
    app.state.authenticator = counting
    assert (await client.get("/probe/all", headers=headers)).json() == email
    assert counting.asked == 1
    paths = app.openapi()["paths"]
    assert paths["/probe/all"]["get"]["security"] == [{"OAuth2": ["alerts:read", "alerts:write"]}]
