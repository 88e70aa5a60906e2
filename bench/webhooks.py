"""Scenario 3, webhook throughput: signed deliveries to a verifying local receiver.

    python -m bench.webhooks [--alerts 500] [--workers 1 2]

Ten subscriber agencies subscribe to `alert.published`; every bench alert is addressed to
all ten, so each posted alert makes ten deliveries. For each worker count:

1. *Backlog*: with no worker running, post `--alerts` alerts through the API (ten times as
   many deliveries wait), start the worker processes, and time until the receiver, which
   verifies every signature with the `standardwebhooks` library, has every message.
2. *Live*: with the workers running, 16 clients post alerts for `--seconds`; the receiver
   reports commit-to-receipt latency (receipt time minus the event's timestamp, set in the
   alert's transaction).

The ceiling, in the same run: a bare aiohttp loop signing and posting the same payloads
to the same receiver with the same concurrency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
from standardwebhooks import Webhook

from bench import world as worlds
from bench.harness import (
    DEFAULT_PG,
    ROOT,
    Proc,
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
from bench.ingest import Poster
from tests.processes import free_port

SUBSCRIBERS = 10


@dataclass
class Round:
    workers: int
    deliveries: int = 0
    seconds: float = 0.0
    duplicates: int = 0
    concurrent_duplicates: int = 0
    bad_signatures: int = 0
    live_latencies: list[float] = field(default_factory=list)
    live_deliveries: int = 0
    light_latencies: list[float] = field(default_factory=list)
    rss_mb: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.deliveries / self.seconds if self.seconds else 0.0


def start_receiver(
    procs: list[Proc], secrets: Path, hold_ms: float = 0.0, port: int | None = None
) -> Proc:
    """bench/receiver.py on `port` (or a free one)."""
    port = port or free_port()
    popen = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "bench.receiver",
            "--port",
            str(port),
            "--secrets",
            str(secrets),
            "--hold-ms",
            str(hold_ms),
        ],
        cwd=ROOT,
    )
    proc = Proc("receiver", popen, f"http://127.0.0.1:{port}")
    procs.append(proc)
    return proc


async def receiver_stats(receiver: Proc, *, reset: bool = False) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=receiver.base_url, timeout=30) as http:
        stats = (await http.get("/stats")).json()
        if reset:
            await http.delete("/stats")
        return stats


async def wait_for_receipts(receiver: Proc, expected: int, within: float) -> dict[str, Any]:
    """Poll the receiver until it holds `expected` distinct messages (or time runs out)."""
    deadline = time.monotonic() + within
    while True:
        stats = await receiver_stats(receiver)
        if stats["distinct"] >= expected or time.monotonic() > deadline:
            return stats
        await asyncio.sleep(0.25)


async def delivery_counts(server: str, name: str) -> dict[str, int]:
    conn = await asyncpg.connect(f"{server}/{name}")
    try:
        rows = await conn.fetch("SELECT status, count(*) FROM webhook_delivery GROUP BY status")
        return {r["status"]: r["count"] for r in rows}
    finally:
        await conn.close()


async def post_alerts(
    poster: Poster, base_url: str, count: int, seconds: float, clients: int = 16
) -> int:
    """Post up to `count` alerts with `clients` clients; how many were created."""
    before = poster.created
    load = await drive(
        "POST /api/v1/alerts",
        [base_url],
        poster.alert,
        concurrency=clients,
        total=count,
        max_seconds=seconds,
    )
    poster.offset += count
    if load.errors:
        print(f"  posting: {dict(load.statuses)}", file=sys.stderr)
    return poster.created - before


async def one_round(
    server: str, name: str, workers: int, alerts: int, seconds: float, hold_ms: float = 0.0
) -> Round:
    url = await fresh_database(server, name)
    result = Round(workers)
    with tempfile.TemporaryDirectory() as tmp, processes() as procs:
        receiver_port_file = Path(tmp, "secrets.json")
        receiver_port = free_port()
        hook_base = f"http://127.0.0.1:{receiver_port}/hook"
        world = await worlds.build(
            url, originators=10, subscribers=SUBSCRIBERS, hook_base=hook_base
        )
        world.write_secrets(receiver_port_file)
        receiver = start_receiver(procs, receiver_port_file, hold_ms, receiver_port)
        env = service_env(
            url,
            TRACEWIRE_WEBHOOK_POLL_SECONDS="0.5",
            TRACEWIRE_WEBHOOK_ALLOW_NETWORKS=f"127.0.0.1:{receiver_port}",
        )
        api = start_api(procs, env)
        await wait_ready(api)
        await wait_ready(receiver, "/stats")
        await world.login(api.base_url)
        poster = Poster(world)
        # 1. backlog, then the workers
        created = await post_alerts(poster, api.base_url, alerts, seconds=120)
        expected = created * SUBSCRIBERS
        worker_procs = [start_worker(procs, env, f"worker {i + 1}") for i in range(workers)]
        stats = await wait_for_receipts(receiver, expected, within=300)
        result.deliveries = stats["distinct"]
        # From the first receipt to the last: the workers' start-up is not counted.
        result.seconds = (stats["last_at"] or 0) - (stats["first_at"] or 0)
        result.duplicates = stats["duplicates"]
        result.concurrent_duplicates = stats["concurrent_duplicates"]
        result.bad_signatures = stats["bad_signatures"]
        if result.deliveries < expected:
            print(f"  only {result.deliveries} of {expected} arrived", file=sys.stderr)
        # 2. live: post while the workers run, measure commit-to-receipt
        await receiver_stats(receiver, reset=True)
        created = await post_alerts(poster, api.base_url, 100_000, seconds)
        stats = await wait_for_receipts(receiver, created * SUBSCRIBERS, within=120)
        result.live_latencies = stats["latencies_ms"]
        result.live_deliveries = stats["distinct"]
        result.duplicates += stats["duplicates"]
        result.concurrent_duplicates += stats["concurrent_duplicates"]
        result.bad_signatures += stats["bad_signatures"]
        # 3. light: one client posting, one alert at a time (the workers keep up)
        await receiver_stats(receiver, reset=True)
        created = await post_alerts(poster, api.base_url, 100_000, seconds / 2, clients=1)
        stats = await wait_for_receipts(receiver, created * SUBSCRIBERS, within=60)
        result.light_latencies = stats["latencies_ms"]
        result.duplicates += stats["duplicates"]
        result.concurrent_duplicates += stats["concurrent_duplicates"]
        result.bad_signatures += stats["bad_signatures"]
        result.rss_mb = {p.name: p.peak_rss_mb() for p in [api, *worker_procs, receiver]}
    return result


async def bare_aiohttp(count: int, concurrency: int) -> tuple[int, float]:
    """The ceiling: sign and POST `count` payloads to a fresh receiver, nothing else."""
    secret = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    payload = json.dumps(
        {"type": "alert.published", "timestamp": "2026-11-30T00:00:00+00:00", "data": {}}
    ).encode()
    with tempfile.TemporaryDirectory() as tmp, processes() as procs:
        secrets = _write(Path(tmp, "secrets.json"), json.dumps({"0": secret}))
        receiver = start_receiver(procs, secrets)
        await wait_ready(receiver, "/stats")
        hook = Webhook(secret)
        sem = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as http:

            async def one() -> None:
                msg_id = f"msg_{uuid.uuid4().hex}"
                now = datetime.now(UTC)
                headers = {
                    "webhook-id": msg_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": hook.sign(msg_id, now, payload.decode()),
                    "content-type": "application/json",
                }
                async with (
                    sem,
                    http.post(
                        f"{receiver.base_url}/hook/0", data=payload, headers=headers
                    ) as answer,
                ):
                    await answer.read()

            started = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(count)))
            seconds = time.perf_counter() - started
        stats = await receiver_stats(receiver)
    return stats["distinct"], seconds


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def report(rounds: list[Round], bare: tuple[int, float], pg: str, alerts: int) -> str:
    bare_rate = bare[0] / bare[1] if bare[1] else 0.0
    lines = [
        f"- {machine()}; PostgreSQL {pg}.",
        f"- Backlog: {alerts} alerts x {SUBSCRIBERS} matching subscriptions; live: 16 clients "
        "posting alerts while the workers run; light: one client posting.",
        "",
        "| workers | deliveries | deliveries/s | ÷ bare aiohttp | live deliveries "
        "| commit-to-receipt p50 / p99 ms, live | same, light | duplicates (at once) "
        "| bad signatures |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        lines.append(
            f"| {r.workers} | {r.deliveries:,} | {r.rate:,.0f} | {r.rate / bare_rate:.2f} "
            f"| {r.live_deliveries:,} | {ms(r.live_latencies)} | {ms(r.light_latencies)} "
            f"| {r.duplicates} ({r.concurrent_duplicates}) | {r.bad_signatures} |"
        )
    lines += [
        "",
        f"- Bare aiohttp loop, 64 at once: {bare[0]:,} signed posts in {bare[1]:.1f} s = "
        f"{bare_rate:,.0f}/s.",
    ]
    for r in rounds:
        lines.append(
            f"- Peak RSS with {r.workers} worker(s): "
            + ", ".join(f"{n} {mb:.0f} MiB" for n, mb in r.rss_mb.items())
            + "."
        )
    return "\n".join(lines)


async def run(server: str, name: str, workers: list[int], alerts: int, seconds: float) -> str:
    rounds = []
    for count in workers:
        r = await one_round(server, name, count, alerts, seconds)
        print(f"  {count} worker(s): {r.deliveries} in {r.seconds:.1f} s", file=sys.stderr)
        rounds.append(r)
    bare = await bare_aiohttp(alerts * SUBSCRIBERS, 64)
    return report(rounds, bare, await postgres_version(server), alerts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=DEFAULT_PG, help="PostgreSQL, without a database")
    parser.add_argument("--database", default="tracewire_bench_hooks", help="re-created")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--alerts", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=15, help="live posting time")
    args = parser.parse_args()
    print(asyncio.run(run(args.server, args.database, args.workers, args.alerts, args.seconds)))


if __name__ == "__main__":
    main()
