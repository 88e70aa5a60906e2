"""Alembic environment: migrations run on a connection the caller hands over, or on
the database named by TRACEWIRE_DATABASE_URL (for the `alembic` authoring command)."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from app.core.migrate import include_object
from app.core.types import UTCDateTime, UuidList
from app.models import metadata

config = context.config


def _render_item(type_, obj, autogen_context):
    if type_ == "type" and isinstance(obj, UTCDateTime):
        autogen_context.imports.add("import app.core.types")
        return "app.core.types.UTCDateTime()"
    if type_ == "type" and isinstance(obj, UuidList):
        autogen_context.imports.add("import app.core.types")
        return "app.core.types.UuidList()"
    return False


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies tables
        compare_type=True,
        render_item=_render_item,
        include_object=include_object,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine() -> None:
    from app.core.config import get_settings
    from app.core.db import create_engine

    engine = create_engine(get_settings())
    async with engine.connect() as conn:
        await conn.run_sync(run_migrations)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported")

connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    asyncio.run(_run_with_own_engine())
