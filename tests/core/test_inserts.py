"""Rows written through app/core/inserts.py (one JSON array per table on PostgreSQL) are
stored as the ORM would store them: a value outside its enum refused, a JSON column's None
as JSON null, every other value as given."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError

from app.core import inserts
from app.core.columns import table_of, values_of
from app.core.db import Database
from app.core.types import utcnow
from app.events.models import Event, EventType

_EVENTS = table_of(Event)


def _event(**overrides: object) -> dict[str, object]:
    event = Event(
        id=uuid.uuid4(),
        type=EventType.ping,
        alert_id=None,
        agency_ids=[],
        data={},
        created_at=utcnow(),
    )
    return {**values_of(event, _EVENTS), **overrides}


async def test_a_value_outside_its_enum_is_refused_and_nothing_written(db: Database) -> None:
    good, bad = _event(), _event(type="alert.exploded")
    async with db.session() as session:
        with pytest.raises((ValueError, StatementError)):
            await inserts.insert_all(session, [(_EVENTS, [good, bad])])
        await session.rollback()
        count = (await session.exec(sa.select(sa.func.count()).select_from(_EVENTS))).one()
    assert count == (0,)


async def test_values_read_back_as_written(db: Database) -> None:
    agency = uuid.uuid4()
    row = _event(agency_ids=[agency], data={"n": 1.5, "text": 'é "q" \\ 𝔸', "none": None})
    async with db.session() as session:
        await inserts.insert_all(session, [(_EVENTS, [row])])
        await session.commit()
        stored = await session.get(Event, row["id"])
    assert stored is not None
    assert stored.type is EventType.ping and stored.agency_ids == [agency]
    assert stored.data == row["data"] and stored.created_at == row["created_at"]


async def test_a_json_columns_none_is_json_null_as_the_orm_stores_it(db: Database) -> None:
    """`alert.location` without a location: the same stored value from both paths."""
    async with db.session() as session:
        conn = await session.connection()
        if conn.dialect.name != "postgresql":
            pytest.skip("SQLite's JSON is text either way")
        table = sa.Table("t_json_null", sa.MetaData(), sa.Column("v", sa.JSON, nullable=True))
        await conn.run_sync(table.create)
        await inserts.insert_all(session, [(table, [{"v": None}])])
        await conn.execute(sa.insert(table), [{"v": None}])
        kinds = (await conn.execute(sa.text("SELECT v IS NULL FROM t_json_null"))).all()
        await session.rollback()
    assert kinds == [(False,), (False,)]
