"""The list page's reads: its alerts, then their items and recipients, in one query each."""

from __future__ import annotations

from contextlib import AbstractContextManager

import pytest

from app.authz.principal import Role
from tests.factories import Actor, make_actor, make_agency, post_alert, seizure_body
from tests.sqllog import statements


@pytest.fixture
async def ke(client, db, app) -> Actor:
    return await make_actor(
        client, db, app.state.auth.hashing, await make_agency(db, country="KE"), Role.focal_point
    )


@pytest.fixture
async def co(client, db, app) -> Actor:
    return await make_actor(
        client, db, app.state.auth.hashing, await make_agency(db, country="CO"), Role.focal_point
    )


@pytest.fixture
async def jo(client, db, app) -> Actor:
    return await make_actor(
        client, db, app.state.auth.hashing, await make_agency(db, country="JO"), Role.reader
    )


_AUDIT_ONLY = ("INSERT INTO audit_record", "SELECT audit_record", "UPDATE audit_record")


def _reads_alerts(text: str) -> bool:
    # The page's audit record may ride on its children's read (a WITH on PostgreSQL).
    return " FROM alert" in text and not text.startswith(_AUDIT_ONLY)


def alert_reads(db) -> AbstractContextManager[list[str]]:
    """The statements that read the alert tables (not the audit trail or the login)."""
    return statements(db, _reads_alerts)


async def test_a_page_is_two_reads_and_matches_single_reads(client, db, ke, co):
    to_co = {"tlp": "amber", "audience": "recipients", "recipient_agencies": [str(co.agency.id)]}
    own = [await post_alert(client, ke, seizure_body(handling=to_co)) for _ in range(3)]
    theirs = await post_alert(client, co, seizure_body())
    with alert_reads(db) as seen:
        page = await client.get("/api/v1/alerts", headers=ke.headers)
    assert page.status_code == 200
    assert len(seen) == 2  # the visible page, then its items and recipients
    bodies = {a["id"]: a for a in page.json()["items"]}
    assert set(bodies) == {a["id"] for a in own} | {theirs["id"]}
    for alert in own:
        shown = bodies[alert["id"]]
        assert shown["handling"]["recipient_agencies"] == [str(co.agency.id)]
        assert shown["handling"]["recipient_groups"] == []
        assert [i["serial_key"] for i in shown["items"]] == ["AK471234", "M7099812"]
    assert bodies[theirs["id"]]["handling"]["recipient_agencies"] is None
    assert [i["serial_key"] for i in bodies[theirs["id"]]["items"]] == ["AK471234", "M7099812"]
    for alert_id, shown in bodies.items():
        single = await client.get(f"/api/v1/alerts/{alert_id}", headers=ke.headers)
        assert single.json() == shown


async def test_a_pages_audit_record_goes_with_its_children(client, db, app, ke, co, backend):
    if backend != "postgres":
        pytest.skip("SQLite has no INSERT inside a WITH: the record is its own statement there")
    await post_alert(client, co, seizure_body(handling={"tlp": "green", "audience": "community"}))
    with statements(db) as seen:
        page = await client.get("/api/v1/alerts", headers=ke.headers)
    assert page.status_code == 200 and len(page.json()["items"]) == 1
    writes = [s for s in seen if "INSERT INTO audit_record" in s]
    assert len(writes) == 1 and writes[0].startswith("WITH audited AS (INSERT INTO audit_record")
    assert "FROM alert_item" in writes[0]
    admin = await make_actor(client, db, app.state.auth.hashing, ke.agency, Role.agency_admin)
    listed = await client.get("/api/v1/audit?action=alert.list", headers=admin.headers)
    assert [r["actor_id"] for r in listed.json()["items"]] == [str(ke.user.id)]


async def test_a_page_of_tombstones_reads_no_children(client, db, co, jo):
    alert = await post_alert(client, co, seizure_body())
    withdrawn = await client.post(
        f"/api/v1/alerts/{alert['id']}/withdraw", json={"reason": "wrong"}, headers=co.headers
    )
    assert withdrawn.status_code == 200
    with alert_reads(db) as seen:
        page = await client.get("/api/v1/alerts", headers=jo.headers)
    assert [a["tombstone"] for a in page.json()["items"]] == [True]
    assert page.json()["items"][0]["items"] is None
    assert len(seen) == 1  # nothing of a tombstone's content or recipients is read
