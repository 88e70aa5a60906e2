"""Red team: linking in the background after the answer (PostgreSQL), across several
processes (one engine each), against shutdown, and against readers of the trail."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import select

from app.audit import chain, heads, trail
from app.audit import service as audit
from app.audit.models import AuditRecord
from app.core import db as core_db
from app.core.db import Database, settle
from app.main import create_app
from tests.factories import post_alert, seizure_body


@pytest.fixture(autouse=True)
def _postgres_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLite links in place, inside the writing transaction")


def _raw(app: object) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _chain_whole(db: Database) -> list[AuditRecord]:
    async with db.session() as session:
        rows = list((await session.exec(select(AuditRecord).order_by(AuditRecord.id))).all())
        verdict = await audit.verify(session, heads.verify_key(db.settings))
    seqs = [r.seq for r in rows]
    assert None not in seqs, f"{seqs.count(None)} committed records left unlinked"
    assert sorted(seqs) == list(range(1, len(rows) + 1))  # type: ignore[type-var]
    assert verdict.ok and verdict.unchained == 0 and verdict.checked == len(rows), verdict
    return rows


async def test_many_processes_posting_batching_and_paging_link_each_record_once(
    settings, db, world
):
    apps = [create_app(settings) for _ in range(4)]
    try:
        clients = [_raw(a) for a in apps]
        actors = [world["KE"], world["DE"], world["JO"], world["KE"]]

        async def one_process(n: int) -> tuple[list[str], int]:
            raw, actor = clients[n], actors[n]
            ids: list[str] = []
            pages = 0
            for round_ in range(4):
                posted, batch, page = await asyncio.gather(
                    post_alert(raw, actor, seizure_body(title=f"p{n}.{round_}")),
                    raw.post(
                        "/api/v1/alerts:batch",
                        json={"alerts": [seizure_body(title=f"b{n}.{round_}.{i}") for i in (0, 1)]},
                        headers=actor.headers,
                    ),
                    raw.get("/api/v1/alerts", headers=actor.headers),
                )
                assert batch.status_code == 200, batch.text
                assert page.status_code == 200, page.text
                ids.append(posted["id"])
                ids.extend(r["alert"]["id"] for r in batch.json()["results"])
                pages += bool(page.json()["items"])
            return ids, pages

        outcomes = await asyncio.gather(*(one_process(n) for n in range(len(apps))))
        for raw in clients:
            await raw.aclose()
    finally:
        for a in apps:
            await a.state.db.dispose()  # as each process's shutdown: waits for its runs
    rows = await _chain_whole(db)
    creates = Counter(r.object_id for r in rows if r.action == "alert.create")
    posted_ids = [i for ids, _pages in outcomes for i in ids]
    assert creates == Counter(posted_ids)
    lists = sum(1 for r in rows if r.action == "alert.list")
    assert lists == sum(pages for _ids, pages in outcomes)


async def _hold(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("BEGIN"))
    await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": chain._PG_CHAIN_LOCK})


async def _waiters(conn: AsyncConnection) -> int:
    return int(
        await conn.scalar(
            sa.text(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                "AND NOT granted AND objid = :k"
            ),
            {"k": chain._PG_CHAIN_LOCK},
        )
        or 0
    )


async def _until_waiters(probe: AsyncConnection, count: int) -> None:
    for _ in range(80):
        if await _waiters(probe) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"expected {count} waiter(s) on the chain's lock")


async def test_a_reader_waits_only_for_runs_that_cover_what_came_before_it(app, db, world):
    """`chain.linked` (list_records, verify, sign_head) waits for this process's linking.
    Everything committed before the read is linked by the first run; commits that keep
    arriving after the read began must not keep the reader waiting round after round (a busy
    process would starve GET /audit and verify)."""
    holders = [Database(db.settings) for _ in range(2)]
    probe_db = Database(db.settings)
    rounds_waited = 0
    try:
        async with (
            holders[0].engine.connect() as h0,
            holders[1].engine.connect() as h1,
            probe_db.engine.connect() as probe,
            _raw(app) as raw,
        ):
            hs = [h0, h1]
            await _hold(hs[0])
            await post_alert(raw, world["KE"], seizure_body(title="before the read"))
            await _until_waiters(probe, 1)  # the run for it waits behind the holder

            async def read() -> None:
                async with db.session() as session:
                    await trail.list_records(
                        session,
                        agency_id=None,
                        actor_id=None,
                        action=None,
                        object_type=None,
                        object_id=None,
                        since=None,
                        until=None,
                        before_seq=None,
                        limit=10,
                    )

            reader = asyncio.create_task(read())
            await asyncio.sleep(0.05)
            current = 0
            for round_ in range(4):
                # The other holder queues behind the run, then a commit arrives during the run.
                other = 1 - current
                queued = asyncio.create_task(_hold(hs[other]))
                await _until_waiters(probe, 2)
                await post_alert(raw, world["KE"], seizure_body(title=f"after {round_}"))
                await hs[current].execute(sa.text("COMMIT"))  # the run links, then the other
                await queued
                current = other
                await asyncio.sleep(0.05)
                if reader.done():
                    break
                rounds_waited += 1
                try:
                    await _until_waiters(probe, 1)  # the next round of the run waits again
                except AssertionError:
                    break
            await hs[current].execute(sa.text("COMMIT"))
            await reader
    finally:
        for h in (*holders, probe_db):
            await h.dispose()
    await settle(db.engine)
    assert rounds_waited <= 1, f"the reader waited through {rounds_waited} later runs"


async def test_a_post_committing_during_shutdown_is_linked_before_it_ends(settings, db, world):
    """Disposing of the database (a shutdown) while a post is still in flight: the post
    commits after `dispose()` began. Once both are done, no linking run may be left that
    nobody waits for (the process would exit and cut it off, leaving the record for the
    worker's sweep)."""
    own = create_app(settings)
    engine = own.state.db.engine
    ke = world["KE"]
    assert ke.user is not None
    key = "held-across-shutdown"
    blocker = Database(db.settings)
    try:
        async with (
            blocker.engine.connect() as held,
            blocker.engine.connect() as probe,
            _raw(own) as raw,
        ):
            # Another request's claim of the same key, not committed yet: the post waits on it.
            await held.execute(
                sa.text(
                    "INSERT INTO idempotency_record (principal_id, key, fingerprint, "
                    "status_code, body, headers, created_at) "
                    "VALUES (:p, :k, 'x', 0, NULL, '{}', now())"
                ),
                {"p": ke.user.id, "k": key},
            )
            posting = asyncio.create_task(
                raw.post(
                    "/api/v1/alerts",
                    json=seizure_body(publish=True),
                    headers={**ke.headers, "Idempotency-Key": key},
                )
            )
            for _ in range(200):
                waiting = await probe.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted "
                        "AND locktype = 'transactionid'"
                    )
                )
                if waiting:
                    break
                await asyncio.sleep(0.01)
            assert waiting, "the post never waited on the held key"
            await own.state.db.dispose()  # the shutdown begins and ends: nothing to wait for
            await held.rollback()  # the other claim goes away: the post goes on and commits
            answer = await posting
            assert answer.status_code == 201, answer.text
            left = [t for t in core_db._background.get(engine.sync_engine, ()) if not t.done()]
            async with db.session() as session:
                [record] = (
                    await session.exec(
                        select(AuditRecord).where(
                            AuditRecord.action == "alert.create",
                            AuditRecord.object_id == answer.json()["id"],
                        )
                    )
                ).all()
    finally:
        await own.state.db.dispose()
        await blocker.dispose()
    assert not left and record.seq is not None, (
        f"{len(left)} linking run(s) started after dispose(); record seq={record.seq}"
    )
    await _chain_whole(db)
