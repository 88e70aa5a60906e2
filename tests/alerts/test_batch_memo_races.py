"""The batch memo (app/core/memo.py) against changes other transactions commit while a
batch runs (PostgreSQL; SQLite's batch holds the only writer slot, so nothing else commits
meanwhile).

Every alert of a batch reads the live subscriptions and group members with its own
statement (READ COMMITTED), so an alert fanned out after such a commit is delivered to
them; a memo of those reads (the red-team pass found it) lost those deliveries.
"""

from __future__ import annotations

import uuid

import pytest

from app.alerts import service
from app.alerts.batch import _ALERT
from app.auth.principals import user_principal
from app.core import memo
from tests.alerts.test_batch_fanout import _deliveries, _group, _handling, _subscribe
from tests.factories import seizure_body


def _author(world):
    return user_principal(world["KE"].user, token_id=uuid.uuid4().hex, session_id=None)


@pytest.fixture
def only_postgres(backend: str) -> None:
    if backend != "postgres":
        pytest.skip("SQLite: no other transaction commits while a batch holds the writer")


async def test_a_subscription_committed_mid_batch_receives_later_alerts(
    only_postgres, client, db, world
):
    de = world["DE"].agency.id
    data = _ALERT.validate_python(seizure_body(publish=True, handling=_handling("amber", [de])))
    async with db.session() as session:
        with memo.batch(session):
            await service.create_alert(session, _author(world), data)
            sub = await _subscribe(client, world["DE_admin"])  # its own transaction, committed
            later = await service.create_alert(session, _author(world), data)
        await session.commit()
    assert (await _deliveries(db)).get(later.id) == {sub}


async def test_an_agency_added_to_a_group_mid_batch_is_told_of_later_alerts(
    only_postgres, client, db, world
):
    jo = world["JO"].agency.id
    de = world["DE"].agency.id
    jo_sub = await _subscribe(client, world["JO_admin"])
    await _subscribe(client, world["DE_admin"])
    group_id = await _group(client, world["KE_admin"], [de])
    body = seizure_body(publish=True, handling=_handling("amber", (), [group_id]))
    data = _ALERT.validate_python(body)
    async with db.session() as session:
        with memo.batch(session):
            await service.create_alert(session, _author(world), data)
            added = await client.put(
                f"/api/v1/sharing-groups/{group_id}/members/{jo}",
                headers=world["KE_admin"].headers,
            )
            assert added.status_code in (200, 201, 204), added.text
            later = await service.create_alert(session, _author(world), data)
        await session.commit()
    seen = await client.get(f"/api/v1/alerts/{later.id}", headers=world["JO"].headers)
    assert seen.status_code == 200  # JO reads the alert ...
    assert jo_sub in (await _deliveries(db)).get(later.id, set())  # ... and is told of it
