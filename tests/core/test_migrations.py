"""The schema comes only from the migrations, and they match the models."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app.core import migrate
from app.core.db import create_engine
from app.models import metadata
from tests.conftest import settings_for


async def test_models_and_migrations_agree(db_url):
    engine = create_engine(settings_for(db_url))

    def diff(connection):
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_object": migrate.include_object},
        )
        return compare_metadata(context, metadata)

    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()
    assert differences == [], f"models differ from migrations: {differences}"


async def test_migrations_run_down_and_up_again(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path}/cycle.db"
    engine = create_engine(settings_for(url))
    try:
        await migrate.upgrade(engine)
        await migrate.upgrade(engine)  # idempotent at head
        assert await migrate.current_revision(engine) == migrate.head_revision()
        await migrate.downgrade(engine, "base")
        assert await migrate.current_revision(engine) is None
        await migrate.upgrade(engine)
        assert await migrate.current_revision(engine) == migrate.head_revision()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("name", ["migrations are named YYYY_MM_DD_HHMM-slug.py"])
def test_migration_file_names(name):
    files = sorted(p.name for p in (migrate.MIGRATIONS_DIR / "versions").glob("*.py"))
    assert files
    for file in files:
        stamp, _, slug = file.partition("-")
        assert len(stamp) == 15 and stamp[4] == stamp[7] == stamp[10] == "_", (name, file)
        assert slug.endswith(".py") and slug[:-3], (name, file)
