"""A pooled PostgreSQL connection the server closed is replaced before a request uses it.

The pool checks each connection it hands out (the driver's own state, then one `SELECT 1`
where `pool_pre_ping` spent three round trips); these tests end the pool's server sessions
with `pg_terminate_backend`, as a restart does, and the next use must still succeed. A path
that dies silently is tested in test_pool_half_open.py.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.db import create_engine
from tests.conftest import settings_for
from tests.factories import Actor


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(url: str, pids: list[int]) -> None:
    """End these server sessions from a connection of a separate engine."""
    other = create_engine(settings_for(url))
    try:
        async with other.connect() as conn:
            for pid in pids:
                await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        await other.dispose()
    await asyncio.sleep(0.3)  # the closed sockets reach the pooled connections' protocol


async def _pool_pids(url: str) -> list[int]:
    """Every other session on the test's database (the app's pool)."""
    other = create_engine(settings_for(url))
    try:
        async with other.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT pid FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            return [int(r[0]) for r in rows]
    finally:
        await other.dispose()


async def test_a_terminated_pooled_connection_is_replaced(backend: str, db_url: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLite has no server that closes connections")
    engine = create_engine(settings_for(db_url))
    try:
        first = await _pid(engine)
        await _terminate(db_url, [first])
        second = await _pid(engine)  # without the checkout check: "connection is closed"
        assert second != first
    finally:
        await engine.dispose()


async def test_requests_succeed_after_the_server_ended_every_pooled_session(
    backend: str, db_url: str, client: httpx.AsyncClient, world: dict[str, Actor]
) -> None:
    if backend != "postgres":
        pytest.skip("SQLite has no server that closes connections")
    headers = world["KE"].headers
    assert (await client.get("/api/v1/alerts", headers=headers)).status_code == 200
    pids = await _pool_pids(db_url)
    assert pids, "the app's pool holds connections"
    await _terminate(db_url, pids)
    for _ in range(3):  # more uses than one connection: each pooled one was closed
        answer = await client.get("/api/v1/alerts", headers=headers)
        assert answer.status_code == 200, answer.text
    assert not set(pids) & set(await _pool_pids(db_url))
