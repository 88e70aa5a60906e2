"""The linking run that reads the chain's tail with its first batch of unlinked
records (app/audit/chain.py::_FIRST_UNLINKED): an empty chain, a chain with linked rows,
more than one batch, and two runs at once."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlmodel import col, select

from app.audit import chain, heads
from app.audit import service as audit
from app.audit.models import AuditRecord
from app.core.types import utcnow


async def _leave_unlinked(db, count: int) -> None:
    rows = [
        {"at": utcnow(), "actor_kind": "worker", "action": "test.tail", "details": {"n": n}}
        for n in range(count)
    ]
    async with db.session() as session:
        await session.exec(sa.insert(chain.TABLE), params=rows)
        await session.commit()


async def _sweep(db) -> int:
    async with db.session() as session:
        linked = await chain.sweep(session)
        await session.commit()
    return linked


async def _seqs(db) -> list[int | None]:
    async with db.session() as session:
        query = select(AuditRecord.seq).order_by(col(AuditRecord.id))
        return list((await session.exec(query)).all())


async def _verify(db) -> audit.Verdict:
    async with db.session() as session:
        return await audit.verify(session, heads.verify_key(db.settings))


async def test_an_empty_chain_then_more_than_a_batch_then_a_few_more(db):
    base = len(await _seqs(db))  # the world may have linked records already
    await _leave_unlinked(db, chain.BATCH + 7)
    assert await _sweep(db) == chain.BATCH + 7
    await _leave_unlinked(db, 3)
    assert await _sweep(db) == 3
    seqs = await _seqs(db)
    assert seqs == list(range(1, base + chain.BATCH + 11))
    verdict = await _verify(db)
    assert verdict.ok and verdict.unchained == 0, verdict


async def test_two_sweeps_at_once_give_each_record_one_place(db):
    await _leave_unlinked(db, 5)
    await _sweep(db)
    await _leave_unlinked(db, chain.BATCH + 50)
    counts = await asyncio.gather(_sweep(db), _sweep(db))
    assert sum(counts) == chain.BATCH + 50
    seqs = await _seqs(db)
    assert seqs == list(range(1, len(seqs) + 1))
    verdict = await _verify(db)
    assert verdict.ok and verdict.unchained == 0, verdict
