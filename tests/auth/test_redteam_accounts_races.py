"""Red team: parallel requests over real HTTP against `tracewire serve` (PostgreSQL when
TRACEWIRE_TEST_POSTGRES_URL is set, else SQLite)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from app.auth.models import LoginThrottle
from tests import live
from tests.factories import make_agency, make_client

N = 8


@pytest.fixture
async def service(db_url, tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    async with live.serve(
        db_url,
        tmp_path,
        RATE_LIMIT_PER_MINUTE="0",
        TOKEN_RATE_LIMIT_PER_MINUTE="0",
        WORKER_IN_PROCESS="false",
        LOGIN_MAX_FAILURES="100",
        PUBLIC_URL="http://127.0.0.1:{port}",
    ) as base:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            yield http


async def test_redteam_parallel_wrong_basic_secrets_are_each_a_401(service, db):
    """FAILS on PostgreSQL today (finding). Attack: wrong HTTP Basic secrets for one API
    client sent at once (TAXII and the API accept Basic). The Basic path reads the
    client's back-off row without a lock and, when none exists yet, each request INSERTs a
    new one: all but one collide on the primary key and answer 500 (DESIGN §10: no 5xx),
    and those failures are not counted on the back-off.

    Expected safe behaviour: every wrong secret is a 401 and none is a 5xx."""
    agency = await make_agency(db)
    api_client, _secret = await make_client(db, agency)
    basic = base64.b64encode(f"{api_client.id}:tws_not-the-secret".encode()).decode()
    headers = {"Authorization": f"Basic {basic}"}
    answers = await asyncio.gather(*(service.get("/taxii2/", headers=headers) for _ in range(N)))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == Counter({401: N}), statuses
    async with db.session() as session:
        key = hashlib.sha256(f"client:{api_client.id}".encode()).hexdigest()
        row = await session.get(LoginThrottle, key)
    assert row is not None and row.failures >= 1


async def test_redteam_passing_parallel_right_basic_secrets_after_a_typo(service, db):
    """Probe: one mistyped secret leaves a back-off row; the partner system then sends its
    usual parallel requests with the right secret. Each success deletes the row it read
    without a lock. Every request must be a 200 (no 5xx)."""
    agency = await make_agency(db)
    api_client, secret = await make_client(db, agency)
    wrong = base64.b64encode(f"{api_client.id}:tws_typo".encode()).decode()
    assert (
        await service.get("/taxii2/", headers={"Authorization": f"Basic {wrong}"})
    ).status_code == 401
    right = base64.b64encode(f"{api_client.id}:{secret}".encode()).decode()
    headers = {"Authorization": f"Basic {right}"}
    answers = await asyncio.gather(*(service.get("/taxii2/", headers=headers) for _ in range(N)))
    statuses = Counter(a.status_code for a in answers)
    assert statuses == Counter({200: N}), statuses
