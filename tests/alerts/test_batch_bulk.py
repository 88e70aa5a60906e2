"""`POST /alerts:batch` writes its alerts together, in the statements of one alert
(app/alerts/batch.py, `service.store_alerts`): what it stores must be what the same
alerts posted one by one store, its statements must not grow with the batch, and when
the database refuses the joint write, each alert is posted again on its own so that only
the one at fault is refused and nothing of the joint attempt is left."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event
from sqlmodel import col, func, select

from app.alerts.models import Alert, AlertItem, AlertTag
from app.audit.models import AuditRecord
from app.events.models import Event
from app.hits.models import Hit, PendingMatch
from app.sharing.models import AlertRecipientAgency, AlertRecipientGroup
from app.traces.models import TraceRequest
from app.webhooks.models import Delivery
from tests.alerts.test_batch_fanout import _deliveries, _group, _handling, _subscribe
from tests.factories import seizure_body, trace_body
from tests.triggers import refused_when

BATCH = "/api/v1/alerts:batch"
REFUSED_TITLE = "Refused by the database"
# What differs between two writes of one alert by design: its ids and the instants.
_ALERT_OWN = {"id", "created_at", "updated_at", "sort_at", "published_at", "embargo_until"}


def _bodies(world: dict[str, Any], group_id: str) -> list[dict]:
    """Alerts of every shape a batch may carry: named agencies and a group, TLPs, a draft,
    an embargo, a trace request, items that match another agency's alert."""
    de, jo = world["DE"].agency.id, world["JO"].agency.id
    embargo = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    return [
        seizure_body(publish=True, handling=_handling("amber", [de])),
        seizure_body(publish=True, handling=_handling("red", [de, jo])),
        seizure_body(publish=True, handling=_handling("amber", (), [group_id])),
        seizure_body(publish=True, handling=_handling("green", audience="community")),
        seizure_body(publish=False, handling=_handling("amber", [jo])),
        seizure_body(publish=True, handling={**_handling("amber", [de]), "embargo_until": embargo}),
        trace_body(world["DE"].agency, publish=True),
        seizure_body(publish=True, handling=_handling("amber", audience="originator")),
    ]


async def _stored(db, ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """Everything stored for each alert, without what differs by design (ids, instants)."""
    deliveries = await _deliveries(db)
    out = []
    async with db.session() as session:
        for alert_id in ids:
            alert = await session.get(Alert, alert_id)
            assert alert is not None
            items = (
                await session.exec(
                    select(AlertItem)
                    .where(AlertItem.alert_id == alert_id)
                    .order_by(col(AlertItem.position))
                )
            ).all()
            hits = (
                await session.exec(
                    select(Hit).where((Hit.alert_a_id == alert_id) | (Hit.alert_b_id == alert_id))
                )
            ).all()

            async def count(model: type, where: Any) -> int:
                statement = select(func.count()).select_from(model).where(where)
                return (await session.exec(statement)).one()

            out.append(
                {
                    "alert": {k: v for k, v in alert.model_dump().items() if k not in _ALERT_OWN},
                    "embargoed": alert.embargo_until is not None,
                    "items": [i.model_dump(exclude={"id", "alert_id"}) for i in items],
                    "tags": sorted(
                        (
                            await session.exec(
                                select(AlertTag.tag).where(AlertTag.alert_id == alert_id)
                            )
                        ).all()
                    ),
                    "agencies": sorted(
                        (
                            await session.exec(
                                select(AlertRecipientAgency.agency_id).where(
                                    AlertRecipientAgency.alert_id == alert_id
                                )
                            )
                        ).all()
                    ),
                    "groups": await count(
                        AlertRecipientGroup, AlertRecipientGroup.alert_id == alert_id
                    ),
                    "deliveries": deliveries.get(alert_id, set()),
                    "hits": sorted(
                        (
                            h.serial_key,
                            h.tier,
                            h.agency_b_id if h.alert_a_id == alert_id else h.agency_a_id,
                        )
                        for h in hits
                    ),
                    "held": await count(PendingMatch, PendingMatch.alert_id == alert_id),
                    "events": await count(Event, Event.alert_id == alert_id),
                    "traces": await count(TraceRequest, TraceRequest.alert_id == alert_id),
                    "audit": await count(
                        AuditRecord,
                        (AuditRecord.action == "alert.create")
                        & (AuditRecord.object_id == str(alert_id)),
                    ),
                }
            )
    return out


async def test_a_batch_stores_what_the_same_alerts_posted_one_by_one_store(client, db, world):
    for admin in ("DE_admin", "JO_admin"):
        await _subscribe(client, world[admin])
    await _subscribe(client, world["JO_admin"], max_tlp="green")
    group_id = await _group(client, world["KE_admin"], [world["JO"].agency.id])
    # Another agency's alert with the same serials: each published alert of KE hits it.
    theirs = await client.post(
        "/api/v1/alerts", json=seizure_body(publish=True, country="JO"), headers=world["JO"].headers
    )
    assert theirs.status_code == 201, theirs.text
    bodies = _bodies(world, group_id)
    singles = []
    for body in bodies:
        answer = await client.post("/api/v1/alerts", json=body, headers=world["KE"].headers)
        assert answer.status_code == 201, answer.text
        singles.append(uuid.UUID(answer.json()["id"]))
    answer = await client.post(BATCH, json={"alerts": bodies}, headers=world["KE"].headers)
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == [201] * len(bodies)
    batched = [uuid.UUID(r["alert"]["id"]) for r in answer.json()["results"]]
    one_by_one, together = await _stored(db, singles), await _stored(db, batched)
    assert together == one_by_one
    # And the comparison is not empty: the alerts reached, matched, held and started.
    assert sum(len(s["deliveries"]) for s in together) >= 6
    assert any(s["hits"] for s in together) and any(s["held"] for s in together)
    assert any(s["traces"] for s in together)


async def test_the_statements_of_a_batch_do_not_grow_with_its_alerts(client, db, world):
    await _subscribe(client, world["DE_admin"])
    await _subscribe(client, world["JO_admin"])
    de, jo = world["DE"].agency.id, world["JO"].agency.id
    group_id = await _group(client, world["KE_admin"], [jo])
    executed: list[str] = []

    def note(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        executed.append(statement)

    engine = db.engine.sync_engine
    counts = []
    for size in (2, 20):
        # Every other alert embargoed: it is held for matching at release, not matched.
        embargo = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        bodies = [
            seizure_body(
                publish=True,
                handling={**_handling("amber", [de], [group_id]), "embargo_until": embargo}
                if n % 2
                else _handling("amber", [de], [group_id]),
            )
            for n in range(size)
        ]
        executed.clear()
        event.listen(engine, "before_cursor_execute", note)
        try:
            answer = await client.post(BATCH, json={"alerts": bodies}, headers=world["KE"].headers)
        finally:
            event.remove(engine, "before_cursor_execute", note)
        assert answer.status_code == 200, answer.text
        assert answer.json()["created"] == size
        counts.append(len(executed))
    assert counts[0] == counts[1], counts


@asynccontextmanager
async def refused_in_the_database(db, table: str, column: str, value: str) -> AsyncIterator[None]:
    """While it lasts, a trigger refuses to store a row of `table` whose `column` is
    `value`, as a constraint would: a refusal the service's own checks cannot foresee."""
    async with refused_when(db, table, f"NEW.{column} = '{value}'"):
        yield


async def test_a_joint_write_the_database_refuses_refuses_only_the_alert_at_fault(
    client, db, world
):
    de_sub = await _subscribe(client, world["DE_admin"])
    de = world["DE"].agency.id
    titles = ["First", REFUSED_TITLE, "Third"]
    bodies = [
        seizure_body(publish=True, title=t, handling=_handling("amber", [de])) for t in titles
    ]
    async with refused_in_the_database(db, "alert", "title", REFUSED_TITLE):
        answer = await client.post(BATCH, json={"alerts": bodies}, headers=world["KE"].headers)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 409, 201]
    kept = [uuid.UUID(r["alert"]["id"]) for r in results if r["alert"]]
    async with db.session() as session:
        stored = (
            await session.exec(
                select(Alert.id, Alert.title).where(
                    Alert.originator_agency_id == world["KE"].agency.id
                )
            )
        ).all()
        audit = Counter(
            (
                await session.exec(
                    select(AuditRecord.object_id).where(AuditRecord.action == "alert.create")
                )
            ).all()
        )
        events = Counter((await session.exec(select(Event.alert_id))).all())
        deliveries = Counter((await session.exec(select(Delivery.alert_id))).all())
        items = Counter((await session.exec(select(AlertItem.alert_id))).all())
    # The two others once each, with all their rows once; of the joint attempt, nothing.
    assert sorted(t for _i, t in stored) == ["First", "Third"]
    assert {i for i, _t in stored} == set(kept)
    assert audit == Counter({str(i): 1 for i in kept})
    assert events == Counter({i: 1 for i in kept})
    assert deliveries == Counter({i: 1 for i in kept})
    assert items == Counter({i: 2 for i in kept})
    assert (await _deliveries(db)) == {i: {de_sub} for i in kept}
