"""Health probes and request ids."""

from __future__ import annotations

import httpx

from app.main import create_app
from tests.conftest import settings_for


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def test_readyz_reports_unreachable_database(tmp_path) -> None:
    # A database path inside a missing directory cannot be opened.
    settings = settings_for(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        answer = await c.get("/readyz")
    await app.state.db.dispose()
    assert answer.status_code == 503
    assert answer.headers["content-type"] == "application/problem+json"


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert made.headers["x-request-id"] != "bad id\twith spaces"
    assert len(made.headers["x-request-id"]) == 32


async def test_problem_carries_request_id(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/me", headers={"X-Request-ID": "trace-me-1"})
    assert answer.status_code == 401
    assert answer.json()["request_id"] == "trace-me-1"
