"""A published trace request keeps its addressee; the addressee may forward it instead."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import select

from app.agencies.models import Agency, AgencyStatus
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.events.models import Event
from tests.factories import make_actor, make_agency, post_alert, trace_body

RESPONSE = {"outcome": "traced", "findings": {"manufacturer": "Zastava Arms"}}


@pytest.fixture
async def parties(client, db, app):
    hashing = app.state.auth.hashing
    ke, de, de2, co = [await make_agency(db, country=c) for c in ("KE", "DE", "DE", "CO")]
    suspended = await make_agency(db, country="DE", status=AgencyStatus.suspended)
    operator = await make_agency(db, country="DE")
    async with db.session() as session:
        row = await session.get(Agency, operator.id)
        row.is_operator = True
        await session.commit()
    return {
        "requester": await make_actor(client, db, hashing, ke, Role.focal_point),
        "addressee": await make_actor(client, db, hashing, de, Role.focal_point),
        "addressee_reader": await make_actor(client, db, hashing, de, Role.reader),
        "forwardee": await make_actor(client, db, hashing, de2, Role.focal_point),
        "third_party": await make_actor(client, db, hashing, co, Role.focal_point),
        "suspended": suspended,
        "operator": operator,
    }


async def _new_trace(client, p, *, publish: bool = True) -> str:
    body = trace_body(
        p["addressee"].agency,
        handling={
            "tlp": "amber",
            "audience": "recipients",
            "recipient_agencies": [str(p["third_party"].agency.id)],
        },
    )
    return (await post_alert(client, p["requester"], body, publish=publish))["id"]


async def _get(client, actor, path: str):
    return await client.get(path, headers=actor.headers)


async def _readdress(client, p, trace_id: str, to: uuid.UUID, version: int):
    current = (await _get(client, p["requester"], f"/api/v1/alerts/{trace_id}")).json()
    details = {**current["details"], "addressed_to": str(to)}
    return await client.patch(
        f"/api/v1/alerts/{trace_id}",
        json={"details": details},
        headers={**p["requester"].headers, "If-Match": f'"{version}"'},
    )


@pytest.mark.parametrize("state", ["submitted", "responded"])
async def test_a_published_request_keeps_its_addressee(client, parties, state):
    trace_id = await _new_trace(client, parties)
    if state == "responded":
        answered = await client.post(
            f"/api/v1/trace-requests/{trace_id}/respond",
            json=RESPONSE,
            headers=parties["addressee"].headers,
        )
        assert answered.status_code == 200
    moved = await _readdress(client, parties, trace_id, parties["forwardee"].agency.id, 1)
    assert moved.status_code == 409, moved.text
    assert [e["field"] for e in moved.json()["errors"]] == ["body.details.addressed_to"]
    # Nothing moved: the addressee still holds the request (and its own answer).
    seen = await _get(client, parties["addressee"], f"/api/v1/trace-requests/{trace_id}")
    assert seen.status_code == 200
    assert seen.json()["addressee_agency_id"] == str(parties["addressee"].agency.id)
    if state == "responded":
        assert seen.json()["response"]["outcome"] == "traced"
    other = await _get(client, parties["forwardee"], f"/api/v1/alerts/{trace_id}")
    assert other.status_code == 404
    # Re-sending the same addressee with other changed details is an ordinary edit.
    same = await _readdress(client, parties, trace_id, parties["addressee"].agency.id, 1)
    assert same.status_code == 200, same.text


async def test_a_draft_may_still_be_readdressed(client, parties):
    trace_id = await _new_trace(client, parties, publish=False)
    moved = await _readdress(client, parties, trace_id, parties["forwardee"].agency.id, 1)
    assert moved.status_code == 200, moved.text
    assert moved.json()["addressed_to_agency_id"] == str(parties["forwardee"].agency.id)


async def test_forward_spawns_a_linked_request_for_the_new_agency(client, db, parties):
    trace_id = await _new_trace(client, parties)
    base = f"/api/v1/trace-requests/{trace_id}"
    await client.post(
        f"{base}/request-info",
        json={"question": "Which proof marks are on the barrel?"},
        headers=parties["addressee"].headers,
    )
    await client.post(
        f"{base}/provide-info", json={"answer": "A crown."}, headers=parties["requester"].headers
    )
    done = await client.post(
        f"{base}/forward",
        json={"agency_id": str(parties["forwardee"].agency.id), "note": "Customs hold it."},
        headers=parties["addressee"].headers,
    )
    assert done.status_code == 200, done.text
    old = done.json()
    assert (old["state"], old["transitions"][-1]["action"]) == ("forwarded", "forward")
    new_id = old["forwarded_to"]
    assert new_id and new_id != trace_id
    # The new request is the requester's, to the new agency alone, and starts afresh.
    new = (await _get(client, parties["requester"], f"/api/v1/trace-requests/{new_id}")).json()
    assert new["state"] == "submitted" and new["forwarded_from"] == trace_id
    assert new["requester_agency_id"] == str(parties["requester"].agency.id)
    assert new["addressee_agency_id"] == str(parties["forwardee"].agency.id)
    assert new["messages"] == [] and new["title"] == old["title"]
    theirs = await _get(client, parties["forwardee"], f"/api/v1/trace-requests/{new_id}")
    assert theirs.status_code == 200 and theirs.json()["direction"] == "incoming"
    alert = (await _get(client, parties["forwardee"], f"/api/v1/alerts/{new_id}")).json()
    assert [i["serial_key"] for i in alert["items"]] == ["M7099812"]
    # Each request stays between its own two parties.
    for actor, path in (
        ("forwardee", base),
        ("forwardee", f"/api/v1/alerts/{trace_id}"),
        ("addressee", f"/api/v1/trace-requests/{new_id}"),
        ("third_party", f"/api/v1/alerts/{new_id}"),
    ):
        assert (await _get(client, parties[actor], path)).status_code == 404, (actor, path)
    kept = (await _get(client, parties["addressee"], base)).json()
    assert [m["kind"] for m in kept["messages"]] == ["question", "answer"]
    # The new addressee can work it; the old one can no longer.
    ack = await client.post(
        f"/api/v1/trace-requests/{new_id}/acknowledge", headers=parties["forwardee"].headers
    )
    assert ack.status_code == 200
    late = await client.post(f"{base}/respond", json=RESPONSE, headers=parties["addressee"].headers)
    assert late.status_code == 409
    async with db.session() as session:
        audit = (
            await session.exec(select(AuditRecord).where(AuditRecord.action == "trace.forward"))
        ).all()
        events = (await session.exec(select(Event).where(Event.type == "trace.forwarded"))).all()
    assert [(a.object_id, a.agency_id) for a in audit] == [
        (trace_id, parties["addressee"].agency.id)
    ]
    assert audit[0].details["to_agency"] == str(parties["forwardee"].agency.id)
    assert [str(e.alert_id) for e in events] == [trace_id]
    assert set(events[0].agency_ids) == {
        parties["requester"].agency.id,
        parties["addressee"].agency.id,
    }


@pytest.mark.parametrize(
    ("actor", "target", "status"),
    [
        ("requester", "forwardee", 403),
        ("addressee_reader", "forwardee", 403),
        ("third_party", "forwardee", 404),
        ("addressee", "third_party", 422),  # another country
        ("addressee", "addressee", 422),  # itself
        ("addressee", "suspended", 422),
        ("addressee", "operator", 422),  # the platform operator's agency (DESIGN §2)
        ("addressee", "nobody", 422),
    ],
)
async def test_who_may_forward_and_where(client, parties, actor, target, status):
    trace_id = await _new_trace(client, parties)
    to = {
        "nobody": uuid.uuid4(),
        "suspended": parties["suspended"].id,
        "operator": parties["operator"].id,
    }.get(target) or parties[target].agency.id
    answer = await client.post(
        f"/api/v1/trace-requests/{trace_id}/forward",
        json={"agency_id": str(to)},
        headers=parties[actor].headers,
    )
    assert answer.status_code == status, answer.text
    if status == 422:
        assert [e["field"] for e in answer.json()["errors"]] == ["body.agency_id"]
    state = (await _get(client, parties["requester"], f"/api/v1/trace-requests/{trace_id}")).json()
    assert state["state"] == "submitted"


async def test_an_answered_request_is_not_forwarded(client, parties):
    trace_id = await _new_trace(client, parties)
    base = f"/api/v1/trace-requests/{trace_id}"
    await client.post(f"{base}/respond", json=RESPONSE, headers=parties["addressee"].headers)
    again = await client.post(
        f"{base}/forward",
        json={"agency_id": str(parties["forwardee"].agency.id)},
        headers=parties["addressee"].headers,
    )
    assert again.status_code == 409
