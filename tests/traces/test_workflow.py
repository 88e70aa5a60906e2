"""The tracing workflow: every step from every state by every party and role."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.authz.principal import Role
from app.core.types import utcnow
from app.traces import query as traces
from tests.factories import make_actor, make_agency, post_alert, trace_body

STEPS = {
    "acknowledge": (None, "addressee"),
    "request-info": ({"question": "Which proof marks are on the barrel?"}, "addressee"),
    "respond": (
        {
            "outcome": "traced",
            "findings": {
                "manufacturer": "Zastava Arms",
                "exporter": "Yugoimport",
                "last_legal_holder": "National army depot 12",
            },
        },
        "addressee",
    ),
    "provide-info": ({"answer": "A crown over a star."}, "requester"),
    "close": (None, "requester"),
    "withdraw": ({"reason": "Traced through another channel."}, "requester"),
}
ALLOWED_FROM = {
    "acknowledge": {"submitted"},
    "request-info": {"submitted", "acknowledged"},
    "respond": {"submitted", "acknowledged", "info_requested"},
    "provide-info": {"info_requested"},
    "close": {"responded"},
    "withdraw": {"submitted", "acknowledged", "info_requested"},
}
TARGET = {
    "acknowledge": "acknowledged",
    "request-info": "info_requested",
    "respond": "responded",
    "provide-info": "acknowledged",
    "close": "closed",
    "withdraw": "withdrawn",
}
PATHS = {
    "submitted": [],
    "acknowledged": ["acknowledge"],
    "info_requested": ["request-info"],
    "responded": ["respond"],
    "closed": ["respond", "close"],
    "withdrawn": ["withdraw"],
}


@pytest.fixture
async def parties(client, db, app):
    hashing = app.state.auth.hashing
    ke, de, co, jo = [await make_agency(db, country=c) for c in ("KE", "DE", "CO", "JO")]
    return {
        "requester": await make_actor(client, db, hashing, ke, Role.focal_point),
        "requester_reader": await make_actor(client, db, hashing, ke, Role.reader),
        "addressee": await make_actor(client, db, hashing, de, Role.focal_point),
        "addressee_reader": await make_actor(client, db, hashing, de, Role.reader),
        "third_party": await make_actor(client, db, hashing, co, Role.focal_point),
        "outsider": await make_actor(client, db, hashing, jo, Role.focal_point),
    }


async def _new_trace(client, p) -> str:
    body = trace_body(
        p["addressee"].agency,
        handling={
            "tlp": "amber",
            "audience": "recipients",
            "recipient_agencies": [str(p["third_party"].agency.id)],
        },
    )
    return (await post_alert(client, p["requester"], body))["id"]


async def _do(client, p, trace_id, step, actor):
    body, _ = STEPS[step]
    return await client.post(
        f"/api/v1/trace-requests/{trace_id}/{step}", json=body, headers=p[actor].headers
    )


def _expected(step: str, state: str, actor: str) -> int:
    side = STEPS[step][1]
    if actor in ("third_party", "outsider"):
        return 404
    if actor.endswith("_reader"):
        return 403
    if actor != side:
        return 403
    return 200 if state in ALLOWED_FROM[step] else 409


async def test_every_step_from_every_state_by_every_actor(client, parties):
    failures = []
    for state, path in PATHS.items():
        for step in STEPS:
            trace_id = await _new_trace(client, parties)
            for done in path:
                assert (
                    await _do(client, parties, trace_id, done, STEPS[done][1])
                ).status_code == 200
            # Refusals first (they change nothing), the permitted actor last.
            actors = sorted(parties, key=lambda a: _expected(step, state, a) == 200)
            for actor in actors:
                answer = await _do(client, parties, trace_id, step, actor)
                want = _expected(step, state, actor)
                if answer.status_code != want:
                    failures.append(
                        f"{step} from {state} by {actor}: want {want}, got {answer.status_code}"
                    )
                elif want == 200:
                    body = answer.json()
                    if body["state"] != TARGET[step]:
                        failures.append(f"{step} from {state}: state {body['state']}")
                    if body["transitions"][-1]["to_state"] != TARGET[step]:
                        failures.append(f"{step} from {state}: no transition recorded")
    assert failures == []


async def test_response_and_messages_are_for_the_two_parties_only(client, parties):
    trace_id = await _new_trace(client, parties)
    await _do(client, parties, trace_id, "request-info", "addressee")
    await _do(client, parties, trace_id, "provide-info", "requester")
    answer = await _do(client, parties, trace_id, "respond", "addressee")
    assert answer.status_code == 200
    for actor in ("requester", "addressee", "requester_reader", "addressee_reader"):
        seen = (
            await client.get(f"/api/v1/trace-requests/{trace_id}", headers=parties[actor].headers)
        ).json()
        assert seen["response"]["findings"]["exporter"] == "Yugoimport"
        assert [m["kind"] for m in seen["messages"]] == ["question", "answer"]
    # The third party may read the request itself, but nothing of the exchange.
    alert = await client.get(f"/api/v1/alerts/{trace_id}", headers=parties["third_party"].headers)
    assert alert.status_code == 200
    for secret in ("Yugoimport", "National army depot", "proof marks", "crown over a star"):
        assert secret not in alert.text
    for path in ("", "/acknowledge"):
        assert (
            await client.get(
                f"/api/v1/trace-requests/{trace_id}{path}", headers=parties["third_party"].headers
            )
        ).status_code in (404, 405)
    listed = await client.get("/api/v1/trace-requests", headers=parties["third_party"].headers)
    assert listed.json()["items"] == []


async def test_directions_and_status_filter(client, parties):
    trace_id = await _new_trace(client, parties)
    out = (
        await client.get(
            "/api/v1/trace-requests?direction=outgoing", headers=parties["requester"].headers
        )
    ).json()
    inc = (
        await client.get(
            "/api/v1/trace-requests?direction=incoming", headers=parties["addressee"].headers
        )
    ).json()
    assert [t["alert_id"] for t in out["items"]] == [trace_id]
    assert [t["alert_id"] for t in inc["items"]] == [trace_id]
    assert inc["items"][0]["direction"] == "incoming"
    none = await client.get(
        "/api/v1/trace-requests?direction=incoming", headers=parties["requester"].headers
    )
    assert none.json()["items"] == []
    sub = await client.get(
        "/api/v1/trace-requests?status=acknowledged", headers=parties["addressee"].headers
    )
    assert sub.json()["items"] == []


@pytest.mark.parametrize(
    ("details", "field"),
    [
        ({"priority": "urgent"}, "body.trace_request.details"),
        ({"ack_due": "2000-01-01T00:00:00Z"}, "body.details.ack_due"),
        ({"addressed_to": "00000000-0000-4000-8000-000000000009"}, "body.details.addressed_to"),
    ],
)
async def test_bad_trace_requests(client, parties, details, field):
    body = trace_body(parties["addressee"].agency)
    body["details"] = {**body["details"], **details}
    answer = await client.post(
        "/api/v1/alerts", json={**body, "publish": True}, headers=parties["requester"].headers
    )
    assert answer.status_code == 422, answer.text
    assert any(e["field"].startswith(field) for e in answer.json()["errors"])


async def test_restricted_response_needs_a_reason(client, parties):
    trace_id = await _new_trace(client, parties)
    refused = await client.post(
        f"/api/v1/trace-requests/{trace_id}/respond",
        json={"outcome": "restricted"},
        headers=parties["addressee"].headers,
    )
    assert refused.status_code == 422
    ok = await client.post(
        f"/api/v1/trace-requests/{trace_id}/respond",
        json={"outcome": "restricted", "reasons": "Ongoing criminal investigation."},
        headers=parties["addressee"].headers,
    )
    assert ok.status_code == 200


async def test_default_deadlines_follow_priority(client, parties):
    routine = await _new_trace(client, parties)
    body = trace_body(parties["addressee"].agency)
    body["details"] |= {"priority": "urgent", "priority_justification": "Armed group still active."}
    urgent = (await post_alert(client, parties["requester"], body))["id"]
    got = {}
    for trace_id in (routine, urgent):
        t = (
            await client.get(
                f"/api/v1/trace-requests/{trace_id}", headers=parties["requester"].headers
            )
        ).json()
        got[trace_id] = (t["ack_due"], t["response_due"], t["submitted_at"])
    from datetime import datetime

    def days(a: str, b: str) -> float:
        return (datetime.fromisoformat(a) - datetime.fromisoformat(b)).total_seconds() / 86400

    assert round(days(got[routine][0], got[routine][2])) == 5
    assert round(days(got[routine][1], got[routine][2])) == 30
    assert round(days(got[urgent][0], got[urgent][2])) == 1
    assert round(days(got[urgent][1], got[urgent][2])) == 3


async def test_deadlines_flag_once_with_a_controlled_clock(client, db, parties):
    trace_id = await _new_trace(client, parties)
    now = utcnow()

    async def flag(at):
        async with db.session() as session:
            count = await traces.flag_overdue(session, now=at)
            await session.commit()
        return count

    assert await flag(now + timedelta(days=1)) == 0
    assert await flag(now + timedelta(days=6)) == 1  # acknowledgement late
    assert await flag(now + timedelta(days=6)) == 0  # only once
    late = await client.get(
        "/api/v1/trace-requests?overdue=true", headers=parties["addressee"].headers
    )
    assert [t["alert_id"] for t in late.json()["items"]] == [trace_id]
    assert late.json()["items"][0]["overdue"] is True
    await _do(client, parties, trace_id, "acknowledge", "addressee")
    late = await client.get(
        "/api/v1/trace-requests?overdue=true", headers=parties["addressee"].headers
    )
    assert late.json()["items"] == []
    assert await flag(now + timedelta(days=31)) == 1  # response late
    assert await flag(now + timedelta(days=40)) == 0
    on_time = await client.get(
        "/api/v1/trace-requests?overdue=false", headers=parties["addressee"].headers
    )
    assert on_time.json()["items"] == []
    from sqlmodel import select

    from app.events.models import Event

    async with db.session() as session:
        overdue = (await session.exec(select(Event).where(Event.type == "trace.overdue"))).all()
    assert sorted(e.data["deadline"] for e in overdue) == ["ack", "response"]


async def test_withdrawing_the_alert_ends_the_workflow(client, parties):
    trace_id = await _new_trace(client, parties)
    done = await client.post(
        f"/api/v1/alerts/{trace_id}/withdraw",
        json={"reason": "Sent in error"},
        headers=parties["requester"].headers,
    )
    assert done.status_code == 200
    t = (
        await client.get(f"/api/v1/trace-requests/{trace_id}", headers=parties["requester"].headers)
    ).json()
    assert t["state"] == "withdrawn"


async def test_a_repeated_step_with_the_same_key_replays_the_first_answer(client, parties):
    trace_id = await _new_trace(client, parties)
    headers = {**parties["addressee"].headers, "Idempotency-Key": "ack-1"}
    first = await client.post(f"/api/v1/trace-requests/{trace_id}/acknowledge", headers=headers)
    again = await client.post(f"/api/v1/trace-requests/{trace_id}/acknowledge", headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json()["version"] == first.json()["version"]
    fresh = await client.post(
        f"/api/v1/trace-requests/{trace_id}/acknowledge", headers=parties["addressee"].headers
    )
    assert fresh.status_code == 409


async def test_a_replayed_step_is_read_again_under_the_callers_rights_now(client, db, parties):
    """A repeat with the same key changes nothing and answers with the trace request as
    the caller may read it *now*: a token narrowed since gets the read path's refusal,
    a withdrawal since gives the tombstone, never the content stored with the first."""
    from tests.factories import bearer, client_login, make_client
    from tests.secrets_seen import remember

    trace_id = await _new_trace(client, parties)
    api_client, secret = await make_client(
        db, parties["addressee"].agency, "alerts:read traces:write"
    )
    full = bearer((await client_login(client, api_client.id, secret))["access_token"])
    step = f"/api/v1/trace-requests/{trace_id}/acknowledge"
    first = await client.post(step, headers={**full, "Idempotency-Key": "k1"})
    assert first.status_code == 200 and first.json()["title"], first.text
    narrowed = await client.post(
        "/api/v1/auth/token",
        data={"grant_type": "client_credentials", "scope": "traces:write"},
        auth=(str(api_client.id), secret),
    )
    assert narrowed.status_code == 200, narrowed.text
    remember(narrowed.json()["access_token"])
    narrow = bearer(narrowed.json()["access_token"])
    replayed = await client.post(step, headers={**narrow, "Idempotency-Key": "k1"})
    assert replayed.status_code == 403, replayed.text
    assert first.json()["title"] not in replayed.text

    withdrawn = await _do(client, parties, trace_id, "withdraw", "requester")
    assert withdrawn.status_code == 200, withdrawn.text
    replayed = await client.post(step, headers={**full, "Idempotency-Key": "k1"})
    assert replayed.status_code == 200 and replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["tombstone"] is True and replayed.json()["title"] is None
    assert first.json()["title"] not in replayed.text
