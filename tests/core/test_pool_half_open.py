"""A pooled connection whose path to the server died without telling the client.

A stateful firewall, NAT or load balancer that forgets an idle flow answers the next
packet with a reset; the client socket looks open until then, so `is_closed()` is False
at checkout. The checkout check (app/core/db.py::_check_alive) pings it, in one round
trip where `pool_pre_ping` took three, and replaces it. A real TCP proxy between the
engine and PostgreSQL plays the middlebox: no mock of the database or the driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.core.config import Settings
from app.core.db import Database, create_engine
from app.webhooks.delivery.worker import DeliveryWorker
from tests.conftest import settings_for
from tests.factories import Actor


class _Flow:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.forgotten = False

    def reset_client(self) -> None:
        sock = self.client.get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.client.transport.abort()


class Middlebox:
    """Forwards TCP to PostgreSQL; `forget()` drops every flow the way a NAT does."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.flows: list[_Flow] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for flow in self.flows:
            flow.client.transport.abort()
            flow.upstream.transport.abort()
        if self.server is not None:
            self.server.close()

    async def outage(self) -> None:
        """PostgreSQL is unreachable: no new connections, every open one reset."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for flow in self.flows:
            flow.reset_client()
            flow.upstream.transport.abort()

    async def restore(self) -> None:
        """Reachable again, on the same port."""
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    def forget(self) -> None:
        """The server side is closed (the backend exits); the client side hears nothing."""
        for flow in self.flows:
            flow.forgotten = True
            flow.upstream.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        flow = _Flow(writer, up_writer)
        self.flows.append(flow)
        await asyncio.gather(
            self._to_server(reader, flow), self._to_client(up_reader, flow), return_exceptions=True
        )

    async def _to_server(self, reader: asyncio.StreamReader, flow: _Flow) -> None:
        while data := await reader.read(65536):
            if flow.forgotten:
                flow.reset_client()  # an unknown flow: answered with a reset
                return
            flow.upstream.write(data)
        flow.upstream.close()

    async def _to_client(self, reader: asyncio.StreamReader, flow: _Flow) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                flow.client.write(data)
        if not flow.forgotten:
            flow.client.close()


@pytest.fixture
async def middlebox(backend: str, db_url: str) -> AsyncIterator[Middlebox]:
    if backend != "postgres":
        pytest.skip("SQLite has no network path")
    url = make_url(db_url)
    box = Middlebox(url.host or "127.0.0.1", url.port or 5432)
    await box.start()
    yield box
    await box.close()


def _through(db_url: str, box: Middlebox) -> str:
    return make_url(db_url).set(host="127.0.0.1", port=box.port).render_as_string(False)


async def _pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_pre_ping_replaces_a_connection_behind_a_forgotten_flow(
    db_url: str, middlebox: Middlebox
) -> None:
    """The control: what the engine did before the change."""
    engine = create_async_engine(_through(db_url, middlebox), pool_pre_ping=True)
    try:
        first = await _pid(engine)
        middlebox.forget()
        await asyncio.sleep(0.3)
        assert await _pid(engine) != first
    finally:
        await engine.dispose()


async def test_the_app_engine_replaces_a_connection_behind_a_forgotten_flow(
    db_url: str, middlebox: Middlebox
) -> None:
    engine = create_engine(settings_for(_through(db_url, middlebox)))
    try:
        first = await _pid(engine)
        middlebox.forget()
        await asyncio.sleep(0.3)
        assert await _pid(engine) != first
    finally:
        await engine.dispose()


@pytest.fixture
def settings(db_url: str, middlebox: Middlebox) -> Settings:
    """The app reaches PostgreSQL through the middlebox."""
    return settings_for(_through(db_url, middlebox))


async def test_a_request_after_the_flows_were_forgotten_succeeds(
    client: httpx.AsyncClient, world: dict[str, Actor], middlebox: Middlebox
) -> None:
    headers = world["KE"].headers
    assert (await client.get("/api/v1/alerts", headers=headers)).status_code == 200
    middlebox.forget()
    await asyncio.sleep(0.3)
    answer = await client.get("/api/v1/alerts", headers=headers)
    assert answer.status_code == 200, answer.text


@contextlib.asynccontextmanager
async def _running_worker(
    db_url: str, box: Middlebox
) -> AsyncIterator[tuple[DeliveryWorker, asyncio.Task[None]]]:
    """A delivery worker reaching PostgreSQL through the middlebox, running until the end."""
    settings = settings_for(_through(db_url, box), webhook_poll_seconds=0.1)
    db = Database(settings)
    worker = DeliveryWorker(db, settings)
    running = asyncio.create_task(worker.run())
    try:
        yield worker, running
    finally:
        worker.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(running, 10)
        await db.dispose()


async def test_the_delivery_worker_keeps_running_after_the_flows_were_forgotten(
    db_url: str, middlebox: Middlebox
) -> None:
    async with _running_worker(db_url, middlebox) as (_worker, running):
        await asyncio.sleep(0.5)  # a few empty claims: the pool holds their connections
        assert not running.done()
        middlebox.forget()
        await asyncio.sleep(1.0)  # more claims, on the pooled connections
        assert not running.done(), running.exception()


async def test_the_delivery_worker_outlives_a_database_outage(
    db_url: str, middlebox: Middlebox
) -> None:
    """Its claims fail while PostgreSQL is unreachable; it keeps trying, and claims again."""
    async with _running_worker(db_url, middlebox) as (worker, running):
        await asyncio.sleep(0.5)
        await middlebox.outage()
        await asyncio.sleep(1.0)  # claims refused at connect, several times
        assert not running.done(), running.exception()
        await middlebox.restore()
        await asyncio.sleep(0.5)
        assert not running.done(), running.exception()
        assert await worker.run_once() == 0  # the database answers the worker again
