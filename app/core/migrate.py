"""Apply Alembic migrations from code: at `serve`/`worker` start, in `migrate`, in tests."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

import app

MIGRATIONS_DIR = Path(app.__file__).resolve().parent.parent / "migrations"
# Several processes may start at once against one PostgreSQL; one migrates, the others wait.
_PG_MIGRATION_LOCK = 7_245_101


# Objects the migrations create by hand, per dialect, that the models cannot express:
# SQLite's FTS5 table (and its shadow tables), PostgreSQL's full-text GIN index, and the
# expression index of the TAXII date-added order (app/interop/service.py DATE_ADDED).
HAND_MANAGED = ("alert_fts", "ix_alert_search_text", "ix_alert_date_added")


def include_object(
    _obj: object, name: str | None, _type: str, _reflected: bool, _compare_to: object
) -> bool:
    """Autogenerate filter: leave the hand-managed search objects alone."""
    return not (name and name.startswith(HAND_MANAGED))


def alembic_config() -> Config:
    """An Alembic config pointing at the project's migrations, no ini file needed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database to `revision` (head by default)."""

    def _run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    """Take the database back to `revision` (`base` empties it)."""

    def _run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(_run)


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None when it has never been migrated)."""

    def _read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(_read)


def head_revision() -> str | None:
    """The newest revision in the migrations folder."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()
