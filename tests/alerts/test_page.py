"""The list page's reads: its alerts, then their items and recipients, in one query each."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event

from app.authz.principal import Role
from tests.factories import Actor, make_actor, make_agency, post_alert, seizure_body


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


@contextmanager
def alert_reads(db) -> Iterator[list[str]]:
    """The statements that read the alert tables (not the audit trail or the login)."""
    seen: list[str] = []

    def note(_conn, _cursor, statement: str, *_args) -> None:
        if " FROM alert" in " ".join(statement.split()) and "audit_record" not in statement:
            seen.append(statement)

    engine = db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


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
