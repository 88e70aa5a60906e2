"""Withdrawing a trace request: one path for both routes, and what the addressee then sees."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import col, select

from app.alerts.models import Alert
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.core.types import utcnow
from app.events.models import Event
from app.webhooks.models import Delivery
from tests.factories import make_actor, make_agency, post_alert, trace_body

RESPONSE = {"outcome": "traced", "findings": {"manufacturer": "Zastava Arms"}}
ROUTES = {
    "alert": "/api/v1/alerts/{id}/withdraw",
    "trace": "/api/v1/trace-requests/{id}/withdraw",
}


@pytest.fixture
async def parties(client, db, app):
    hashing = app.state.auth.hashing
    ke, de, co = [await make_agency(db, country=c) for c in ("KE", "DE", "CO")]
    return {
        "requester": await make_actor(client, db, hashing, ke, Role.focal_point),
        "addressee": await make_actor(client, db, hashing, de, Role.focal_point),
        "third_party": await make_actor(client, db, hashing, co, Role.focal_point),
        "third_admin": await make_actor(client, db, hashing, co, Role.agency_admin),
    }


async def _new_trace(client, p, **handling) -> str:
    body = trace_body(
        p["addressee"].agency,
        handling={
            "tlp": "amber",
            "audience": "recipients",
            "recipient_agencies": [str(p["third_party"].agency.id)],
            **handling,
        },
    )
    return (await post_alert(client, p["requester"], body))["id"]


async def _records(db, alert_id: str) -> tuple[Counter[str], Counter[str], Counter[str]]:
    """(event types, audit actions, delivery event types) recorded for one alert."""
    async with db.session() as session:
        events = await session.exec(select(Event).where(Event.alert_id == uuid.UUID(alert_id)))
        audits = await session.exec(
            select(AuditRecord).where(
                AuditRecord.object_id == alert_id, col(AuditRecord.action).like("%withdraw%")
            )
        )
        deliveries = await session.exec(
            select(Delivery).where(Delivery.alert_id == uuid.UUID(alert_id))
        )
        return (
            Counter(e.type for e in events.all()),
            Counter(a.action for a in audits.all()),
            Counter(d.event_type for d in deliveries.all()),
        )


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_both_routes_withdraw_the_same_way(client, db, parties, route):
    """Alert and workflow end together, the audience is told, and both are audited."""
    sub = await client.post(
        "/api/v1/subscriptions",
        json={"url": "https://hooks.example.org/co", "event_types": ["alert.withdrawn"]},
        headers=parties["third_admin"].headers,
    )
    assert sub.status_code == 201, sub.text
    trace_id = await _new_trace(client, parties)
    await client.post(
        f"/api/v1/trace-requests/{trace_id}/acknowledge", headers=parties["addressee"].headers
    )
    done = await client.post(
        ROUTES[route].format(id=trace_id),
        json={"reason": "Traced through another channel."},
        headers=parties["requester"].headers,
    )
    assert done.status_code == 200, done.text
    alert = (
        await client.get(f"/api/v1/alerts/{trace_id}", headers=parties["requester"].headers)
    ).json()
    trace = (
        await client.get(f"/api/v1/trace-requests/{trace_id}", headers=parties["requester"].headers)
    ).json()
    assert (alert["status"], alert["version"]) == ("withdrawn", 2)
    assert alert["withdrawal_reason"] == "Traced through another channel."
    assert (trace["state"], trace["transitions"][-1]["action"]) == ("withdrawn", "withdraw")
    events, audits, deliveries = await _records(db, trace_id)
    assert events["alert.withdrawn"] == 1 and events["trace.withdrawn"] == 1
    assert audits == Counter({"alert.withdraw": 1, "trace.withdraw": 1})
    # The third party's endpoint hears of it: the alert's audience, not only the parties.
    assert deliveries["alert.withdrawn"] == 1


@pytest.mark.parametrize("route", sorted(ROUTES))
async def test_an_answered_request_is_not_withdrawn_by_either_route(client, db, parties, route):
    trace_id = await _new_trace(client, parties)
    answer = await client.post(
        f"/api/v1/trace-requests/{trace_id}/respond",
        json=RESPONSE,
        headers=parties["addressee"].headers,
    )
    assert answer.status_code == 200
    refused = await client.post(
        ROUTES[route].format(id=trace_id),
        json={"reason": "Too late."},
        headers=parties["requester"].headers,
    )
    assert refused.status_code == 409, refused.text
    seen = (
        await client.get(f"/api/v1/trace-requests/{trace_id}", headers=parties["addressee"].headers)
    ).json()
    assert (seen["state"], seen["response"]["outcome"]) == ("responded", "traced")
    events, _, _ = await _records(db, trace_id)
    assert events["alert.withdrawn"] == 0


async def test_the_addressee_sees_a_withdrawn_request_as_a_tombstone(client, parties):
    trace_id = await _new_trace(client, parties)
    await client.post(
        f"/api/v1/trace-requests/{trace_id}/request-info",
        json={"question": "Which proof marks are on the barrel?"},
        headers=parties["addressee"].headers,
    )
    await client.post(
        f"/api/v1/trace-requests/{trace_id}/provide-info",
        json={"answer": "A crown over a star."},
        headers=parties["requester"].headers,
    )
    await client.post(
        f"/api/v1/trace-requests/{trace_id}/withdraw",
        json={"reason": "Sent in error."},
        headers=parties["requester"].headers,
    )
    one = await client.get(
        f"/api/v1/trace-requests/{trace_id}", headers=parties["addressee"].headers
    )
    listed = await client.get(
        "/api/v1/trace-requests?direction=incoming", headers=parties["addressee"].headers
    )
    for seen in (one.json(), listed.json()["items"][0]):
        assert seen["alert_id"] == trace_id
        assert seen["tombstone"] is True and seen["state"] == "withdrawn"
        assert seen["title"] is None and seen["priority"] is None
        assert seen["ack_due"] is None and seen["response_due"] is None
    assert one.json()["messages"] == []
    assert [t["to_state"] for t in one.json()["transitions"]][-1] == "withdrawn"
    for secret in ("Trace of an AKM", "crown over a star"):
        assert secret not in one.text + listed.text
    # The requester, its originator, still sees all of it.
    own = (
        await client.get(f"/api/v1/trace-requests/{trace_id}", headers=parties["requester"].headers)
    ).json()
    assert own["tombstone"] is False and own["title"].startswith("Trace of an AKM")
    assert [m["kind"] for m in own["messages"]] == ["question", "answer"]


async def test_a_request_withdrawn_under_embargo_stays_a_tombstone(client, db, parties):
    """Never released to the addressee: once the embargo passes it sees no more than that."""
    embargo = (utcnow() + timedelta(hours=2)).isoformat()
    trace_id = await _new_trace(client, parties, embargo_until=embargo)
    path = f"/api/v1/trace-requests/{trace_id}"
    assert (await client.get(path, headers=parties["addressee"].headers)).status_code == 404
    withdrawn = await client.post(
        f"{path}/withdraw", json={"reason": "Wrong country."}, headers=parties["requester"].headers
    )
    assert withdrawn.status_code == 200
    # Time passes (the embargo's end moved into the past rather than the clock forward).
    async with db.session() as session:
        await session.exec(
            sa.update(Alert)
            .where(Alert.id == uuid.UUID(trace_id))
            .values(embargo_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    one = await client.get(path, headers=parties["addressee"].headers)
    listed = await client.get(
        "/api/v1/trace-requests?direction=incoming", headers=parties["addressee"].headers
    )
    assert one.status_code == 200
    assert [t["alert_id"] for t in listed.json()["items"]] == [trace_id]
    for seen in (one.json(), listed.json()["items"][0]):
        assert (seen["tombstone"], seen["title"]) == (True, None)
    assert "Trace of an AKM" not in one.text + listed.text
