"""`POST /api/v1/alerts:batch`: many alerts in one request, each answered on its own."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlmodel import select

from app.audit.models import AuditRecord
from app.authz.principal import Role
from tests.factories import Actor, make_actor, make_agency, seizure_body, trace_body

BATCH = "/api/v1/alerts:batch"


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
        client, db, app.state.auth.hashing, await make_agency(db, country="JO"), Role.focal_point
    )


def _to(agency_id: uuid.UUID, **overrides: object) -> dict:
    """A published seizure for one named agency only."""
    handling = {"tlp": "amber", "audience": "recipients", "recipient_agencies": [str(agency_id)]}
    return seizure_body(handling=handling, publish=True, **overrides)


async def _creates(db, agency_id: uuid.UUID) -> list[str]:
    async with db.session() as session:
        rows = await session.exec(
            select(AuditRecord.object_id).where(
                AuditRecord.action == "alert.create", AuditRecord.agency_id == agency_id
            )
        )
        return sorted(r for r in rows.all() if r is not None)


async def test_each_alert_gets_its_own_answer_and_the_refused_leave_nothing(client, db, ke, co, jo):
    alerts = [
        _to(co.agency.id, title="For Colombia"),
        seizure_body(title=""),  # refused by validation
        {**trace_body(co.agency), "publish": True},
        _to(uuid.uuid4(), title="For nobody known"),  # refused by the sharing rule
        seizure_body(title="A draft", publish=False),
        "not an alert",
    ]
    answer = await client.post(BATCH, json={"alerts": alerts}, headers=ke.headers)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [r["status"] for r in body["results"]] == [201, 422, 201, 422, 201, 422]
    assert [r["index"] for r in body["results"]] == list(range(6))
    assert (body["created"], body["refused"]) == (3, 3)
    fields = [[e["field"] for e in r["problem"]["errors"]] for r in body["results"] if r["problem"]]
    assert fields[0] == ["body.alerts.1.seized_weapon.title"]
    assert fields[1][0].startswith("body.alerts.3.handling.recipient_agencies")
    assert fields[2] == ["body.alerts.5"]
    assert all(r["alert"] is None for r in body["results"] if r["problem"])
    # Each stored alert is answered as POST /alerts (and GET) would answer it.
    stored = [r["alert"] for r in body["results"] if r["alert"]]
    for alert in stored:
        again = await client.get(f"/api/v1/alerts/{alert['id']}", headers=ke.headers)
        assert again.json() == alert
    assert [a["title"] for a in stored] == [
        "For Colombia",
        "Trace of an AKM rifle seized at Busia",
        "A draft",
    ]
    assert await _creates(db, ke.agency.id) == sorted(a["id"] for a in stored)
    listed = (await client.get("/api/v1/alerts", headers=ke.headers)).json()["items"]
    assert len(listed) == 3
    # The sharing rule holds for each: Colombia sees its two, Jordan none, the draft nobody.
    seen = (await client.get("/api/v1/alerts", headers=co.headers)).json()["items"]
    assert sorted(a["title"] for a in seen) == [
        "For Colombia",
        "Trace of an AKM rifle seized at Busia",
    ]
    assert (await client.get("/api/v1/alerts", headers=jo.headers)).json()["items"] == []


async def test_a_repeat_with_its_key_replays_and_stores_nothing_more(client, db, ke, co):
    headers = {**ke.headers, "Idempotency-Key": "sync-2026-12-03-chunk-1"}
    payload = {"alerts": [_to(co.agency.id, title=f"Record {n}") for n in range(3)]}
    first = await client.post(BATCH, json=payload, headers=headers)
    again = await client.post(BATCH, json=payload, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(await _creates(db, ke.agency.id)) == 3
    changed = {"alerts": payload["alerts"][:2]}
    refused = await client.post(BATCH, json=changed, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "header.Idempotency-Key"


async def test_a_replay_shows_what_the_caller_may_read_now(client, ke, co):
    headers = {**ke.headers, "Idempotency-Key": "withdrawn-since"}
    payload = {"alerts": [_to(co.agency.id, title="Soon withdrawn")]}
    first = (await client.post(BATCH, json=payload, headers=headers)).json()
    alert_id = first["results"][0]["alert"]["id"]
    withdrawn = await client.post(
        f"/api/v1/alerts/{alert_id}/withdraw", json={"reason": "Entered twice"}, headers=ke.headers
    )
    assert withdrawn.status_code == 200
    replay = (await client.post(BATCH, json=payload, headers=headers)).json()
    assert replay["results"][0]["alert"]["status"] == "withdrawn"
    assert replay["results"][0]["alert"]["version"] > first["results"][0]["alert"]["version"]


@pytest.mark.parametrize("count", [0, 501])
async def test_an_empty_or_oversized_batch_is_refused_whole(client, ke, count):
    answer = await client.post(BATCH, json={"alerts": [seizure_body()] * count}, headers=ke.headers)
    assert answer.status_code in (413, 422), answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    if answer.status_code == 422:
        assert answer.json()["errors"][0]["field"] == "body.alerts"
    assert (await client.get("/api/v1/alerts", headers=ke.headers)).json()["items"] == []


async def test_only_authors_may_post_a_batch(client, db, app, ke):
    reader = await make_actor(client, db, app.state.auth.hashing, ke.agency, Role.reader)
    payload = {"alerts": [seizure_body()]}
    assert (await client.post(BATCH, json=payload)).status_code == 401
    assert (await client.post(BATCH, json=payload, headers=reader.headers)).status_code == 403
    assert (await client.get("/api/v1/alerts", headers=ke.headers)).json()["items"] == []


async def test_parallel_batches_lose_no_alert(client, db, ke, co):
    """Four batches at once (PostgreSQL: four transactions): every alert answered 201 is
    stored once, and the recipient sees every one of them."""
    batches = [
        {"alerts": [_to(co.agency.id, title=f"Batch {b} record {n}") for n in range(10)]}
        for b in range(4)
    ]
    answers = await asyncio.gather(
        *(client.post(BATCH, json=payload, headers=ke.headers) for payload in batches)
    )
    assert [a.status_code for a in answers] == [200] * 4, [a.text for a in answers]
    ids = {r["alert"]["id"] for a in answers for r in a.json()["results"]}
    assert len(ids) == 40
    assert set(await _creates(db, ke.agency.id)) == ids
    seen: set[str] = set()
    cursor: str | None = None
    while True:
        params = {"limit": 25} | ({"cursor": cursor} if cursor else {})
        page = (await client.get("/api/v1/alerts", params=params, headers=co.headers)).json()
        seen |= {a["id"] for a in page["items"]}
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ids
