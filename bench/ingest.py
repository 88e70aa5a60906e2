"""Scenario 1, ingest: focal points of many agencies post alerts, against a bare insert.

    python -m bench.ingest [--clients 1 16 64 256] [--requests 3000] [--seconds 30]

Starts `tracewire serve` (one uvicorn process, PostgreSQL) and the bare endpoint of
bench/baseline_app.py side by side, then at each concurrency posts realistic alerts
(two serialised items, addressed to ten agencies, each with a subscription that matches:
ten outbox rows per alert, plus audit, sharing checks and hit matching) and the same
bodies to the bare endpoint, one after the other. Afterwards it counts the rows: every
201 must be an alert in the database with its ten deliveries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass, field

import asyncpg

from bench import world as worlds
from bench.harness import (
    DEFAULT_PG,
    LOAD_HEADER,
    ROOT,
    Http,
    Load,
    Proc,
    drive,
    fresh_database,
    machine,
    postgres_version,
    processes,
    service_env,
    start_api,
    wait_ready,
)
from tests.processes import free_port

SUBSCRIBERS = 10


@dataclass
class IngestResult:
    loads: list[tuple[Load, Load]] = field(default_factory=list)
    ok_endpoint: Load | None = None
    created: int = 0
    stored: int = 0
    deliveries: int = 0
    rss_mb: dict[str, float] = field(default_factory=dict)


def start_baseline(procs: list[Proc], server: str, name: str) -> Proc:
    """bench/baseline_app.py under the same uvicorn, on a free port."""
    import subprocess

    port = free_port()
    env = {"BENCH_BASELINE_URL": f"{server}/{name}", "PATH": "/usr/bin:/bin"}
    popen = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.baseline_app:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-server-header",
        ],
        env=env,
        cwd=ROOT,
    )
    proc = Proc("bare", popen, f"http://127.0.0.1:{port}")
    procs.append(proc)
    return proc


class Poster:
    """Posts alert n as originator n mod |agencies|; counts the 201s."""

    def __init__(self, world: worlds.World) -> None:
        self.world = world
        self.created = 0
        self.offset = 0

    async def alert(self, http: Http, n: int) -> int:
        n += self.offset
        token = self.world.tokens[n % len(self.world.tokens)]
        status, _ = await http.request(
            "POST",
            "/api/v1/alerts",
            body=json.dumps(self.world.alert_body(n)).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        if status == 201:
            self.created += 1
        return status

    async def bare(self, http: Http, n: int) -> int:
        body = json.dumps(self.world.alert_body(n + self.offset)).encode()
        status, _ = await http.request(
            "POST", "/bare", body=body, headers={"Content-Type": "application/json"}
        )
        return status


async def count_rows(server: str, name: str) -> tuple[int, int]:
    """(alerts, webhook deliveries) in the bench database."""
    conn = await asyncpg.connect(f"{server}/{name}")
    try:
        alerts = await conn.fetchval("SELECT count(*) FROM alert")
        deliveries = await conn.fetchval("SELECT count(*) FROM webhook_delivery")
        return alerts, deliveries
    finally:
        await conn.close()


async def run(
    server: str, name: str, clients: list[int], requests: int, seconds: float, agencies: int
) -> IngestResult:
    url = await fresh_database(server, name)
    world = await worlds.build(
        url, originators=agencies, subscribers=SUBSCRIBERS, hook_base="http://127.0.0.1:9/hook"
    )
    result = IngestResult()
    with processes() as procs:
        api = start_api(procs, service_env(url))
        bare = start_baseline(procs, server, name)
        await wait_ready(api)
        await wait_ready(bare, "/ok")
        await world.login(api.base_url)
        poster = Poster(world)
        for concurrency in clients:
            total = requests if concurrency > 1 else max(requests // 10, 100)
            warmup = min(concurrency * 2, 100)
            common = {"concurrency": concurrency, "total": total, "max_seconds": seconds}
            api_load = await drive(
                "POST /api/v1/alerts", [api.base_url], poster.alert, warmup=warmup, **common
            )
            poster.offset += total + warmup
            bare_load = await drive(
                "POST /bare", [bare.base_url], poster.bare, warmup=warmup, **common
            )
            result.loads.append((api_load, bare_load))
            print(api_load.row(), bare_load.row(), sep="\n", file=sys.stderr)

        async def ok(http: Http, _n: int) -> int:
            return (await http.request("GET", "/ok"))[0]

        result.ok_endpoint = await drive(
            "GET /ok", [bare.base_url], ok, concurrency=16, total=requests, max_seconds=seconds
        )
        result.rss_mb = {"api": api.peak_rss_mb(), "bare": bare.peak_rss_mb()}
        result.created = poster.created
    result.stored, result.deliveries = await count_rows(server, name)
    return result


def report(result: IngestResult, pg: str, agencies: int) -> str:
    lines = [
        f"- {machine()}; PostgreSQL {pg}.",
        f"- {agencies} originating agencies (one API client each), {SUBSCRIBERS} subscriber "
        "agencies each with a matching subscription; every alert: 2 serialised items, TLP "
        f"amber, addressed to the {SUBSCRIBERS} subscribers.",
        "",
        LOAD_HEADER,
    ]
    for api_load, bare_load in result.loads:
        lines += [api_load.row(), bare_load.row()]
    if result.ok_endpoint:
        lines.append(result.ok_endpoint.row())
    lines += [
        "",
        "| clients | alerts/s ÷ bare inserts/s | alert p99 ÷ bare p99 |",
        "|---|---|---|",
    ]
    for api_load, bare_load in result.loads:
        ratio = api_load.throughput / bare_load.throughput if bare_load.throughput else 0
        p99 = api_load.pct(99) / bare_load.pct(99) if bare_load.latencies else 0
        lines.append(f"| {api_load.concurrency} | {ratio:.2f} | {p99:.2f} |")
    lost = result.created - result.stored
    lines += [
        "",
        f"- Answered 201: {result.created:,}; alerts in the database: {result.stored:,} "
        f"(lost: {lost}); outbox rows: {result.deliveries:,} "
        f"(expected {SUBSCRIBERS * result.stored:,}).",
        "- Peak RSS: "
        + ", ".join(f"{name} {mb:.0f} MiB" for name, mb in result.rss_mb.items())
        + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_PG, help="PostgreSQL, without a database")
    parser.add_argument("--database", default="tracewire_bench_ingest", help="re-created")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--requests", type=int, default=3000, help="per concurrency level")
    parser.add_argument("--seconds", type=float, default=30, help="cap per run")
    parser.add_argument("--agencies", type=int, default=50)
    args = parser.parse_args()
    result = asyncio.run(
        run(args.server, args.database, args.clients, args.requests, args.seconds, args.agencies)
    )
    print(report(result, asyncio.run(postgres_version(args.server)), args.agencies))


if __name__ == "__main__":
    main()
