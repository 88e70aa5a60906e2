"""SQL statements and API CPU per alert list page, in-process (no network, no uvicorn).

    python -m bench.pages [--alerts 200] [--pages 40] [--limit 50] [--database-url URL]
                          [--profile FILE]

Re-creates the database of `--database-url` (PostgreSQL, or `sqlite:///FILE`) from the
migrations. A reading agency (an API client without `alerts:read:red`) owns a sharing
group of which a sending agency is a member. `--alerts` published alerts with five items
each are posted in a cycle of four views of the reader's page: its own (named recipients:
the sender and the group; content and recipient lists), the sender's addressed to it
(content), the sender's TLP:RED ones (a reference), and the sender's withdrawn ones (a
tombstone). Then the reader reads `--pages` pages of `--limit` alerts
(`GET /api/v1/alerts`, following the cursor, from the first page again at the end)
through httpx.ASGITransport, one after the other. A `before_cursor_execute` listener on
the app's engine counts the statements of each GET by first keyword; CPU is
`time.process_time()` over the loop divided by the pages (client and app share the
process). Statements of the app's background work after an answer (linking the page's
audit record) are waited for and counted apart, as in bench/statements.py. `--profile`
writes a cProfile of the loop.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app.core import migrate
from app.core.db import create_engine, settle
from app.main import create_app
from app.sharing.models import SharingGroup, SharingGroupMember
from bench import statements
from bench.harness import DEFAULT_PG, database, fresh_database, machine, postgres_version
from bench.world import World
from tests.conftest import settings_for
from tests.factories import make_agency, make_client

KINDS = statements.KINDS
VIEWS = ("own", "content", "reference", "tombstone")


@dataclass
class Figures:
    pages: int = 0
    answered: int = 0
    shown: Counter[str] = field(default_factory=Counter)
    cpu_s: float = 0.0
    wall_ms: list[float] = field(default_factory=list)
    statements: list[Counter[str]] = field(default_factory=list)
    last_page: list[str] = field(default_factory=list)
    background: int = 0  # statements run after the answer, by the app's background work


async def fresh(url: str) -> str:
    """The SQLAlchemy URL of a re-created, migrated database (a SQLite file: removed first)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        url = f"sqlite+aiosqlite:///{parsed.database}"
        engine = create_engine(settings_for(url))
        await migrate.upgrade(engine)
        await engine.dispose()
        return url
    plain = parsed.set(drivername="postgresql")
    server, name = plain.render_as_string(hide_password=False).rsplit("/", 1)
    return await fresh_database(server, name)


async def token(http: httpx.AsyncClient, client_id: str, secret: str) -> dict[str, str]:
    answer = await http.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def run(
    url: str, alerts: int, pages: int, limit: int, profile: str | None, *, show: bool = False
) -> Figures:
    db = database(url)
    try:
        reader = await make_agency(db, country="KE")
        sender = await make_agency(db, country="DE")
        reader_client, reader_secret = await make_client(db, reader, "alerts:read alerts:write")
        sender_client, sender_secret = await make_client(db, sender, "alerts:read alerts:write")
        group = SharingGroup(owner_agency_id=reader.id, name="bench desk")
        async with db.session() as session:
            session.add(group)
            await session.flush()
            session.add(SharingGroupMember(group_id=group.id, agency_id=sender.id))
            await session.commit()
    finally:
        await db.dispose()
    app = create_app(settings_for(url, webhook_require_https=False))
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the client's lines, not the app's
    figures = Figures(pages=pages)
    current: Counter[str] = Counter()
    last: list[str] = []

    request = asyncio.current_task()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if not statements.on_request_path(request):
            figures.background += 1
            return
        current[statements.first_keyword(statement)] += 1
        if show:
            last.append(" ".join(statement.split())[:160])

    engine = app.state.db.engine.sync_engine
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            own = await token(http, str(reader_client.id), reader_secret)
            theirs = await token(http, str(sender_client.id), sender_secret)
            await post_alerts(http, own, theirs, alerts, reader.id, sender.id, group.id)
            # One warm-up page: caches, the pool's first connection, lazy imports.
            params = {"limit": str(limit)}
            (await http.get("/api/v1/alerts", params=params, headers=own)).raise_for_status()
            event.listen(engine, "before_cursor_execute", count)
            profiler = cProfile.Profile() if profile else None
            started = time.process_time()
            if profiler:
                profiler.enable()
            cursor: str | None = None
            for _ in range(pages):
                current.clear()
                last.clear()
                query = {**params, "cursor": cursor} if cursor else params
                t0 = time.perf_counter()
                answer = await http.get("/api/v1/alerts", params=query, headers=own)
                figures.wall_ms.append((time.perf_counter() - t0) * 1000)
                figures.statements.append(Counter(current))
                await settle(app.state.db.engine)  # the page's background work, counted apart
                figures.answered += answer.status_code == 200
                page = answer.json()
                cursor = page["next_cursor"]
                for alert in page["items"]:
                    figures.shown[_view_of(alert)] += 1
            if profiler:
                profiler.disable()
            figures.cpu_s = time.process_time() - started
            figures.last_page = list(last)
            event.remove(engine, "before_cursor_execute", count)
            if profiler and profile:
                profiler.dump_stats(profile)
    finally:
        await app.state.db.dispose()
    return figures


async def post_alerts(
    http: httpx.AsyncClient,
    own: dict[str, str],
    theirs: dict[str, str],
    alerts: int,
    reader: uuid.UUID,
    sender: uuid.UUID,
    group: uuid.UUID,
) -> None:
    """The alerts of the reader's pages, in a cycle of its four views."""
    bodies = World("")  # its alert bodies only: the handling is set here
    for n in range(alerts):
        view = VIEWS[n % len(VIEWS)]
        body = statements.alert_body(bodies, n)
        handling = body["handling"]
        if view == "own":
            handling["recipient_agencies"] = [str(sender)]
            handling["recipient_groups"] = [str(group)]
        else:
            handling["recipient_agencies"] = [str(reader)]
        if view == "reference":
            handling["tlp"] = "red"
        headers = own if view == "own" else theirs
        answer = await http.post("/api/v1/alerts", json=body, headers=headers)
        answer.raise_for_status()
        if view == "tombstone":
            withdrawn = await http.post(
                f"/api/v1/alerts/{answer.json()['id']}/withdraw",
                json={"reason": "posted in error"},
                headers=headers,
            )
            withdrawn.raise_for_status()


def _view_of(alert: dict) -> str:
    if alert["tombstone"]:
        return "tombstone"
    if alert["reference"]:
        return "reference"
    return "own" if alert["handling"]["recipient_agencies"] is not None else "content"


def report(figures: Figures, backend: str, limit: int) -> str:
    n = max(figures.pages, 1)
    per = {k: sum(c[k] for c in figures.statements) / n for k in KINDS}
    total = sum(per.values())
    shown = ", ".join(f"{figures.shown[v]} {v}" for v in VIEWS)
    lines = [
        f"- {machine()}; {backend}; in-process (httpx.ASGITransport), one page at a time.",
        f"- pages of {limit} alerts, 5 items each; alerts shown over the pages: {shown}.",
        "",
        "| pages | 200 | SELECT | INSERT | UPDATE | DELETE | other | statements "
        "| CPU ms/page | wall p50 ms | after the answer |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| {figures.pages} | {figures.answered} | "
        + " | ".join(f"{per[k]:.1f}" for k in KINDS)
        + f" | {total:.1f} | {figures.cpu_s * 1000 / n:.1f} "
        f"| {statistics.median(figures.wall_ms) if figures.wall_ms else float('nan'):.1f} "
        f"| {figures.background / n:.1f} |",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument(
        "--database-url",
        default=f"{DEFAULT_PG}/tracewire_bench_pages",
        help="PostgreSQL database (dropped and re-created) or sqlite:///FILE (replaced)",
    )
    parser.add_argument("--profile", help="write a cProfile of the reading loop to this file")
    parser.add_argument("--show", action="store_true", help="print the last page's statements")
    args = parser.parse_args()
    if make_url(args.database_url).get_backend_name() == "sqlite":
        Path(make_url(args.database_url).database or "").unlink(missing_ok=True)
    url = asyncio.run(fresh(args.database_url))
    figures = asyncio.run(
        run(url, args.alerts, args.pages, args.limit, args.profile, show=args.show)
    )
    if url.startswith("sqlite"):
        backend = "SQLite"
    else:
        plain = make_url(args.database_url).set(drivername="postgresql")
        server = plain.render_as_string(hide_password=False).rsplit("/", 1)[0]
        backend = f"PostgreSQL {asyncio.run(postgres_version(server))}"
    print(report(figures, backend, args.limit))
    for statement in figures.last_page:
        print(f"    {statement}")


if __name__ == "__main__":
    main()
