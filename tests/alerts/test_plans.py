"""The page queries' plans on PostgreSQL: serial, whatever the planner's parallel costs."""

from __future__ import annotations

import re
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from app.alerts.query import AlertFilters, list_query
from app.authz.principal import ROLE_SCOPES, ActorKind, Principal, Role

CASES = {
    "list": AlertFilters(),
    "tag": AlertFilters(tag="drone"),
    "text": AlertFilters(q="detonator courier"),
    "country": AlertFilters(country="DE"),
}


def _page_sql(filters: AlertFilters) -> str:
    reader = Principal(
        kind=ActorKind.user,
        id=uuid.uuid4(),
        agency_id=uuid.uuid4(),
        role=Role.reader,
        scopes=ROLE_SCOPES[Role.reader],
        name="reader",
        token_id="t",
    )
    query = list_query("postgresql", reader, filters, limit=50)
    return str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


# A parallel scan of one of the page tables (the small directory tables may go parallel).
PARALLEL_PAGE_SCAN = re.compile(r"Parallel [\w ]+ on (alert|alert_tag|alert_item)\b")


async def _parallel_page_scans(conn: sa.ext.asyncio.AsyncConnection, sql: str) -> list[str]:
    rows = (await conn.execute(sa.text("EXPLAIN (COSTS OFF) " + sql))).all()
    return [r[0].strip() for r in rows if PARALLEL_PAGE_SCAN.search(r[0])]


@pytest.mark.parametrize("case", CASES)
async def test_page_plans_stay_serial_when_parallel_plans_look_free(db, backend, case):
    if backend != "postgres":
        pytest.skip("SQLite has no parallel plans")
    sql = _page_sql(CASES[case])
    engine = db.engine
    async with engine.connect() as conn:
        # Parallel plans made as cheap as they can be: only the tables' setting stops them.
        for knob in (
            "parallel_setup_cost = 0",
            "parallel_tuple_cost = 0",
            "min_parallel_table_scan_size = 0",
            "min_parallel_index_scan_size = 0",
            "enable_indexscan = off",
            "enable_bitmapscan = off",
        ):
            await conn.execute(sa.text(f"SET LOCAL {knob}"))
        assert await _parallel_page_scans(conn, sql) == []
        # The control: without the setting these knobs do make the plan parallel.
        for table in ("alert", "alert_tag", "alert_item"):
            await conn.execute(sa.text(f"ALTER TABLE {table} RESET (parallel_workers)"))
        assert await _parallel_page_scans(conn, sql) != []
        await conn.rollback()
