"""`POST /alerts:batch` under attack: odd entries, values the database refuses, replays by
the wrong principal or under changed rights, and two repeats of one key at once."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlmodel import col, func, select

from app.agencies.models import User
from app.alerts.models import Alert
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.events.models import Event, EventType
from tests.factories import (
    Actor,
    bearer,
    client_login,
    make_actor,
    make_agency,
    make_client,
    seizure_body,
)

BATCH = "/api/v1/alerts:batch"

# Text PostgreSQL refuses to store though validation lets it through: a NUL in the one
# item text field without the control-character check, and a make and a serial whose
# NFKC forms (their match keys) are far longer than their key columns.
LIGATURE = "\ufdfa"  # one character, eighteen under NFKC


def _unstorable_items() -> list[dict]:
    item = seizure_body()["items"][0]
    return [
        {**item, "calibre": "7.62\u0000"},
        {**item, "make": LIGATURE * 100},
        {**item, "serial_raw": LIGATURE * 100},
    ]


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


def _to(agency_id: object, tlp: str = "amber", **overrides: object) -> dict:
    handling = {"tlp": tlp, "audience": "recipients", "recipient_agencies": [str(agency_id)]}
    return seizure_body(handling=handling, publish=True, **overrides)


async def _count(db, model: type, *where: object) -> int:
    async with db.session() as session:
        return (await session.exec(select(func.count()).select_from(model).where(*where))).one()


async def test_odd_entries_are_each_a_problem_naming_their_index(client, db, ke, co):
    odd = [None, [], 0, 10**40, -1.5e308, True, {}, {"kind": None}, {"kind": ["seized_weapon"]}]
    nested: dict = {}
    for _ in range(20):  # under the body's depth limit (deeper: the whole body is a 422)
        nested = {"details": nested}
    odd += [{**seizure_body(), "details": nested}, {**seizure_body(), "items": [None, 7]}]
    alerts = [_to(co.agency.id, title="Kept"), *odd]
    answer = await client.post(BATCH, json={"alerts": alerts}, headers=ke.headers)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201] + [422] * len(odd)
    for index, result in enumerate(results[1:], start=1):
        fields = [e["field"] for e in result["problem"]["errors"]]
        assert fields and all(f.startswith(f"body.alerts.{index}") for f in fields), fields
    assert await _count(db, Alert, Alert.originator_agency_id == ke.agency.id) == 1
    for _ in range(40):
        nested = {"details": nested}
    deep = await client.post(BATCH, json={"alerts": [nested]}, headers=ke.headers)
    assert deep.status_code == 422
    assert deep.headers["content-type"].startswith("application/problem+json")


async def test_a_value_the_database_refuses_refuses_only_its_own_alert(client, db, ke, co):
    """Values PostgreSQL would refuse at the INSERT (a NUL; a match key longer than its
    column) are refused first, on both databases: the batch answers that alert with a 422
    naming the field, and keeps the others; no 500 for the whole batch."""
    bad = [seizure_body(items=[item], publish=True) for item in _unstorable_items()]
    alerts = [_to(co.agency.id, title="Before"), *bad, _to(co.agency.id, title="After")]
    answer = await client.post(BATCH, json={"alerts": alerts}, headers=ke.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    statuses = [r["status"] for r in body["results"]]
    assert statuses == [201] + [422] * len(bad) + [201], statuses
    stored = {r["alert"]["id"] for r in body["results"] if r["alert"]}
    for index, result in enumerate(body["results"]):
        if result["problem"]:
            field = result["problem"]["errors"][0]["field"]
            assert field.startswith(f"body.alerts.{index}.") and "items.0." in field, field
            assert LIGATURE not in json.dumps(result["problem"])  # nothing submitted echoed
    # What was refused left nothing: no alert, no audit record, no publication event.
    async with db.session() as session:
        ids = {
            str(a)
            for a in (
                await session.exec(
                    select(Alert.id).where(Alert.originator_agency_id == ke.agency.id)
                )
            ).all()
        }
    assert ids == stored
    assert await _count(
        db, AuditRecord, AuditRecord.action == "alert.create", AuditRecord.agency_id == ke.agency.id
    ) == len(stored)
    assert await _count(db, Event, Event.type == EventType.alert_published) == len(stored)


async def test_a_nul_in_the_calibre_is_refused_as_in_every_other_text_field(client, ke):
    body = seizure_body(items=[_unstorable_items()[0]])
    answer = await client.post("/api/v1/alerts", json=body, headers=ke.headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"].endswith("items.0.calibre")


@pytest.mark.parametrize("which", ["make", "serial_raw"])
async def test_a_make_or_serial_whose_key_outgrows_its_column_is_refused(client, ke, which):
    item = {**seizure_body()["items"][0], which: LIGATURE * 100}
    answer = await client.post(
        "/api/v1/alerts", json=seizure_body(items=[item]), headers=ke.headers
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == f"body.items.0.{which}"
    assert (await client.get("/api/v1/alerts", headers=ke.headers)).json()["items"] == []


async def test_a_key_is_the_callers_own_another_principal_never_gets_its_answer(
    client, db, app, ke, co
):
    """The same key and body from another principal (of the same agency, or another) runs
    afresh: it is never answered with the first principal's alerts."""
    payload = {"alerts": [_to(co.agency.id, tlp="red", title="Red for Colombia")]}
    first = await client.post(
        BATCH, json=payload, headers={**ke.headers, "Idempotency-Key": "shared-key"}
    )
    first_id = first.json()["results"][0]["alert"]["id"]
    colleague = await make_actor(client, db, app.state.auth.hashing, ke.agency, Role.focal_point)
    for other in (colleague, co):
        answer = await client.post(
            BATCH, json=payload, headers={**other.headers, "Idempotency-Key": "shared-key"}
        )
        assert answer.status_code == 200, answer.text
        assert "idempotent-replayed" not in answer.headers
        assert first_id not in answer.text
    assert await _count(db, Alert, Alert.originator_agency_id == ke.agency.id) == 2


async def test_a_replay_after_the_role_is_lowered_is_refused_and_shows_nothing(client, db, ke, co):
    headers = {**ke.headers, "Idempotency-Key": "before-demotion"}
    payload = {"alerts": [_to(co.agency.id, title="Posted by a focal point")]}
    assert (await client.post(BATCH, json=payload, headers=headers)).status_code == 200
    async with db.session() as session:
        user = await session.get(User, ke.user.id)
        user.role = Role.reader
        session.add(user)
        await session.commit()
    replay = await client.post(BATCH, json=payload, headers=headers)
    assert replay.status_code == 403
    assert replay.headers["content-type"].startswith("application/problem+json")
    assert "Posted by a focal point" not in replay.text
    assert "idempotent-replayed" not in replay.headers


async def test_a_replay_to_a_client_shows_a_re_marked_alert_as_it_may_read_it_now(
    client, db, app, ke, co
):
    """An API client without `alerts:read:red` posts an amber alert; its agency re-marks it
    red; the replay is a reference, not the stored content."""
    api_client, secret = await make_client(db, ke.agency, "alerts:read alerts:write")
    poster = bearer((await client_login(client, api_client.id, secret))["access_token"])
    headers = {**poster, "Idempotency-Key": "re-marked-since"}
    payload = {"alerts": [_to(co.agency.id, title="Amber at first")]}
    first = (await client.post(BATCH, json=payload, headers=headers)).json()
    alert = first["results"][0]["alert"]
    assert alert["title"] == "Amber at first"
    handling = {"tlp": "red", "audience": "recipients", "recipient_agencies": [str(co.agency.id)]}
    patched = await client.patch(
        f"/api/v1/alerts/{alert['id']}",
        json={"handling": handling},
        headers={**ke.headers, "If-Match": f'"{alert["version"]}"'},
    )
    assert patched.status_code == 200, patched.text
    replay = await client.post(BATCH, json=payload, headers=headers)
    assert replay.status_code == 200
    shown = replay.json()["results"][0]["alert"]
    assert shown["reference"] is True and shown["tlp"] == "red"
    assert "Amber at first" not in replay.text
    assert shown == (await client.get(f"/api/v1/alerts/{alert['id']}", headers=poster)).json()


async def test_a_red_alert_posted_by_a_client_without_red_is_answered_as_a_reference(
    client, db, ke, co
):
    api_client, secret = await make_client(db, ke.agency, "alerts:read alerts:write")
    poster = bearer((await client_login(client, api_client.id, secret))["access_token"])
    payload = {"alerts": [_to(co.agency.id, tlp="red", title="Red from a client")]}
    answer = await client.post(BATCH, json=payload, headers=poster)
    assert answer.status_code == 200, answer.text
    shown = answer.json()["results"][0]["alert"]
    assert shown["reference"] is True
    assert "Red from a client" not in answer.text
    assert shown == (await client.get(f"/api/v1/alerts/{shown['id']}", headers=poster)).json()


async def test_two_repeats_of_one_key_at_once_store_the_batch_once(client, db, ke, co):
    headers = {**ke.headers, "Idempotency-Key": "sent-twice-at-once"}
    payload = {"alerts": [_to(co.agency.id, title=f"Record {n}") for n in range(5)]}
    answers = await asyncio.gather(
        *(client.post(BATCH, json=payload, headers=headers) for _ in range(2))
    )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    assert sorted("idempotent-replayed" in a.headers for a in answers) == [False, True]
    ids = [{r["alert"]["id"] for r in a.json()["results"]} for a in answers]
    assert ids[0] == ids[1] and len(ids[0]) == 5
    assert await _count(db, Alert, col(Alert.originator_agency_id) == ke.agency.id) == 5


async def test_a_sharing_rule_refusal_names_its_rule_as_post_alerts_does(client, ke, co):
    red_to_all = seizure_body(handling={"tlp": "red", "audience": "community"}, publish=True)
    single = (await client.post("/api/v1/alerts", json=red_to_all, headers=ke.headers)).json()
    assert single["rule"]
    batch = await client.post(BATCH, json={"alerts": [red_to_all]}, headers=ke.headers)
    assert batch.json()["results"][0]["problem"].get("rule") == single["rule"]
    keyed = {**ke.headers, "Idempotency-Key": "refused-by-a-rule"}
    first = await client.post(BATCH, json={"alerts": [red_to_all]}, headers=keyed)
    again = await client.post(BATCH, json={"alerts": [red_to_all]}, headers=keyed)
    assert again.json() == first.json()
    assert again.json()["results"][0]["problem"]["rule"] == single["rule"]
