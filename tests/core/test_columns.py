"""Enum columns: a plain VARCHAR in the database, the enum's member in the code."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import StatementError
from sqlmodel import col, select

from app.agencies.models import Agency, AgencyStatus
from app.authz.principal import Role
from app.core.columns import EnumText
from app.core.db import Database
from tests.factories import make_agency


def test_the_cache_key_names_the_enum_and_the_length() -> None:
    assert EnumText(Role, 20)._static_cache_key == EnumText(Role, 20)._static_cache_key
    assert EnumText(Role, 20)._static_cache_key != EnumText(AgencyStatus, 20)._static_cache_key
    assert EnumText(Role, 20)._static_cache_key != EnumText(Role, 30)._static_cache_key


def test_the_column_is_a_plain_varchar() -> None:
    column = sa.Table("t", sa.MetaData(), sa.Column("status", EnumText(AgencyStatus, 20))).c.status
    assert str(sa.schema.CreateColumn(column).compile()) == "status VARCHAR(20)"


async def test_rows_come_back_as_members_and_are_stored_as_strings(db: Database) -> None:
    agency = await make_agency(db, status=AgencyStatus.suspended)
    async with db.session() as session:
        # A Core select of the column, with a member and with its string bound.
        for wanted in (AgencyStatus.suspended, "suspended"):
            query = select(Agency.status).where(Agency.id == agency.id, Agency.status == wanted)
            (status,) = (await session.exec(query)).all()
            assert status is AgencyStatus.suspended
        stored = await session.exec(  # type: ignore[call-overload]
            sa.text("SELECT status FROM agency WHERE id = :id").bindparams(
                sa.bindparam("id", agency.id, type_=sa.Uuid())
            )
        )
        assert type(stored.scalar_one()) is str


async def test_a_value_outside_the_enum_is_refused(db: Database) -> None:
    async with db.session() as session:
        with pytest.raises(StatementError, match="is not a valid AgencyStatus"):
            await session.exec(select(Agency.id).where(col(Agency.status) == "closed"))
