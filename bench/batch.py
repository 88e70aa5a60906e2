"""Alerts per second through `POST /alerts:batch` against one `POST /alerts` per alert.

    python -m bench.batch [--alerts 1000] [--size 500] [--rounds 2] [--database-url URL]

Re-creates the database of `--database-url` from the migrations and builds the world of
bench/statements.py (one originating agency, ten subscriber agencies with a matching
webhook subscription each); every alert is published with five serialised items and
addressed to the ten. In-process through httpx.ASGITransport (no network, no uvicorn), one
request at a time. Each round posts `--alerts` alerts one per request (the baseline), then
the same number in batches of `--size`, alternately, and reports alerts/s (wall), CPU ms
per alert (the whole process, client included) and SQL statements per alert and per
request, with the load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app.main import create_app
from bench import world as worlds
from bench.harness import DEFAULT_PG, fresh_database, machine, postgres_version
from bench.statements import SUBSCRIBERS, alert_body
from tests.conftest import settings_for


@dataclass
class Run:
    mode: str
    alerts: int
    stored: int
    wall_s: float
    cpu_s: float
    statements: int
    requests: int

    def row(self) -> str:
        n = max(self.alerts, 1)
        return (
            f"| {self.mode} | {self.alerts} | {self.stored} | {self.alerts / self.wall_s:.0f} "
            f"| {self.cpu_s * 1000 / n:.2f} | {self.statements / n:.2f} "
            f"| {self.statements / max(self.requests, 1):.0f} |"
        )


async def _token(http: httpx.AsyncClient, world: worlds.World) -> dict[str, str]:
    client_id, secret = world.clients[0]
    answer = await http.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def _singles(http: httpx.AsyncClient, headers: dict[str, str], bodies: list[dict]) -> int:
    stored = 0
    for body in bodies:
        stored += (await http.post("/api/v1/alerts", json=body, headers=headers)).status_code == 201
    return stored


async def _batches(
    http: httpx.AsyncClient, headers: dict[str, str], bodies: list[dict], size: int
) -> int:
    stored = 0
    for start in range(0, len(bodies), size):
        chunk = {"alerts": bodies[start : start + size]}
        answer = await http.post("/api/v1/alerts:batch", json=chunk, headers=headers, timeout=600)
        answer.raise_for_status()
        stored += answer.json()["created"]
    return stored


async def run(url: str, alerts: int, size: int, rounds: int) -> list[Run]:
    world = await worlds.build(
        url, originators=1, subscribers=SUBSCRIBERS, hook_base="http://127.0.0.1:9/hook"
    )
    app = create_app(settings_for(url, webhook_require_https=False))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    counted = 0

    def count(*_args: Any) -> None:
        nonlocal counted
        counted += 1

    engine = app.state.db.engine.sync_engine
    runs: list[Run] = []
    serial = iter(range(10**9))
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            headers = await _token(http, world)
            await _singles(http, headers, [alert_body(world, next(serial))])  # warm-up
            await _batches(http, headers, [alert_body(world, next(serial))], size)
            event.listen(engine, "before_cursor_execute", count)
            for _ in range(rounds):
                for mode in ("one per request", f"batches of {size}"):
                    bodies = [alert_body(world, next(serial)) for _ in range(alerts)]
                    counted = 0
                    wall, cpu = time.perf_counter(), time.process_time()
                    if mode == "one per request":
                        stored = await _singles(http, headers, bodies)
                    else:
                        stored = await _batches(http, headers, bodies, size)
                    runs.append(
                        Run(
                            mode,
                            alerts,
                            stored,
                            time.perf_counter() - wall,
                            time.process_time() - cpu,
                            counted,
                            alerts if mode == "one per request" else -(-alerts // size),
                        )
                    )
            event.remove(engine, "before_cursor_execute", count)
    finally:
        await app.state.db.dispose()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--database-url",
        default=f"{DEFAULT_PG}/tracewire_bench_batch",
        help="PostgreSQL database, dropped and re-created",
    )
    args = parser.parse_args()
    plain = make_url(args.database_url).set(drivername="postgresql")
    server, name = plain.render_as_string(hide_password=False).rsplit("/", 1)
    url = asyncio.run(fresh_database(server, name))
    load_before = os.getloadavg()
    runs = asyncio.run(run(url, args.alerts, args.size, args.rounds))
    load_after = os.getloadavg()
    print(f"- {machine()}; PostgreSQL {asyncio.run(postgres_version(server))}; in-process.")
    print(f"- load average before {load_before[0]:.2f}, after {load_after[0]:.2f}.")
    print(
        "\n| mode | alerts | stored | alerts/s | CPU ms/alert | statements/alert "
        "| statements/request |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        print(r.row())


if __name__ == "__main__":
    main()
