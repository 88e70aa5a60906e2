"""How records join the chain: after their commit, in order, each once, none left out."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import text
from sqlmodel import col, select

from app.audit import chain, heads
from app.audit import service as audit
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.core.db import Database
from app.core.types import utcnow
from app.worker import Worker, schedules
from tests.conftest import TEST_AUDIT_SIGNING_KEY
from tests.factories import (
    PASSWORD,
    make_actor,
    make_agency,
    make_user,
    password_login,
    post_alert,
    seizure_body,
)
from tests.live import serve


async def _leave_unlinked(db, count: int) -> None:
    """What a process that died between its commit and its linking step leaves behind."""
    async with db.session() as session:
        for _ in range(count):
            await session.exec(
                sa.insert(chain.TABLE).values(
                    at=utcnow(), actor_kind="worker", action="test.leftover", details={}
                )
            )
        await session.commit()


async def _verify(db) -> audit.Verdict:
    async with db.session() as session:
        return await audit.verify(session, heads.verify_key(db.settings))


async def _linked(db) -> list[AuditRecord]:
    async with db.session() as session:
        query = select(AuditRecord).where(col(AuditRecord.seq).is_not(None))
        return list((await session.exec(query.order_by(col(AuditRecord.seq)))).all())


@pytest.fixture
async def operator(client, db, app):
    agency = await make_agency(db, country="XX")
    return await make_actor(client, db, app.state.auth.hashing, agency, Role.platform_admin)


async def test_records_a_crashed_process_left_unlinked_are_linked_by_the_sweep(
    client, db, operator, backend
):
    await _leave_unlinked(db, 2)
    before = await _verify(db)
    assert before.ok and before.unchained == 2
    listed = await client.get("/api/v1/audit?action=test.leftover", headers=operator.headers)
    assert listed.json()["items"] == []  # the trail shows linked records only
    worker = Worker(db, schedules(db.settings))
    sweep = next(s for s in worker.schedules if s.name == "link_audit_records")
    assert await worker.run_once(sweep) == 2
    after = await _verify(db)
    assert after.ok and after.unchained == 0 and after.checked == before.checked + 2
    listed = await client.get("/api/v1/audit?action=test.leftover", headers=operator.headers)
    assert len(listed.json()["items"]) == 2
    assert await worker.run_once(sweep) == 0  # linked once: nothing left to link


async def test_a_record_is_linked_once_and_its_content_never_changes(client, db, operator):
    await _leave_unlinked(db, 1)
    async with db.session() as session:
        leftover = (
            await session.exec(select(AuditRecord).where(col(AuditRecord.seq).is_(None)))
        ).one()
    refused = (
        # linking while changing the content
        "UPDATE audit_record SET seq = 999, prev_hash = 'p', hash = 'h', outcome = 'x' "
        "WHERE id = :i",
        # changing the content before linking
        "UPDATE audit_record SET outcome = 'x' WHERE id = :i",
        # linking half-way
        "UPDATE audit_record SET seq = 999 WHERE id = :i",
        "DELETE FROM audit_record WHERE id = :i",
    )
    for statement in refused:
        with pytest.raises(Exception, match="append-only"):
            async with db.session() as session:
                await session.exec(text(statement), params={"i": leftover.id})
                await session.commit()
    async with db.session() as session:
        assert await chain.sweep(session) == 1
        await session.commit()
    linked = (await _linked(db))[-1]
    assert linked.id == leftover.id and linked.action == "test.leftover"
    for statement in (  # linked already: neither again nor elsewhere
        "UPDATE audit_record SET seq = seq + 1000, prev_hash = 'p', hash = 'h' WHERE id = :i",
        "UPDATE audit_record SET seq = NULL, prev_hash = NULL, hash = NULL WHERE id = :i",
    ):
        with pytest.raises(Exception, match="append-only"):
            async with db.session() as session:
                await session.exec(text(statement), params={"i": leftover.id})
                await session.commit()
    assert (await _verify(db)).ok


async def test_signed_heads_cannot_be_changed_or_deleted(db):
    async with db.session() as session:
        await audit.record(session, None, "test.head")
        await session.commit()
    async with db.session() as session:
        await audit.sign_head(session, heads.signing_key(db.settings))
        await session.commit()
    for statement in ("UPDATE audit_head SET hash = 'x'", "DELETE FROM audit_head"):
        with pytest.raises(Exception, match="append-only"):
            async with db.session() as session:
                await session.exec(text(statement))
                await session.commit()


async def test_an_audited_read_holds_no_chain_lock(client, db, backend, app):
    """While another process holds the chain lock, reads are still answered (and audited)."""
    if backend != "postgres":
        pytest.skip("SQLite serialises every transaction on its one writer slot anyway")
    reader = await make_actor(
        client, db, app.state.auth.hashing, await make_agency(db), Role.focal_point
    )
    await post_alert(client, reader, seizure_body())  # a page with content: its read is audited
    async with db.engine.connect() as holder:
        await holder.execute(
            text("SELECT pg_advisory_lock(:k)"), {"k": chain._PG_CHAIN_LOCK}
        )  # a linking run that takes its time
        try:
            answer = await asyncio.wait_for(
                client.get("/api/v1/alerts", headers=reader.headers), timeout=20
            )
        finally:
            await holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": chain._PG_CHAIN_LOCK})
            await holder.commit()
    assert answer.status_code == 200
    async with db.session() as session:
        rows = (
            await session.exec(select(AuditRecord).where(AuditRecord.action == "alert.list"))
        ).all()
    assert len(rows) == 1 and rows[0].seq is None  # committed with the read, linked later
    await client.get("/api/v1/me", headers=reader.headers)
    async with db.session() as session:
        await chain.sweep(session)
        await session.commit()
    verdict = await _verify(db)
    assert verdict.ok and verdict.unchained == 0


async def test_parallel_requests_over_two_servers_leave_one_unbroken_chain(
    db, db_url, backend, tmp_path, app
):
    """Two `tracewire serve` processes on one PostgreSQL, audited reads and writes in parallel:
    every audited answer has its record, each linked once, the chain gap-free."""
    if backend != "postgres":
        pytest.skip("one SQLite file has one writer at a time by construction")
    agency = await make_agency(db)
    users = [
        await make_user(db, app.state.auth.hashing, agency, Role.focal_point) for _ in range(4)
    ]
    settings = {"AUDIT_SIGNING_KEY": TEST_AUDIT_SIGNING_KEY, "WORKER_IN_PROCESS": "false"}
    async with (
        serve(db_url, tmp_path, **settings) as one,
        serve(db_url, tmp_path, **settings) as two,
    ):
        async with httpx.AsyncClient(base_url=one, timeout=30) as http:
            tokens = [
                (await password_login(http, u.email, PASSWORD))["access_token"] for u in users
            ]
        before = len(await _linked(db))
        answers: list[int] = []

        async def worker(n: int) -> None:
            base = (one, two)[n % 2]
            headers = {"Authorization": f"Bearer {tokens[n % len(tokens)]}"}
            async with httpx.AsyncClient(base_url=base, timeout=30, headers=headers) as http:
                for i in range(15):
                    if i % 5 == 0:
                        body = seizure_body(title=f"parallel {n}-{i} {uuid.uuid4().hex[:6]}")
                        answer = await http.post("/api/v1/alerts", json=body)
                    else:
                        answer = await http.get("/api/v1/alerts")
                    answers.append(answer.status_code)

        await asyncio.wait_for(asyncio.gather(*(worker(n) for n in range(8))), timeout=120)
    assert answers.count(200) == 8 * 12 and answers.count(201) == 8 * 3
    async with db.session() as session:  # a lock timeout may have left some for the sweep
        await chain.sweep(session)
        await session.commit()
    rows = await _linked(db)
    new = rows[before:]
    assert [r.action for r in new].count("alert.list") == 8 * 12
    assert [r.action for r in new].count("alert.create") == 8 * 3
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert len({r.id for r in rows}) == len(rows)
    verdict = await _verify(db)
    assert verdict.ok and verdict.unchained == 0 and verdict.checked == len(rows)


async def test_concurrent_linkers_in_many_processes_link_each_record_once(db, settings, backend):
    """Four engines (as four API processes would), each committing and linking at once."""
    if backend != "postgres":
        pytest.skip("SQLite has one writer at a time by construction")
    databases = [Database(settings) for _ in range(4)]

    async def writer(w: int, database: Database, n: int) -> None:
        for i in range(n):
            entries = [
                audit.Entry("test.linkers", details={"w": w, "i": i, "k": k}) for k in range(3)
            ]
            async with database.session() as session:
                await audit.record_many(session, None, entries)
                await session.commit()

    try:
        await asyncio.gather(*(writer(w, d, 20) for w, d in enumerate(databases)))
    finally:
        for d in databases:
            await d.dispose()
    rows = await _linked(db)
    assert len([r for r in rows if r.action == "test.linkers"]) == 4 * 20 * 3
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    # The records of one transaction keep their order in the chain.
    order: dict[tuple[int, int], list[int]] = {}
    for r in rows:
        if r.action == "test.linkers":
            order.setdefault((r.details["w"], r.details["i"]), []).append(r.details["k"])
    assert len(order) == 4 * 20 and all(ks == [0, 1, 2] for ks in order.values())
    verdict = await _verify(db)
    assert verdict.ok and verdict.unchained == 0


async def test_posting_an_alert_still_links_its_record_before_the_answer(client, db, app):
    focal = await make_actor(
        client, db, app.state.auth.hashing, await make_agency(db), Role.focal_point
    )
    created = await post_alert(client, focal, seizure_body())
    async with db.session() as session:
        row = (
            await session.exec(select(AuditRecord).where(AuditRecord.object_id == created["id"]))
        ).one()
    assert row.seq is not None and row.hash is not None
