"""Scenario 4, scale-out: 2 API processes + 2 workers against 1 + 1, on one PostgreSQL.

    python -m bench.scaleout [--clients 64] [--seconds 20] [--layouts 1x1 2x2]

For each layout, a fresh database and the same population as the webhook scenario
(ten subscriber agencies, every alert addressed to all ten). `--clients` clients post
alerts for `--seconds`, spread over the API processes, while the workers deliver to the
verifying receiver, which holds each request open for `--hold-ms` so that two copies of
one message sent at the same time would overlap there and be counted. Then it waits for
the outbox to drain and checks: every 201 is an alert in the database, every alert's ten
messages arrived, and no message was in flight twice at once.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench import world as worlds
from bench.harness import (
    DEFAULT_PG,
    LOAD_HEADER,
    Load,
    drive,
    fresh_database,
    machine,
    ms,
    postgres_version,
    processes,
    service_env,
    start_api,
    start_worker,
    wait_ready,
)
from bench.ingest import Poster, count_rows
from bench.webhooks import SUBSCRIBERS, delivery_counts, start_receiver, wait_for_receipts
from tests.processes import free_port


@dataclass
class Layout:
    apis: int
    workers: int
    load: Load | None = None
    created: int = 0
    stored: int = 0
    received: int = 0
    duplicates: int = 0
    concurrent_duplicates: int = 0
    bad_signatures: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    rss_mb: dict[str, float] = field(default_factory=dict)


async def one_layout(
    server: str, name: str, apis: int, workers: int, clients: int, seconds: float, hold_ms: float
) -> Layout:
    url = await fresh_database(server, name)
    result = Layout(apis, workers)
    with tempfile.TemporaryDirectory() as tmp, processes() as procs:
        port = free_port()
        world = await worlds.build(
            url, originators=50, subscribers=SUBSCRIBERS, hook_base=f"http://127.0.0.1:{port}/hook"
        )
        receiver = start_receiver(procs, world.write_secrets(Path(tmp, "s.json")), hold_ms, port)
        env = service_env(
            url,
            TRACEWIRE_WEBHOOK_POLL_SECONDS="0.5",
            TRACEWIRE_WEBHOOK_ALLOW_NETWORKS=f"127.0.0.1:{port}",
        )
        api_procs = [start_api(procs, env, f"api {i + 1}") for i in range(apis)]
        worker_procs = [start_worker(procs, env, f"worker {i + 1}") for i in range(workers)]
        for proc in api_procs:
            await wait_ready(proc)
        await wait_ready(receiver, "/stats")
        await world.login(api_procs[0].base_url)
        poster = Poster(world)
        result.load = await drive(
            "POST /api/v1/alerts",
            [p.base_url for p in api_procs],
            poster.alert,
            concurrency=clients,
            total=1_000_000,
            max_seconds=seconds,
            warmup=clients,
        )
        result.created = poster.created
        stats = await wait_for_receipts(receiver, poster.created * SUBSCRIBERS, within=300)
        result.received = stats["distinct"]
        result.duplicates = stats["duplicates"]
        result.concurrent_duplicates = stats["concurrent_duplicates"]
        result.bad_signatures = stats["bad_signatures"]
        result.latencies = stats["latencies_ms"]
        result.rss_mb = {p.name: p.peak_rss_mb() for p in [*api_procs, *worker_procs]}
    result.stored, _ = await count_rows(server, name)
    result.statuses = await delivery_counts(server, name)
    return result


def report(layouts: list[Layout], pg: str, clients: int, hold_ms: float) -> str:
    lines = [
        f"- {machine()}; PostgreSQL {pg}.",
        f"- {clients} clients posting alerts (10 matching subscriptions each) over the API "
        f"processes; the receiver holds each request {hold_ms:.0f} ms.",
        "",
        LOAD_HEADER,
    ]
    lines += [
        f"{lay.load.row()} ({lay.apis} API + {lay.workers} workers)" for lay in layouts if lay.load
    ]
    lines += [
        "",
        "| API + workers | alerts/s | vs 1 + 1 | 201s | alerts stored | messages received "
        "| expected | duplicates (at once) | commit-to-receipt p50 / p99 ms | delivery rows |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = layouts[0].load.throughput if layouts and layouts[0].load else 0.0
    for lay in layouts:
        rate = lay.load.throughput if lay.load else 0.0
        lines.append(
            f"| {lay.apis} + {lay.workers} | {rate:,.0f} | {rate / base if base else 0:.2f} "
            f"| {lay.created:,} | {lay.stored:,} | {lay.received:,} "
            f"| {lay.stored * SUBSCRIBERS:,} | {lay.duplicates} ({lay.concurrent_duplicates}) "
            f"| {ms(lay.latencies)} | {lay.statuses} |"
        )
    for lay in layouts:
        lines.append(
            f"- Peak RSS, {lay.apis} + {lay.workers}: "
            + ", ".join(f"{n} {mb:.0f} MiB" for n, mb in lay.rss_mb.items())
            + "."
        )
    return "\n".join(lines)


async def run(
    server: str, name: str, layouts: list[str], clients: int, seconds: float, hold: float
) -> str:
    results = []
    for layout in layouts:
        apis, workers = (int(n) for n in layout.split("x"))
        result = await one_layout(server, name, apis, workers, clients, seconds, hold)
        print(f"  {layout}: {result.load.row() if result.load else ''}", file=sys.stderr)
        results.append(result)
    return report(results, await postgres_version(server), clients, hold)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_PG, help="PostgreSQL, without a database")
    parser.add_argument("--database", default="tracewire_bench_scale", help="re-created")
    parser.add_argument("--layouts", nargs="+", default=["1x1", "2x2"], help="APIxWORKERS")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--hold-ms", type=float, default=5)
    args = parser.parse_args()
    print(
        asyncio.run(
            run(args.server, args.database, args.layouts, args.clients, args.seconds, args.hold_ms)
        )
    )


if __name__ == "__main__":
    main()
