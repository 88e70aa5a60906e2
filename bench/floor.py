"""Where the CPU of a request goes, by layer: the floor under every alert post.

    python -m bench.floor [--requests 1000] [--rounds 3] [--database-url URL]

In-process (httpx.ASGITransport, no network, no uvicorn), one request at a time, the CPU of
the whole process (`time.process_time()`) divided by the requests, for four requests of
growing depth, each round running all four in turn so that they share the machine's
conditions:

1. a bare FastAPI app's `GET /ok` (no middleware): the framework and the in-process client;
2. Tracewire's `GET /healthz`: the same plus Tracewire's middleware stack;
3. Tracewire's `GET /api/v1/me` with a bearer token: the same plus the token check, the
   principal's look-up and the request's session: the floor under every authenticated call;
4. Tracewire's `POST /api/v1/alerts`: a published alert with five items addressed to ten
   agencies with a matching subscription each (bench.statements' world and bodies).

What a post spends on its own work is (4) minus (3). The background linking of the audit
chain is waited for after each post and its CPU counted in (4). Prints the load average
before and after, and the Markdown table for RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from app.core.db import settle
from app.main import create_app
from bench import world as worlds
from bench.harness import DEFAULT_PG, fresh_database, machine, postgres_version
from bench.statements import SUBSCRIBERS, alert_body
from tests.conftest import settings_for

LAYERS = ("bare GET /ok", "GET /healthz", "GET /api/v1/me", "POST /api/v1/alerts")


def bare_app() -> FastAPI:
    app = FastAPI()

    @app.get("/ok")
    async def ok() -> dict[str, bool]:
        return {"ok": True}

    return app


async def cpu_ms(requests: int, one: Callable[[int], Awaitable[None]]) -> float:
    """CPU milliseconds of the process per call of `one`."""
    started = time.process_time()
    for n in range(requests):
        await one(n)
    return (time.process_time() - started) * 1000 / requests


async def run(url: str, requests: int, rounds: int) -> dict[str, list[float]]:
    world = await worlds.build(
        url, originators=1, subscribers=SUBSCRIBERS, hook_base="http://127.0.0.1:9/hook"
    )
    app = create_app(settings_for(url, webhook_require_https=False))
    logging.getLogger("tracewire.access").setLevel(logging.WARNING)  # one line a request
    logging.getLogger("httpx").setLevel(logging.WARNING)
    figures: dict[str, list[float]] = {layer: [] for layer in LAYERS}
    bodies = [alert_body(world, n) for n in range(requests * rounds + 1)]
    posted = iter(bodies)
    try:
        async with (
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=bare_app()), base_url="http://b"
            ) as bare,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://b") as http,
        ):
            client_id, secret = world.clients[0]
            answer = await http.post(
                "/api/v1/auth/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id,
                    "client_secret": secret,
                },
            )
            answer.raise_for_status()
            headers = {"Authorization": f"Bearer {answer.json()['access_token']}"}

            async def ok(_n: int) -> None:
                (await bare.get("/ok")).raise_for_status()

            async def healthz(_n: int) -> None:
                (await http.get("/healthz")).raise_for_status()

            async def me(_n: int) -> None:
                (await http.get("/api/v1/me", headers=headers)).raise_for_status()

            async def post(_n: int) -> None:
                answer = await http.post("/api/v1/alerts", json=next(posted), headers=headers)
                if answer.status_code != 201:
                    raise RuntimeError(f"post answered {answer.status_code}: {answer.text[:300]}")
                await settle(app.state.db.engine)  # its audit linking run, counted in

            steps = dict(zip(LAYERS, (ok, healthz, me, post), strict=True))
            for step in steps.values():  # warm-up: caches, the pool's connection, lazy imports
                await step(0)
            for _ in range(rounds):
                for layer, step in steps.items():
                    figures[layer].append(await cpu_ms(requests, step))
    finally:
        await app.state.db.dispose()
    return figures


def report(figures: dict[str, list[float]], pg: str, load: tuple[str, str], requests: int) -> str:
    lines = [
        f"- {machine()}; PostgreSQL {pg}; in-process (httpx.ASGITransport), one request at a time, "
        f"{requests} requests a layer a round; load average {load[0]} before, {load[1]} after.",
        "",
        "| request | CPU ms per request, each round | median | added by this layer |",
        "|---|---|---|---|",
    ]
    previous = 0.0
    for layer, values in figures.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.2f}" for v in values)
        lines.append(f"| {layer} | {rounds} | {median:.2f} | {median - previous:+.2f} |")
        previous = median
    return "\n".join(lines)


def load_average() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--database-url",
        default=f"{DEFAULT_PG}/tracewire_bench_floor",
        help="PostgreSQL database, dropped and re-created",
    )
    args = parser.parse_args()
    plain = make_url(args.database_url).set(drivername="postgresql")
    server, name = plain.render_as_string(hide_password=False).rsplit("/", 1)
    before = load_average()
    url = asyncio.run(fresh_database(server, name))
    figures = asyncio.run(run(url, args.requests, args.rounds))
    after = load_average()
    print(report(figures, asyncio.run(postgres_version(server)), (before, after), args.requests))


if __name__ == "__main__":
    main()
