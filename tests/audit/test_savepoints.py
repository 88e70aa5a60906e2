"""Savepoints inside one transaction: a failed one takes its own audit records only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from app.audit import service as audit
from app.audit.models import AuditRecord


async def _actions(db) -> list[tuple[str, str | None]]:
    async with db.session() as session:
        rows = await session.exec(
            select(AuditRecord.action, AuditRecord.object_id)
            .where(col(AuditRecord.action).startswith("test."))
            .order_by(col(AuditRecord.seq))
        )
        return list(rows.all())


async def test_a_failed_savepoint_takes_its_audit_records_with_it(db):
    async with db.session() as session:
        await audit.record(session, None, "test.kept", object_id="before")
        with pytest.raises(RuntimeError):
            async with audit.savepoint(session):
                await audit.record(session, None, "test.dropped", object_id="inside")
                raise RuntimeError("refused")
        async with audit.savepoint(session):
            await audit.record(session, None, "test.kept", object_id="after")
        await session.commit()
    assert await _actions(db) == [("test.kept", "before"), ("test.kept", "after")]
    async with db.session() as session:
        assert (await audit.verify(session)).ok


async def test_records_staged_before_a_failed_savepoint_after_a_query_are_kept(db):
    async with db.session() as session:
        await session.exec(sa.text("SELECT 1"))
        await audit.record(session, None, "test.kept", object_id="staged first")
        with pytest.raises(RuntimeError):
            async with audit.savepoint(session):
                await session.exec(sa.text("SELECT 1"))
                await audit.record(session, None, "test.dropped", object_id="inside")
                raise RuntimeError("refused")
        await session.commit()
    assert await _actions(db) == [("test.kept", "staged first")]


async def test_savepoints_within_savepoints(db):
    async with db.session() as session:
        async with audit.savepoint(session):
            await audit.record(session, None, "test.kept", object_id="outer")
            with pytest.raises(RuntimeError):
                async with audit.savepoint(session):
                    await audit.record(session, None, "test.dropped", object_id="inner")
                    async with audit.savepoint(session):
                        await audit.record(session, None, "test.dropped", object_id="innermost")
                    raise RuntimeError("refused")
            await audit.record(session, None, "test.kept", object_id="outer again")
        await session.commit()
    assert await _actions(db) == [("test.kept", "outer"), ("test.kept", "outer again")]


async def test_a_rolled_back_transaction_writes_none_of_its_records(db):
    async with db.session() as session:
        async with audit.savepoint(session):
            await audit.record(session, None, "test.dropped", object_id="released")
        await session.rollback()
        await audit.record(session, None, "test.kept", object_id="next transaction")
        await session.commit()
    assert await _actions(db) == [("test.kept", "next transaction")]
