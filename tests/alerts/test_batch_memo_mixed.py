"""One batch mixing the policy default, given handlings, a ceiling refusal, a
trace request and groups the author may and may not name: the memo must not carry one
entry's default, refusal or audience into another's."""

from __future__ import annotations

import uuid

from sqlmodel import select

from app.webhooks.models import Delivery
from tests.alerts.test_batch_fanout import _group, _handling, _subscribe
from tests.factories import seizure_body, trace_body

BATCH = "/api/v1/alerts:batch"


async def _deliveries(db) -> dict[uuid.UUID, set[tuple[uuid.UUID, str]]]:
    async with db.session() as session:
        rows = await session.exec(
            select(Delivery.alert_id, Delivery.subscription_id, Delivery.event_type)
        )
        out: dict[uuid.UUID, set[tuple[uuid.UUID, str]]] = {}
        for alert_id, sub, kind in rows.all():
            out.setdefault(alert_id, set()).add((sub, str(kind)))
    return out


def _no_handling() -> dict:
    body = seizure_body(publish=True)
    body.pop("handling", None)
    return body


async def test_a_mixed_batch_keeps_each_entry_to_its_own_rules(client, db, world):
    ke, de, jo = world["KE"], world["DE"].agency, world["JO"].agency
    de_sub = await _subscribe(client, world["DE_admin"])
    jo_sub = await _subscribe(client, world["JO_admin"])
    policy = await client.put(
        f"/api/v1/agencies/{ke.agency.id}/sharing-policy",
        json={
            "kinds": {
                "seized_weapon": {
                    "default": _handling("amber", [de.id]),
                    "ceiling": {"widest_tlp": "amber"},
                }
            }
        },
        headers=world["KE_admin"].headers,
    )
    assert policy.status_code == 200, policy.text
    foreign = await _group(client, world["DE_admin"], [jo.id], "Not Kenya's")
    own = await _group(client, world["KE_admin"], [jo.id], "Kenya's")
    bodies = [
        _no_handling(),  # the default: DE
        seizure_body(publish=True, handling=_handling("amber", [jo.id])),
        seizure_body(publish=True, handling=_handling("green", audience="community")),
        trace_body(jo, publish=True),
        _no_handling(),  # the default again, untouched by the others
        seizure_body(publish=True, handling=_handling("amber", (), [foreign])),
        seizure_body(publish=True, handling=_handling("amber", (), [own])),
        seizure_body(publish=True, handling=_handling("amber", (), [foreign])),
    ]
    answer = await client.post(BATCH, json={"alerts": bodies}, headers=ke.headers)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 201, 422, 201, 201, 422, 201, 422]
    ids = {i: uuid.UUID(r["alert"]["id"]) for i, r in enumerate(results) if r["alert"]}
    assert results[0]["alert"]["handling"]["recipient_agencies"] == [str(de.id)]
    assert results[4]["alert"]["handling"]["recipient_agencies"] == [str(de.id)]
    got = await _deliveries(db)
    published = "alert.published"
    assert got[ids[0]] == {(de_sub, published)}
    assert got[ids[1]] == {(jo_sub, published)}
    assert {s for s, _ in got[ids[3]]} == {jo_sub}  # the addressee only, never DE
    assert got[ids[4]] == {(de_sub, published)}
    assert got[ids[6]] == {(jo_sub, published)}
    for index in (0, 4):
        seen = await client.get(f"/api/v1/alerts/{ids[index]}", headers=world["JO"].headers)
        assert seen.status_code == 404
