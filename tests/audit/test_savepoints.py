"""Savepoints inside one transaction: a failed one takes its own audit records only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app.agencies.models import Agency, AgencyType
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


async def test_a_savepoint_refused_at_its_release_takes_its_records_with_it(db):
    """The constraint fails only when the savepoint's rows are flushed, as it is released:
    its records go with it, the transaction's own are kept."""
    async with db.session() as session:
        agency = Agency(name="Savepoint agency", country="KE", type=AgencyType.police)
        session.add(agency)
        await session.commit()
    async with db.session() as session:
        await audit.record(session, None, "test.kept", object_id="outside")
        with pytest.raises(IntegrityError):
            async with audit.savepoint(session):
                await audit.record(session, None, "test.dropped", object_id="at release")
                twin = Agency(id=agency.id, name="Same id", country="KE", type=AgencyType.police)
                session.add(twin)
        await session.commit()
    assert await _actions(db) == [("test.kept", "outside")]
