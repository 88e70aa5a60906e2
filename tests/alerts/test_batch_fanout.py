"""A batch looks up the sharing policy and the named agencies and groups once
(app/core/memo.py): each alert must still reach exactly its own audience, and be refused
for its own faults."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from sqlmodel import select

from app.core import memo
from app.webhooks.models import Delivery
from tests.factories import Actor, seizure_body
from tests.secrets_seen import remember

BATCH = "/api/v1/alerts:batch"


async def _subscribe(client, admin: Actor, **filters: object) -> uuid.UUID:
    answer = await client.post(
        "/api/v1/subscriptions",
        json={"url": f"https://example.org/{uuid.uuid4().hex}", **filters},
        headers=admin.headers,
    )
    assert answer.status_code == 201, answer.text
    remember(answer.json()["secret"])
    return uuid.UUID(answer.json()["id"])


async def _group(client, admin: Actor, members: list[uuid.UUID], name: str = "Desk") -> str:
    """A sharing group of `admin`'s agency with these members; its id."""
    answer = await client.post(
        "/api/v1/sharing-groups",
        json={"name": name, "members": [str(m) for m in members]},
        headers=admin.headers,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def _handling(tlp: str, agencies=(), groups=(), audience: str = "recipients") -> dict:
    return {
        "tlp": tlp,
        "audience": audience,
        "recipient_agencies": [str(a) for a in agencies],
        "recipient_groups": [str(g) for g in groups],
    }


async def _deliveries(db) -> dict[uuid.UUID, set[uuid.UUID]]:
    """Each alert's delivery rows, as the subscriptions they go to."""
    async with db.session() as session:
        rows = (await session.exec(select(Delivery.alert_id, Delivery.subscription_id))).all()
    out: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for alert_id, subscription_id in rows:
        out[alert_id].add(subscription_id)
    return out


async def test_each_alert_of_a_batch_reaches_its_own_audience_only(client, db, world):
    ke, de, jo = world["KE"], world["DE"].agency.id, world["JO"].agency.id
    de_sub = await _subscribe(client, world["DE_admin"])
    jo_sub = await _subscribe(client, world["JO_admin"])
    jo_green = await _subscribe(client, world["JO_admin"], max_tlp="green")
    group_id = await _group(client, world["KE_admin"], [jo])
    handlings = [
        _handling("amber", [de]),
        _handling("amber", [jo]),
        _handling("red", [de]),
        _handling("amber", (), [group_id]),
        _handling("green", audience="community"),
        _handling("amber", [de]),  # a draft: nobody yet
        _handling("amber", [jo]),
        _handling("amber", audience="originator"),
    ]
    bodies = [seizure_body(publish=i != 5, handling=h) for i, h in enumerate(handlings)]
    answer = await client.post(BATCH, json={"alerts": bodies}, headers=ke.headers)
    assert answer.status_code == 200, answer.text
    ids = [uuid.UUID(r["alert"]["id"]) for r in answer.json()["results"]]
    got = await _deliveries(db)
    assert [got.get(i, set()) for i in ids] == [
        {de_sub},
        {jo_sub},
        {de_sub},
        {jo_sub},
        {de_sub, jo_sub, jo_green},
        set(),
        {jo_sub},
        set(),
    ]


async def test_a_refusal_for_one_entry_is_not_remembered_for_the_next(client, world):
    """The same named agencies, refused once (unknown) and once (fine), are checked each."""
    ke, de = world["KE"], world["DE"].agency.id
    unknown = uuid.uuid4()
    bodies = [
        seizure_body(publish=True, handling=_handling("amber", [de, unknown])),
        seizure_body(publish=True, handling=_handling("amber", [de])),
        seizure_body(publish=True, handling=_handling("amber", [unknown, de])),
        seizure_body(publish=True, handling=_handling("amber", [de, unknown])),
    ]
    answer = await client.post(BATCH, json={"alerts": bodies}, headers=ke.headers)
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [422, 201, 422, 422]
    fields = [r["problem"]["errors"][0]["field"] for r in results if r["problem"]]
    assert fields == [
        "body.alerts.0.handling.recipient_agencies.1",
        "body.alerts.2.handling.recipient_agencies.0",
        "body.alerts.3.handling.recipient_agencies.1",
    ]


async def test_a_new_subscription_receives_the_next_request_after_a_batch(client, db, world):
    """The batch's memory ends with it: what changes after it is seen by the next request."""
    ke, de = world["KE"], world["DE"].agency.id
    body = seizure_body(publish=True, handling=_handling("amber", [de]))
    first = await client.post(BATCH, json={"alerts": [body]}, headers=ke.headers)
    assert (await _deliveries(db)) == {}
    sub = await _subscribe(client, world["DE_admin"])
    second = await client.post(BATCH, json={"alerts": [body]}, headers=ke.headers)
    second_id = uuid.UUID(second.json()["results"][0]["alert"]["id"])
    assert first.status_code == second.status_code == 200
    assert (await _deliveries(db)) == {second_id: {sub}}


async def test_a_memo_answers_once_inside_a_batch_and_never_outside(db):
    calls: list[str] = []

    async def load() -> int:
        calls.append("load")
        return len(calls)

    async with db.session() as session:
        assert [await memo.once(session, "k", load) for _ in range(2)] == [1, 2]
        with memo.batch(session):
            assert [await memo.once(session, "k", load) for _ in range(3)] == [3, 3, 3]
            assert await memo.once(session, "other", load) == 4
            with pytest.raises(RuntimeError), memo.batch(session):
                pass
        assert await memo.once(session, "k", load) == 5
