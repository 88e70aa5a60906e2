"""EXPLAIN ANALYZE of the service's own alert queries, as agencies of small and large visibility.

    python bench/explain.py --url postgresql://postgres@127.0.0.1:5432/tracewire_bench \\
        --agency SMALL_ID --agency LARGE_ID [--runs 30]

The SQL is built by app.alerts.query.list_query (the code the API runs), compiled
for PostgreSQL with its parameters inlined. For each query it prints the plan of one
run and the p50/p99 of --runs timed executions.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

import asyncpg
from sqlalchemy.dialects import postgresql

from app.alerts.query import AlertFilters, list_query
from app.authz.principal import ROLE_SCOPES, Principal, Role
from app.sharing.handling import AlertKind


def _principal(agency_id: uuid.UUID) -> Principal:
    return Principal(
        kind="user",
        id=uuid.uuid4(),
        agency_id=agency_id,
        role=Role.reader,
        scopes=ROLE_SCOPES[Role.reader],
        name="bench",
        token_id="bench",
    )


def sql_of(
    agency_id: uuid.UUID, filters: AlertFilters, limit: int = 50, cursor: str | None = None
) -> str:
    """The service's list query for the agency, with its parameters inlined."""
    query = list_query("postgresql", _principal(agency_id), filters, limit=limit, cursor=cursor)
    return str(query.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


async def _serial_of(conn: asyncpg.Connection) -> str:
    return await conn.fetchval("SELECT serial_raw FROM alert_item ORDER BY id LIMIT 1")


async def run(url: str, agencies: list[uuid.UUID], runs: int, show_plans: bool) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    serial = await _serial_of(conn)
    cases = {
        "list (newest first)": AlertFilters(),
        "filter kind=trace_request": AlertFilters(kind=AlertKind.trace_request),
        "filter country=DE": AlertFilters(country="DE"),
        "filter tag=drone": AlertFilters(tag="drone"),
        "serial look-up": AlertFilters(serial=serial),
        "text search q='detonator courier'": AlertFilters(q="detonator courier"),
        # Rare terms: a plan that walks the sort index and filters reads every row for these.
        "filter tag=manpads (rare)": AlertFilters(tag="manpads"),
        "text search q='manpads' (rare)": AlertFilters(q="manpads"),
    }
    print("| agency | query | rows | p50 ms | p99 ms |\n|---|---|---|---|---|")
    plans: list[str] = []
    for agency in agencies:
        for name, filters in cases.items():
            sql = sql_of(agency, filters)
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                rows = await conn.fetch(sql)
                times.append((time.perf_counter() - started) * 1000)
            times.sort()
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(
                f"| {str(agency)[:8]} | {name} | {len(rows)} "
                f"| {statistics.median(times):.2f} | {p99:.2f} |"
            )
            if show_plans:
                plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
                plans.append(
                    f"### {str(agency)[:8]} — {name}\n```\n"
                    + "\n".join(r[0] for r in plan)
                    + "\n```"
                )
    await conn.close()
    if plans:
        print("\n" + "\n\n".join(plans))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/tracewire_bench")
    parser.add_argument("--agency", type=uuid.UUID, action="append", required=True)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-plans", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args.url, args.agency, args.runs, not args.no_plans))


if __name__ == "__main__":
    main()
