"""A refusal by the database that the service's own checks cannot foresee, for tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from app.core.db import Database


@asynccontextmanager
async def refused_when(db: Database, table: str, when: str) -> AsyncIterator[None]:
    """While it lasts, a trigger refuses (as a constraint would) a row of `table` for which
    the SQL condition `when` (on NEW) holds."""
    name = f"tw_rt_{uuid.uuid4().hex[:8]}"
    async with db.session() as session:
        conn = await session.connection()
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            await conn.execute(
                text(
                    f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
                    f"IF {when} THEN RAISE EXCEPTION 'refused' USING ERRCODE = "
                    "'check_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
                    f"FOR EACH ROW EXECUTE FUNCTION {name}()"
                )
            )
        else:
            await conn.execute(
                text(
                    f"CREATE TRIGGER {name} BEFORE INSERT ON {table} "
                    f"WHEN {when} BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        await session.commit()
    try:
        yield
    finally:
        async with db.session() as session:
            conn = await session.connection()
            if postgres:
                await conn.execute(text(f"DROP TRIGGER {name} ON {table}"))
                await conn.execute(text(f"DROP FUNCTION {name}()"))
            else:
                await conn.execute(text(f"DROP TRIGGER {name}"))
            await session.commit()
