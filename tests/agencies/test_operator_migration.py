"""The migration that brings the operator's agency in: existing data is put right."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from app.core import migrate
from app.core.db import create_engine
from tests.conftest import settings_for

BEFORE = "863d6e7b4a28"  # the revision before the operator's agency existed


def _id(name: str, value: uuid.UUID) -> sa.BindParameter:
    return sa.bindparam(name, value, sa.Uuid())


async def test_upgrade_flags_the_operator_and_takes_it_out_of_groups(tmp_path):
    engine = create_engine(settings_for(f"sqlite+aiosqlite:///{tmp_path}/old.db"))
    operator, other = uuid.uuid4(), uuid.uuid4()
    theirs, ours = uuid.uuid4(), uuid.uuid4()
    try:
        await migrate.upgrade(engine, BEFORE)
        async with engine.begin() as conn:
            for agency, name in ((operator, "Operations"), (other, "Other")):
                await conn.execute(
                    sa.text(
                        "INSERT INTO agency (id, name, country, type, is_focal_point, status,"
                        " created_at, updated_at) VALUES (:i, :n, 'XX', 'police', false,"
                        " 'active', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ).bindparams(_id("i", agency), n=name)
                )
            await conn.execute(
                sa.text(
                    "INSERT INTO user_account (id, agency_id, email, full_name, role,"
                    " password_hash, is_active, created_at, updated_at) VALUES (:i, :a,"
                    " 'ops@tracewire.example', 'Ops', 'platform_admin', 'x', true,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ).bindparams(_id("i", uuid.uuid4()), _id("a", operator))
            )
            for group, owner in ((theirs, other), (ours, operator)):
                await conn.execute(
                    sa.text(
                        "INSERT INTO sharing_group (id, owner_agency_id, name, description,"
                        " hide_members, created_at, updated_at) VALUES (:i, :o, :n, '', false,"
                        " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                    ).bindparams(_id("i", group), _id("o", owner), n=str(group))
                )
                for member in (operator, other):
                    await conn.execute(
                        sa.text(
                            "INSERT INTO sharing_group_member (group_id, agency_id, added_at)"
                            " VALUES (:g, :m, CURRENT_TIMESTAMP)"
                        ).bindparams(_id("g", group), _id("m", member))
                    )
        await migrate.upgrade(engine)
        async with engine.connect() as conn:
            flags = dict(
                (await conn.execute(sa.text("SELECT name, is_operator FROM agency"))).all()
            )
            members = (
                await conn.execute(sa.text("SELECT agency_id FROM sharing_group_member"))
            ).scalars()
            retired = dict(
                (
                    await conn.execute(
                        sa.text("SELECT name, deleted_at IS NOT NULL FROM sharing_group")
                    )
                ).all()
            )
        assert flags == {"Operations": True, "Other": False}
        assert {uuid.UUID(str(m)) for m in members} == {other}
        assert retired == {str(theirs): False, str(ours): True}
        await migrate.downgrade(engine, BEFORE)  # and back, with the rows in place
    finally:
        await engine.dispose()
