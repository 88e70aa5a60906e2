"""SQL statements and API CPU per published alert, in-process (no network, no uvicorn).

    python -m bench.statements [--posts 200] [--database-url URL] [--profile FILE]

Re-creates the database of `--database-url` from the migrations, builds one originating
agency with a focal point API client and ten subscriber agencies with a webhook
subscription each that every alert matches (bench/world.py), then posts `--posts`
published alerts with five items each to `app.main.create_app` through
httpx.ASGITransport, one after the other. A `before_cursor_execute` listener on the app's
engine counts the statements of each POST by first keyword (an executemany counts once);
CPU is `time.process_time()` over the loop divided by the posts (client and app share the
process, so it includes httpx's in-process transport). Statements run by the app's
background work after the answer (linking the post's audit records) are waited for after
each post and counted apart, as "after the answer": they are on no request's path, and
under load one run serves the commits of many requests. `--profile` writes a cProfile of
the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import logging
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app.core.db import settle
from app.main import create_app
from bench import world as worlds
from bench.harness import DEFAULT_PG, fresh_database, machine, postgres_version
from tests.conftest import settings_for

SUBSCRIBERS = 10
ITEMS = 5
KINDS = ("SELECT", "INSERT", "UPDATE", "DELETE", "other")


@dataclass
class Figures:
    posts: int = 0
    created: int = 0
    cpu_s: float = 0.0
    wall_ms: list[float] = field(default_factory=list)
    statements: list[Counter[str]] = field(default_factory=list)
    background: int = 0  # statements run after the answer, by the app's background work
    notifies: int = 0


def alert_body(world: worlds.World, n: int) -> dict:
    """The ingest body of alert n with three more serialised items (five in all)."""
    body = world.alert_body(n)
    extra = body["items"][1]
    for i in range(ITEMS - len(body["items"])):
        item = copy.deepcopy(extra)
        item["serial_raw"] = f"EX{i}-{n:08d}"
        body["items"].append(item)
    return body


def on_request_path(request: asyncio.Task[Any] | None) -> bool:
    """Whether the statement being run belongs to the request `request` runs (in-process,
    the app runs in the client's task); background work runs in tasks of its own."""
    return asyncio.current_task() is request


def first_keyword(statement: str) -> str:
    word = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    return word if word in KINDS else "other"


async def run(url: str, posts: int, profile: str | None, *, show: bool = False) -> Figures:
    world = await worlds.build(
        url, originators=1, subscribers=SUBSCRIBERS, hook_base="http://127.0.0.1:9/hook"
    )
    settings = settings_for(url, webhook_require_https=False)
    app = create_app(settings)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the client's lines, not the app's
    figures = Figures(posts=posts)
    current: Counter[str] = Counter()
    last: list[str] = []

    request = asyncio.current_task()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not on_request_path(request):
            figures.background += 1
            return
        last.append(" ".join(statement.split())[:160])
        kind = first_keyword(statement)
        current[kind] += 1
        if statement.lstrip().upper().startswith("NOTIFY") or "pg_notify" in statement:
            figures.notifies += 1

    engine = app.state.db.engine.sync_engine
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
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
            bodies = [alert_body(world, n) for n in range(posts + 1)]
            # One warm-up post: caches, the pool's first connection, lazy imports.
            (await http.post("/api/v1/alerts", json=bodies[-1], headers=headers)).raise_for_status()
            figures.notifies = 0
            event.listen(engine, "before_cursor_execute", count)
            profiler = cProfile.Profile() if profile else None
            started = time.process_time()
            if profiler:
                profiler.enable()
            for body in bodies[:posts]:
                current.clear()
                last.clear()
                t0 = time.perf_counter()
                answer = await http.post("/api/v1/alerts", json=body, headers=headers)
                figures.wall_ms.append((time.perf_counter() - t0) * 1000)
                figures.created += answer.status_code == 201
                figures.statements.append(Counter(current))
                await settle(app.state.db.engine)  # this post's background work, counted apart
            if profiler:
                profiler.disable()
            figures.cpu_s = time.process_time() - started
            event.remove(engine, "before_cursor_execute", count)
            if show:
                print("\n".join(f"{n}. {text}" for n, text in enumerate(last, 1)))
            if profiler and profile:
                profiler.dump_stats(profile)
    finally:
        await app.state.db.dispose()
    return figures


def report(figures: Figures, pg: str) -> str:
    n = max(figures.posts, 1)
    per = {k: sum(c[k] for c in figures.statements) / n for k in KINDS}
    total = sum(per.values())
    lines = [
        f"- {machine()}; PostgreSQL {pg}; in-process (httpx.ASGITransport), one post at a time.",
        f"- 1 originating agency (focal point API client), {SUBSCRIBERS} subscriber agencies "
        f"each with a matching subscription; every alert: published, {ITEMS} serialised "
        f"items, TLP amber, addressed to the {SUBSCRIBERS} subscribers.",
        "",
        "| posts | 201 | SELECT | INSERT | UPDATE | DELETE | other | statements | NOTIFY "
        "| CPU ms/post | wall p50 ms | after the answer |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {figures.posts} | {figures.created} | "
        + " | ".join(f"{per[k]:.1f}" for k in KINDS)
        + f" | {total:.1f} | {figures.notifies / n:.1f} | {figures.cpu_s * 1000 / n:.1f} "
        f"| {statistics.median(figures.wall_ms) if figures.wall_ms else float('nan'):.1f} "
        f"| {figures.background / n:.1f} |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument(
        "--database-url",
        default=f"{DEFAULT_PG}/tracewire_bench_statements",
        help="PostgreSQL database, dropped and re-created",
    )
    parser.add_argument("--profile", help="write a cProfile of the posting loop to this file")
    parser.add_argument("--show", action="store_true", help="print the last post's statements")
    args = parser.parse_args()
    plain = make_url(args.database_url).set(drivername="postgresql")
    server, name = plain.render_as_string(hide_password=False).rsplit("/", 1)
    url = asyncio.run(fresh_database(server, name))
    figures = asyncio.run(run(url, args.posts, args.profile, show=args.show))
    print(report(figures, asyncio.run(postgres_version(server))))


if __name__ == "__main__":
    main()
