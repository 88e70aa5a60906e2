"""Scenario 2, query at scale: pages of visible alerts over HTTP against the raw SQL.

    python -m bench.query --agency SMALL_ID --agency LARGE_ID [--runs 50] [--plans plans.md]

Run `bench/generate.py` first (1,000,000 alerts). For each agency and each query (list,
filters, serial look-up, text search, and the second page of the list) it times `--runs`
sequential GET /api/v1/alerts answers from `tracewire serve` (authentication, sharing
filter, audit of the rows read, JSON) and then the same page's SQL, as the service
builds it, over one asyncpg connection. Then 16 clients list at once for `--seconds`.
With --plans, the EXPLAIN (ANALYZE, BUFFERS) of every query goes to that file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from app.agencies.models import Agency
from app.alerts.query import AlertFilters
from app.sharing.handling import AlertKind
from bench.explain import sql_of
from bench.harness import (
    DEFAULT_PG,
    LOAD_HEADER,
    Http,
    client_token,
    database,
    drive,
    machine,
    ms,
    postgres_version,
    processes,
    service_env,
    start_api,
    wait_ready,
)
from tests.factories import make_client

PAGE = 50


def cases(serial: str) -> dict[str, tuple[dict[str, str], AlertFilters]]:
    """Query name -> (HTTP query string, the service's filters)."""
    return {
        "list (newest first)": ({}, AlertFilters()),
        "filter kind=trace_request": (
            {"kind": "trace_request"},
            AlertFilters(kind=AlertKind.trace_request),
        ),
        "filter country=DE": ({"country": "DE"}, AlertFilters(country="DE")),
        "filter tag=drone": ({"tag": "drone"}, AlertFilters(tag="drone")),
        "serial look-up": ({"serial": serial}, AlertFilters(serial=serial)),
        "text search q='detonator courier'": (
            {"q": "detonator courier"},
            AlertFilters(q="detonator courier"),
        ),
    }


async def _clients(url: str, agencies: list[uuid.UUID]) -> list[tuple[str, str]]:
    db = database(url)
    try:
        out = []
        for agency_id in agencies:
            async with db.session() as session:
                agency = await session.get(Agency, agency_id)
            if agency is None:
                raise SystemExit(f"agency {agency_id} is not in the bench database")
            client, secret = await make_client(db, agency, "alerts:read")
            out.append((str(client.id), secret))
        return out
    finally:
        await db.dispose()


async def _time_http(
    http: Http, headers: dict[str, str], params: dict[str, str], runs: int
) -> list[float]:
    times = []
    for i in range(runs + 3):
        started = time.perf_counter()
        status, _ = await http.request(
            "GET", "/api/v1/alerts", params={**params, "limit": str(PAGE)}, headers=headers
        )
        if status != 200:
            raise RuntimeError(f"GET /api/v1/alerts {params}: {status}")
        if i >= 3:  # the first few fill caches
            times.append((time.perf_counter() - started) * 1000)
    return times


async def _time_sql(conn: asyncpg.Connection, sql: str, runs: int) -> tuple[list[float], int]:
    times, rows = [], 0
    for i in range(runs + 3):
        started = time.perf_counter()
        rows = len(await conn.fetch(sql))
        if i >= 3:
            times.append((time.perf_counter() - started) * 1000)
    return times, rows


async def run(
    server: str, name: str, agencies: list[uuid.UUID], runs: int, seconds: float, plans: bool
) -> tuple[str, list[str]]:
    url = f"{server}/{name}".replace("postgresql://", "postgresql+asyncpg://")
    credentials = await _clients(url, agencies)
    conn = await asyncpg.connect(f"{server}/{name}")
    serial = await conn.fetchval(
        "SELECT i.serial_raw FROM alert_item i JOIN alert a ON a.id = i.alert_id"
        " WHERE a.audience = 'community' AND a.status = 'published' AND a.embargo_until IS NULL"
        " AND i.serial_raw IS NOT NULL ORDER BY i.id LIMIT 1"
    )
    total = await conn.fetchval("SELECT count(*) FROM alert")
    lines = [
        f"- {machine()}; PostgreSQL {await postgres_version(server)}; {total:,} alerts.",
        "",
        "| agency | query | rows | API p50 / p99 ms | raw SQL p50 / p99 ms | API ÷ raw pages/s |",
        "|---|---|---|---|---|---|",
    ]
    plan_text: list[str] = []
    with processes() as procs:
        api = start_api(procs, service_env(url))
        await wait_ready(api)
        tokens = [await client_token(api.base_url, cid, s) for cid, s in credentials]
        for agency_id, token in zip(agencies, tokens, strict=True):
            headers = {"Authorization": f"Bearer {token}"}
            http = Http(api.base_url, 1)
            try:
                _, first = await http.request(
                    "GET", "/api/v1/alerts", params={"limit": str(PAGE)}, headers=headers
                )
                cursor = json.loads(first)["next_cursor"]
                named = cases(serial)
                for label, (params, filters) in named.items():
                    api_ms = await _time_http(http, headers, params, runs)
                    sql = sql_of(agency_id, filters, limit=PAGE)
                    raw_ms, rows = await _time_sql(conn, sql, runs)
                    lines.append(_row(agency_id, label, rows, api_ms, raw_ms))
                    if plans:
                        plan_text.append(await _plan(conn, agency_id, label, sql))
                if cursor:
                    api_ms = await _time_http(http, headers, {"cursor": cursor}, runs)
                    sql = sql_of(agency_id, AlertFilters(), limit=PAGE, cursor=cursor)
                    raw_ms, rows = await _time_sql(conn, sql, runs)
                    lines.append(_row(agency_id, "list, page 2 (cursor)", rows, api_ms, raw_ms))
            finally:
                await http.close()
            print("\n".join(lines[-7:]), file=sys.stderr)

        async def page(http: Http, n: int) -> int:
            token = tokens[n % len(tokens)]
            status, _ = await http.request(
                "GET",
                "/api/v1/alerts",
                params={"limit": str(PAGE)},
                headers={"Authorization": f"Bearer {token}"},
            )
            return status

        load = await drive(
            "GET /api/v1/alerts",
            [api.base_url],
            page,
            concurrency=16,
            total=100_000,
            max_seconds=seconds,
            warmup=32,
        )
        lines += ["", "Both agencies listing at once, 16 clients:", "", LOAD_HEADER, load.row()]
        lines += ["", f"- Peak RSS of the API process: {api.peak_rss_mb():.0f} MiB."]
    await conn.close()
    return "\n".join(lines), plan_text


def _row(agency: uuid.UUID, label: str, rows: int, api_ms: list[float], raw_ms: list[float]) -> str:
    ratio = (sum(raw_ms) / len(raw_ms)) / (sum(api_ms) / len(api_ms))
    return f"| {str(agency)[:8]} | {label} | {rows} | {ms(api_ms)} | {ms(raw_ms)} | {ratio:.2f} |"


async def _plan(conn: asyncpg.Connection, agency: uuid.UUID, label: str, sql: str) -> str:
    plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
    body = "\n".join(r[0] for r in plan)
    return f"### {str(agency)[:8]} — {label}\n```\n{body}\n```"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_PG, help="PostgreSQL, without a database")
    parser.add_argument("--database", default="tracewire_bench")
    parser.add_argument("--agency", type=uuid.UUID, action="append", required=True)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--plans", type=Path)
    args = parser.parse_args()
    report, plans = asyncio.run(
        run(args.server, args.database, args.agency, args.runs, args.seconds, bool(args.plans))
    )
    print(report)
    if args.plans:
        args.plans.write_text("\n\n".join(plans) + "\n")
        print(f"- Plans: {args.plans}.")


if __name__ == "__main__":
    main()
