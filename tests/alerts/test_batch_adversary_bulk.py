"""`POST /alerts:batch`'s joint write under attack (an independent red-team pass): a
refusal late in the joint write, groups of one batch, changes committed between the checks
and the write, several originators released at once, parallel writers, replays byte for
byte, values read back as written, and a missing location stored as the ORM stores it."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import text
from sqlalchemy.util import await_
from sqlmodel import func, select

from app.alerts.models import Alert, AlertItem
from app.audit.models import AuditRecord
from app.events.models import Event
from app.hits import matching
from app.hits.models import Hit, PendingMatch
from app.traces.models import TraceRequest
from tests.alerts.test_batch_bulk import refused_in_the_database
from tests.alerts.test_batch_fanout import _deliveries, _group, _handling, _subscribe
from tests.factories import seizure_body, trace_body

BATCH = "/api/v1/alerts:batch"


def _item(serial: str) -> dict:
    return {"category": "small_arm", "make": "Zastava", "model": "M70", "serial_raw": serial}


async def test_a_late_refusal_of_the_joint_write_leaves_nothing_of_it(client, db, world):
    """The refusal comes in matching (a hit), after the alerts, events, deliveries, trace
    workflows and pending matches of the joint attempt were written."""
    de, jo = world["DE"].agency.id, world["JO"].agency.id
    de_sub = await _subscribe(client, world["DE_admin"])
    jo_sub = await _subscribe(client, world["JO_admin"])
    group_id = await _group(client, world["KE_admin"], [jo])
    theirs = seizure_body(publish=True, country="JO", items=[_item("RT-BAD-1"), _item("RT-OK-2")])
    answer = await client.post("/api/v1/alerts", json=theirs, headers=world["JO"].headers)
    assert answer.status_code == 201, answer.text
    async with db.session() as session:
        keys = dict((await session.exec(select(AlertItem.serial_raw, AlertItem.serial_key))).all())
    embargo = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    bodies = [
        seizure_body(
            publish=True, title="ok-a", items=[_item("RT-OK-2")], handling=_handling("amber", [de])
        ),
        trace_body(world["DE"].agency, publish=True, title="trace"),
        seizure_body(
            publish=True,
            title="bad",
            items=[_item("RT-BAD-1")],
            handling=_handling("amber", (), [group_id]),
        ),
        seizure_body(
            publish=True,
            title="held",
            items=[_item("RT-OK-2")],
            handling={**_handling("amber", [de]), "embargo_until": embargo},
        ),
        seizure_body(
            publish=True,
            title="grp",
            items=[_item("RT-OK-2")],
            handling=_handling("amber", [de], [group_id]),
        ),
    ]
    async with refused_in_the_database(db, "hit", "serial_key", keys["RT-BAD-1"]):
        answer = await client.post(BATCH, json={"alerts": bodies}, headers=world["KE"].headers)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == [201, 201, 409, 201, 201]
    kept = [uuid.UUID(r["alert"]["id"]) for r in results if r["alert"]]
    ke = world["KE"].agency.id
    async with db.session() as session:
        stored = (
            await session.exec(select(Alert.id).where(Alert.originator_agency_id == ke))
        ).all()
        events = Counter((await session.exec(select(Event.alert_id))).all())
        audits = Counter(
            (
                await session.exec(
                    select(AuditRecord.object_id).where(AuditRecord.action == "alert.create")
                )
            ).all()
        )
        traces = Counter((await session.exec(select(TraceRequest.alert_id))).all())
        held = Counter((await session.exec(select(PendingMatch.alert_id))).all())
        hits = Counter((await session.exec(select(Hit.alert_a_id, Hit.alert_b_id))).all())
        items = Counter((await session.exec(select(AlertItem.alert_id))).all())
    assert sorted(stored) == sorted(kept)
    # The trace request: published and its workflow's event; the hits: one per side.
    assert [events[i] for i in kept] == [1, 2, 1, 1], (events, kept)
    assert events[None] == 4 and sum(events.values()) == 1 + 5 + 4
    assert all(audits[str(i)] == 1 for i in kept)
    assert sum(traces.values()) == 1 and traces[kept[1]] == 1
    assert held == Counter({kept[2]: 1})
    # ok-a and grp hit JO's alert once each; the held one not yet.
    assert sum(hits.values()) == 2 and all(v == 1 for v in hits.values())
    assert all(items[i] >= 1 for i in kept)
    got = await _deliveries(db)
    assert got[kept[0]] == {de_sub}
    assert got[kept[3]] == {de_sub, jo_sub}


async def test_groups_of_one_batch_never_reach_each_others_members(client, db, world):
    de, jo = world["DE"].agency.id, world["JO"].agency.id
    de_sub = await _subscribe(client, world["DE_admin"])
    jo_sub = await _subscribe(client, world["JO_admin"])
    g_jo = await _group(client, world["KE_admin"], [jo], name="Only JO")
    g_de = await _group(client, world["KE_admin"], [de], name="Only DE")
    handlings = [
        _handling("amber", (), [g_jo]),
        _handling("amber", (), [g_de]),
        _handling("red", [jo]),
        _handling("amber", [de], [g_jo]),
        _handling("amber", (), [g_de]),
        _handling("green", audience="originator"),
        _handling("amber", (), [g_jo]),
    ]
    bodies = [seizure_body(publish=True, handling=h) for h in handlings]
    answer = await client.post(BATCH, json={"alerts": bodies}, headers=world["KE"].headers)
    assert answer.status_code == 200, answer.text
    ids = [uuid.UUID(r["alert"]["id"]) for r in answer.json()["results"]]
    got = await _deliveries(db)
    assert [got.get(i, set()) for i in ids] == [
        {jo_sub},
        {de_sub},
        {jo_sub},
        {de_sub, jo_sub},
        {de_sub},
        set(),
        {jo_sub},
    ]
    # And each may read exactly its own.
    for actor, expected in (("DE", {1, 3, 4}), ("JO", {0, 2, 3, 6})):
        seen = set()
        for n, alert_id in enumerate(ids):
            r = await client.get(f"/api/v1/alerts/{alert_id}", headers=world[actor].headers)
            assert r.status_code in (200, 404), r.text
            if r.status_code == 200:
                seen.add(n)
        assert seen == expected, actor


async def test_several_originators_released_at_once_hit_each_pair_once(client, db, world):
    embargo = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    ids = {}
    for country in ("KE", "DE", "JO"):
        body = seizure_body(
            publish=True,
            country=country,
            items=[_item("RT-SHARED-9")],
            handling={"tlp": "green", "audience": "community", "embargo_until": embargo},
        )
        r = await client.post("/api/v1/alerts", json=body, headers=world[country].headers)
        assert r.status_code == 201, r.text
        ids[country] = uuid.UUID(r.json()["id"])
    async with db.session() as session:
        count = await matching.match_released(session, now=datetime.now(UTC) + timedelta(hours=2))
        await session.commit()
    assert count == 3
    async with db.session() as session:
        pairs = (await session.exec(select(Hit.alert_a_id, Hit.alert_b_id))).all()
        left = (await session.exec(select(func.count()).select_from(PendingMatch))).one()
    assert left == 0
    assert Counter(frozenset(p) for p in pairs) == Counter(
        {
            frozenset((ids["KE"], ids["DE"])): 1,
            frozenset((ids["KE"], ids["JO"])): 1,
            frozenset((ids["DE"], ids["JO"])): 1,
        }
    )


async def test_parallel_batches_and_single_posts_lose_nothing(client, db, world, backend):
    de, jo = world["DE"].agency.id, world["JO"].agency.id
    de_sub = await _subscribe(client, world["DE_admin"])
    jo_sub = await _subscribe(client, world["JO_admin"])
    group_id = await _group(client, world["KE_admin"], [jo])
    # JO and DE post alerts with the serials KE's batches carry, at the same time.
    n_batches, size = 4, 15

    def ke_batch(b: int) -> dict:
        return {
            "alerts": [
                seizure_body(
                    publish=True,
                    title=f"b{b}-{i}",
                    items=[_item(f"RT-P-{i}")],
                    handling=_handling("amber", [de], [group_id] if i % 2 else []),
                )
                for i in range(size)
            ]
        }

    async def single(country: str, i: int):
        body = seizure_body(
            publish=True, country=country, title=f"{country}-{i}", items=[_item(f"RT-P-{i}")]
        )
        return await client.post("/api/v1/alerts", json=body, headers=world[country].headers)

    calls = [
        client.post(BATCH, json=ke_batch(b), headers=world["KE"].headers) for b in range(n_batches)
    ]
    calls += [single("JO", i) for i in range(0, size, 3)]
    answers = await asyncio.gather(*calls)
    for a in answers:
        assert a.status_code in (200, 201), a.text
    for a in answers[:n_batches]:
        assert a.json()["created"] == size, a.text
    ke_ids = [uuid.UUID(r["alert"]["id"]) for a in answers[:n_batches] for r in a.json()["results"]]
    got = await _deliveries(db)
    for n, alert_id in enumerate(ke_ids):
        i = n % size
        assert got.get(alert_id) == ({de_sub, jo_sub} if i % 2 else {de_sub}), (n, alert_id)
    async with db.session() as session:
        events = Counter((await session.exec(select(Event.alert_id))).all())
    assert all(events[i] == 1 for i in ke_ids)


async def test_an_idempotent_batch_replays_the_same_bytes(client, world):
    de = world["DE"].agency.id
    bodies = [
        seizure_body(publish=True, handling=_handling("amber", [de])),
        seizure_body(publish=True, title="x" * 300),  # refused: the problem kept as it was
        seizure_body(publish=False, summary='Ünïcödé 𝔘 "quotes" \\ back', location=None),
    ]
    headers = {**world["KE"].headers, "Idempotency-Key": "rt-batch-1"}
    first = await client.post(BATCH, json={"alerts": bodies}, headers=headers)
    again = await client.post(BATCH, json={"alerts": bodies}, headers=headers)
    assert first.status_code == again.status_code == 200, first.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.content == first.content
    single = seizure_body(publish=True, location=None, tags=[])
    headers = {**world["KE"].headers, "Idempotency-Key": "rt-single-1"}
    first = await client.post("/api/v1/alerts", json=single, headers=headers)
    again = await client.post("/api/v1/alerts", json=single, headers=headers)
    assert first.status_code == again.status_code == 201, first.text
    assert again.content == first.content


async def test_values_read_back_as_written_on_both_databases(client, db, world):
    body = seizure_body(
        publish=True,
        title="Quote ' \" \\ back \U0001f52b \u2028 tab\tend",
        summary="",
        tags=[],
        location={"text": "Ort \u00e4 \U00010348", "lat": -0.0, "lon": 179.99999999999997},
        occurred_at="2026-11-20T08:30:00.123456+05:45",
        items=[
            {
                "category": "small_arm",
                "quantity": 0.1,
                "year": 2100,
                "serial_raw": "Ⅻ-𝟘𝟙",
                "markings": [],
            },
            {"category": "ammunition", "quantity": 1e9, "serial_status": "obliterated"},
        ],
    )
    batch = await client.post(BATCH, json={"alerts": [body, body]}, headers=world["KE"].headers)
    assert batch.status_code == 200, batch.text
    single = await client.post("/api/v1/alerts", json=body, headers=world["KE"].headers)
    assert single.status_code == 201, single.text
    ids = [r["alert"]["id"] for r in batch.json()["results"]] + [single.json()["id"]]
    read = []
    for alert_id in ids:
        r = await client.get(f"/api/v1/alerts/{alert_id}", headers=world["KE"].headers)
        assert r.status_code == 200, r.text
        a = r.json()
        read.append(
            (
                a["title"],
                a["summary"],
                a["tags"],
                a["location"],
                a["occurred_at"],
                [{k: v for k, v in i.items() if k != "id"} for i in a["items"]],
            )
        )
    assert read[0] == read[1] == read[2]
    title, _summary, _tags, location, occurred, items = read[0]
    assert title == body["title"]
    assert location["text"] == body["location"]["text"]
    assert location["lon"] == 179.99999999999997
    assert occurred.startswith("2026-11-20T02:45:00.123456")
    assert items[0]["quantity"] == 0.1 and items[1]["quantity"] == 1e9


async def test_no_location_is_stored_alike_by_a_post_and_an_update(client, db, world):
    """The JSON insert stores a missing location as SQL NULL on PostgreSQL; the ORM (an
    update, and every post before the change) stores JSON null."""
    body = seizure_body(publish=False, location=None)
    posted = await client.post("/api/v1/alerts", json=body, headers=world["KE"].headers)
    assert posted.status_code == 201, posted.text
    other = await client.post(
        "/api/v1/alerts", json=seizure_body(publish=False), headers=world["KE"].headers
    )
    assert other.status_code == 201, other.text
    r = await client.patch(
        f"/api/v1/alerts/{other.json()['id']}",
        json={"location": None},
        headers={**world["KE"].headers, "If-Match": f'"{other.json()["version"]}"'},
    )
    assert r.status_code == 200, r.text
    async with db.session() as session:
        conn = await session.connection()
        rows = (
            await conn.execute(
                text("SELECT id, location IS NULL FROM alert WHERE id IN (:a, :b)").bindparams(
                    a=uuid.UUID(posted.json()["id"])
                    if conn.dialect.name == "postgresql"
                    else uuid.UUID(posted.json()["id"]).hex,
                    b=uuid.UUID(other.json()["id"])
                    if conn.dialect.name == "postgresql"
                    else uuid.UUID(other.json()["id"]).hex,
                )
            )
        ).all()
    assert len(rows) == 2
    assert rows[0][1] == rows[1][1], rows


async def _commit_elsewhere(dsn: str, g1: str, g2: str, jo: uuid.UUID, de: uuid.UUID) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DELETE FROM sharing_group_member WHERE group_id = $1 AND agency_id = $2",
            uuid.UUID(g1),
            jo,
        )
        await conn.execute(
            "UPDATE sharing_group SET deleted_at = now() WHERE id = $1", uuid.UUID(g2)
        )
        await conn.execute("UPDATE agency SET status = 'suspended' WHERE id = $1", de)
    finally:
        await conn.close()


async def test_changes_committed_between_prepare_and_write_are_honoured(client, db, world, backend):
    """PostgreSQL: while the batch is between its checks and its joint write, another
    transaction removes JO from the group, soft-deletes a second group and suspends DE."""
    if backend != "postgresql" and backend != "postgres":
        pytest.skip("a concurrent transaction needs PostgreSQL")
    de, jo = world["DE"].agency.id, world["JO"].agency.id
    de_sub = await _subscribe(client, world["DE_admin"])
    jo_sub = await _subscribe(client, world["JO_admin"])
    g1 = await _group(client, world["KE_admin"], [jo, de], name="G1")
    g2 = await _group(client, world["KE_admin"], [jo], name="G2")
    dsn = db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    done = []

    def meddle(_conn, _cursor, statement: str, *_args) -> None:
        if done or not statement.startswith('WITH w0 AS (INSERT INTO "alert"'):
            return
        done.append(1)
        # Another connection, its own transaction, committed before the joint write runs.
        await_(_commit_elsewhere(dsn, g1, g2, jo, de))

    engine = db.engine.sync_engine
    sa_event.listen(engine, "before_cursor_execute", meddle)
    try:
        bodies = [
            seizure_body(publish=True, handling=_handling("amber", (), [g1])),
            seizure_body(publish=True, handling=_handling("amber", (), [g2])),
            seizure_body(publish=True, handling=_handling("amber", [de, jo])),
            seizure_body(publish=True, handling=_handling("green", audience="community")),
        ]
        answer = await client.post(BATCH, json={"alerts": bodies}, headers=world["KE"].headers)
    finally:
        sa_event.remove(engine, "before_cursor_execute", meddle)
    assert done
    assert answer.status_code == 200, answer.text
    ids = [uuid.UUID(r["alert"]["id"]) for r in answer.json()["results"] if r["alert"]]
    got = await _deliveries(db)
    assert de_sub not in set().union(*got.values()) if got else True
    assert [got.get(i, set()) for i in ids] == [set(), set(), {jo_sub}, {jo_sub}][: len(ids)]
    for n, alert_id in enumerate(ids[:2]):
        r = await client.get(f"/api/v1/alerts/{alert_id}", headers=world["JO"].headers)
        assert r.status_code == 404, (n, r.text)
