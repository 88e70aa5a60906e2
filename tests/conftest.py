"""Fixtures: one real database per backend (schema from the migrations), the app, a client.

Every test that takes `client`, `app` or `db_url` runs twice: on SQLite and on
PostgreSQL (from TRACEWIRE_TEST_POSTGRES_URL; skipped with a reason when unset).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.core import migrate
from app.core.config import Settings
from app.core.db import Database, create_engine, settle
from app.core.logging import JsonFormatter
from app.main import create_app
from tests.secrets_seen import remember

POSTGRES_ENV = "TRACEWIRE_TEST_POSTGRES_URL"
# Code under test that reads the settings from the environment (get_settings) generates its
# secrets into a throw-away directory, never into the checkout.
os.environ.setdefault("TRACEWIRE_DATA_DIR", tempfile.mkdtemp(prefix="tracewire-test-data-"))
CAPTURED_LOGS: list[str] = []


class _Capture(logging.Handler):
    """Keeps every formatted log line of the run, for the secrets-hygiene test."""

    def emit(self, record: logging.LogRecord) -> None:
        CAPTURED_LOGS.append(self.format(record))


@pytest.fixture(scope="session", autouse=True)
def capture_all_logs() -> Iterator[None]:
    """Record all logs (INFO and up, tracebacks included) of the whole run."""
    handler = _Capture(level=logging.INFO)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield
    root.removeHandler(handler)
    root.setLevel(previous)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The secrets-hygiene test reads the logs of everything else: run it last."""
    items.sort(key=lambda item: "test_secret_hygiene" in item.nodeid)


TEST_JWT_SECRET = secrets.token_urlsafe(48)
# The audit head signing key (an Ed25519 seed) of in-process tests; servers started by tests
# without one generate their own into their data directory.
TEST_AUDIT_SIGNING_KEY = base64.b64encode(secrets.token_bytes(32)).decode()
remember(TEST_JWT_SECRET, TEST_AUDIT_SIGNING_KEY)


def _postgres_url() -> str | None:
    url = os.environ.get(POSTGRES_ENV, "").strip()
    if not url:
        return None
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    return parsed.render_as_string(hide_password=False)


def settings_for(database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "database_url": database_url,
        "jwt_secret": TEST_JWT_SECRET,
        "audit_signing_key": TEST_AUDIT_SIGNING_KEY,
        # Cheap hashing keeps a suite with hundreds of logins fast; the production
        # parameters are checked by tests/core/test_security.py.
        "password_hash_memory_kib": 1024,
        "password_hash_time_cost": 1,
        # Whole suites log in hundreds of times from one address; the limits have their
        # own tests (tests/core/test_hardening.py).
        "rate_limit_per_minute": 0,
        "token_rate_limit_per_minute": 0,
        "log_json": True,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


async def _migrate(url: str) -> None:
    engine = create_engine(settings_for(url))
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once; each test gets its own copy."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A throw-away PostgreSQL database for this run, migrated once."""
    base = _postgres_url()
    if base is None:
        if os.environ.get("TRACEWIRE_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{POSTGRES_ENV} is not set, and this run requires PostgreSQL")
        pytest.skip(f"{POSTGRES_ENV} is not set: PostgreSQL tests skipped (CI sets it)")
    name = f"tracewire_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin_url = make_url(base)

    async def run(sql: str) -> None:
        engine = create_engine(settings_for(admin_url.render_as_string(hide_password=False)))
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    asyncio.run(run(f'CREATE DATABASE "{name}"'))
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        asyncio.run(_migrate(url))
        yield url
    finally:
        asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend under test."""
    return request.param


@pytest.fixture
def db_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of the current backend, private to this test."""
    if backend == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "tracewire.db"
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url: str = request.getfixturevalue("postgres_database")
    yield url
    asyncio.run(_truncate_all(url))


async def _truncate_all(url: str) -> None:
    engine = create_engine(settings_for(url))
    try:
        async with engine.begin() as conn:
            rows = await conn.execute(
                text(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                    "AND tablename <> 'alembic_version'"
                )
            )
            tables = ", ".join(f'"{r[0]}"' for r in rows)
            if tables:
                await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    finally:
        await engine.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    """Test settings on the private database."""
    return settings_for(db_url)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    """The application, as `tracewire serve` builds it."""
    application = create_app(settings)
    yield application
    await application.state.db.dispose()


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the app in-process.

    Each answer is taken once the app's background work for it (linking its audit records)
    has ended, so a test that reads the database next sees the chain as the app leaves it;
    tests of that background step itself use a client of their own.
    """
    engine = app.state.db.engine  # type: ignore[attr-defined]

    async def settled(_answer: httpx.Response) -> None:
        await settle(engine)

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", event_hooks={"response": [settled]}
    ) as c:
        yield c


@pytest.fixture
def db(app: object) -> Database:
    """The app's database (for factories and direct checks)."""
    return app.state.db  # type: ignore[attr-defined]


@pytest.fixture
async def world(client: httpx.AsyncClient, db: Database, app: object) -> dict[str, Any]:
    """Kenya, Germany and Jordan, each with a focal point ("KE") and an admin ("KE_admin").

    Modules that need another cast define their own `world`, which takes precedence.
    """
    from tests.factories import make_world  # factories imports this module

    return await make_world(client, db, app.state.auth.hashing)  # type: ignore[attr-defined]


def random_email(prefix: str = "user") -> str:
    """A unique address in a domain the validator accepts."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}@tracewire.example"
