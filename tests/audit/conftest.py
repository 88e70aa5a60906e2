"""Tests here play an insider who turns the append-only triggers off."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from app.core.db import create_engine
from tests.conftest import settings_for


async def _enable_triggers(url: str) -> None:
    engine = create_engine(settings_for(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE audit_record ENABLE TRIGGER USER"))
            await conn.execute(text("ALTER TABLE audit_head ENABLE TRIGGER USER"))
    finally:
        await engine.dispose()


@pytest.fixture(autouse=True)
def triggers_back_on(request: pytest.FixtureRequest) -> Iterator[None]:
    """PostgreSQL's test database outlives a test: turn its audit triggers on again after it."""
    uses_postgres = (
        "db_url" in request.fixturenames and request.getfixturevalue("backend") == "postgres"
    )
    url = request.getfixturevalue("db_url") if uses_postgres else None
    yield
    if url is not None:
        asyncio.run(_enable_triggers(url))
