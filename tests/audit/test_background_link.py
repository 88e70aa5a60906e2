"""Linking runs after the answer on PostgreSQL: the request never waits for the chain's lock,
and nothing it committed is left out of the chain, at shutdown either."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import select

from app.audit import chain, heads, trail
from app.audit import service as audit
from app.audit.models import AuditRecord
from app.core.db import Database, settle
from app.main import create_app
from tests.factories import post_alert, seizure_body


@pytest.fixture(autouse=True)
def _postgres_only(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLite links in place, inside the writing transaction")


def _raw_client(app: object) -> httpx.AsyncClient:
    """A client that takes each answer as it comes (the suite's `client` waits for the
    app's background work after every answer)."""
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def _create_records(db: Database, alert_id: str) -> list[AuditRecord]:
    async with db.session() as session:
        query = select(AuditRecord).where(
            AuditRecord.action == "alert.create", AuditRecord.object_id == alert_id
        )
        return list((await session.exec(query)).all())


async def _hold_the_chain(conn: AsyncConnection) -> None:
    """Take the chain's lock as a linking run in another process would, until COMMIT."""
    await conn.execute(sa.text("BEGIN"))
    await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": chain._PG_CHAIN_LOCK})


async def _a_run_waits_for_the_chain(conn: AsyncConnection) -> bool:
    """Whether another session waits for the chain's lock, looked for a little while (less
    than a run's lock timeout)."""
    waiting = sa.text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND objid = :k"
    )
    for _ in range(int(chain.LOCK_TIMEOUT_MS / 100) - 2):
        if await conn.scalar(waiting, {"k": chain._PG_CHAIN_LOCK}):
            return True
        await asyncio.sleep(0.1)
    return False


async def test_a_post_is_answered_while_another_run_holds_the_chain(app, db, world):
    holder = Database(db.settings)
    try:
        async with holder.engine.connect() as conn:
            await _hold_the_chain(conn)
            async with _raw_client(app) as raw:
                posted = await post_alert(raw, world["KE"], seizure_body())
            # Answered, committed, and not linked yet: the answer did not wait for the lock,
            # and the linking run still does (a request that waited for it would have given
            # up after its lock timeout, leaving no one waiting).
            [record] = await _create_records(db, posted["id"])
            assert record.seq is None
            assert await _a_run_waits_for_the_chain(conn)
            await conn.execute(sa.text("COMMIT"))
    finally:
        await holder.dispose()
    await settle(db.engine)  # the blocked run ends (linked, or timed out for the next run)
    async with _raw_client(app) as raw:  # a later commit's run links whatever waits
        await post_alert(raw, world["KE"], seizure_body(title="a later one"))
    await settle(db.engine)
    [record] = await _create_records(db, posted["id"])
    assert record.seq is not None
    async with db.session() as session:
        verdict = await audit.verify(session, heads.verify_key(db.settings))
    assert verdict.ok and verdict.unchained == 0


async def test_shutting_down_waits_for_the_linking_it_started(settings, db, world):
    own = create_app(settings)
    async with _raw_client(own) as raw:
        posted = await post_alert(raw, world["KE"], seizure_body())
    await own.state.db.dispose()  # as the lifespan does at shutdown, right after the answer
    [record] = await _create_records(db, posted["id"])
    assert record.seq is not None


async def test_the_trail_shows_what_this_process_committed(app, db, world):
    holder = Database(db.settings)
    try:
        async with holder.engine.connect() as conn, _raw_client(app) as raw:
            await _hold_the_chain(conn)
            posted = await post_alert(raw, world["KE"], seizure_body())
            assert await _a_run_waits_for_the_chain(conn)

            async def release() -> None:
                await asyncio.sleep(0.2)
                await conn.execute(sa.text("COMMIT"))

            releasing = asyncio.create_task(release())
            async with db.session() as session:  # as GET /audit does, while the run waits
                rows = await trail.list_records(
                    session,
                    agency_id=None,
                    actor_id=None,
                    action="alert.create",
                    object_type=None,
                    object_id=posted["id"],
                    since=None,
                    until=None,
                    before_seq=None,
                    limit=10,
                )
            await releasing
    finally:
        await holder.dispose()
    assert len(rows) == 1 and rows[0].seq is not None


async def test_parallel_posts_are_each_linked_once(app, db, world):
    async with _raw_client(app) as raw:
        posted = await asyncio.gather(
            *(post_alert(raw, world["KE"], seizure_body(title=f"n{n}")) for n in range(12))
        )
    await settle(db.engine)
    async with db.session() as session:
        seqs = (await session.exec(select(AuditRecord.seq))).all()
        verdict = await audit.verify(session, heads.verify_key(db.settings))
    # Gap-free and each once (a record committed late may follow one inserted after it).
    assert sorted(s for s in seqs if s is not None) == list(range(1, len(seqs) + 1))
    assert verdict.ok and verdict.unchained == 0 and verdict.checked == len(seqs)
    for alert in posted:
        assert len(await _create_records(db, alert["id"])) == 1
