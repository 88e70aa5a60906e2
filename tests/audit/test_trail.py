"""The audit trail: the right record for each action, and tampering detected."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from app.audit import heads
from app.audit import service as audit
from app.audit.models import AuditRecord
from app.authz.principal import Role
from app.core.db import Database
from tests.factories import PASSWORD, make_actor, make_agency, post_alert, seizure_body


async def _records(db, **where) -> list[AuditRecord]:
    async with db.session() as session:
        query = select(AuditRecord).order_by(col(AuditRecord.seq))
        for name, value in where.items():
            query = query.where(getattr(AuditRecord, name) == value)
        return list((await session.exec(query)).all())


@pytest.fixture
async def people(client, db, app):
    hashing = app.state.auth.hashing
    ke, de = await make_agency(db, country="KE"), await make_agency(db, country="DE")
    return {
        "focal": await make_actor(client, db, hashing, ke, Role.focal_point),
        "admin": await make_actor(client, db, hashing, ke, Role.agency_admin),
        "reader": await make_actor(client, db, hashing, de, Role.reader),
        "de_admin": await make_actor(client, db, hashing, de, Role.agency_admin),
        "operator": await make_actor(
            client, db, hashing, await make_agency(db, country="XX"), Role.platform_admin
        ),
    }


async def test_each_action_leaves_its_record(client, db, people):
    focal = people["focal"]
    alert = await client.post(
        "/api/v1/alerts",
        json={**seizure_body(), "publish": True},
        headers={**focal.headers, "X-Request-ID": "req-create-1"},
    )
    (created,) = await _records(db, action="alert.create")
    assert created.actor_id == focal.user.id and created.agency_id == focal.agency.id
    assert created.object_id == alert.json()["id"] and created.request_id == "req-create-1"
    assert created.outcome == "success" and created.client_ip == "127.0.0.1"
    await client.get(f"/api/v1/alerts/{alert.json()['id']}", headers=people["reader"].headers)
    (read,) = await _records(db, action="alert.read")
    assert read.actor_id == people["reader"].user.id and read.object_id == alert.json()["id"]
    await client.get("/api/v1/alerts", headers=people["reader"].headers)
    (listed,) = await _records(db, action="alert.list")
    assert read.agency_id == people["reader"].agency.id
    assert listed.object_id == alert.json()["id"] or listed.details["alert_ids"] == [
        alert.json()["id"]
    ]


async def test_logins_are_recorded_failed_ones_too(client, db, people):
    before = len(await _records(db, action="auth.login"))
    bad = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": people["focal"].user.email,
            "password": "wrong-password-x",
        },
    )
    assert bad.status_code == 400
    unknown = await client.post(
        "/api/v1/auth/token",
        data={
            "grant_type": "password",
            "username": "nobody@tracewire.example",
            "password": PASSWORD,
        },
    )
    assert unknown.status_code == 400
    logins = (await _records(db, action="auth.login"))[before:]
    assert [(r.outcome, r.object_id) for r in logins] == [
        ("failure", str(people["focal"].user.id)),
        ("failure", None),
    ]
    assert "nobody@tracewire.example" not in str([r.model_dump() for r in logins])
    assert "wrong-password-x" not in str([r.model_dump() for r in await _records(db)])


async def test_admin_actions_are_recorded(client, db, people):
    admin = people["admin"]
    answer = await client.post(
        f"/api/v1/agencies/{admin.agency.id}/users",
        json={"email": "new.person@tracewire.example", "full_name": "New", "password": PASSWORD},
        headers=admin.headers,
    )
    (row,) = await _records(db, action="user.create")
    assert row.object_id == answer.json()["id"] and row.actor_id == admin.user.id
    assert PASSWORD not in str(row.model_dump())


async def test_audit_api_scopes_and_verify(client, db, people):
    await post_alert(client, people["focal"], seizure_body())
    mine = await client.get("/api/v1/audit", headers=people["admin"].headers)
    assert mine.status_code == 200
    assert {r["agency_id"] for r in mine.json()["items"]} == {str(people["admin"].agency.id)}
    other = await client.get(
        f"/api/v1/audit?agency={people['de_admin'].agency.id}", headers=people["admin"].headers
    )
    assert other.status_code == 404
    assert (await client.get("/api/v1/audit", headers=people["focal"].headers)).status_code == 403
    everything = await client.get("/api/v1/audit?limit=500", headers=people["operator"].headers)
    assert len({r["agency_id"] for r in everything.json()["items"]}) >= 2
    page = await client.get("/api/v1/audit?limit=2", headers=people["operator"].headers)
    nxt = await client.get(
        f"/api/v1/audit?limit=2&cursor={page.json()['next_cursor']}",
        headers=people["operator"].headers,
    )
    assert page.json()["items"][-1]["seq"] > nxt.json()["items"][0]["seq"]
    verdict = await client.get("/api/v1/audit/verify", headers=people["operator"].headers)
    assert verdict.json()["ok"] is True and verdict.json()["checked"] >= 5
    assert (
        await client.get("/api/v1/audit/verify", headers=people["admin"].headers)
    ).status_code == 403


async def _unlock(db, backend: str) -> None:
    async with db.session() as session:
        if backend == "sqlite":
            await session.exec(text("DROP TRIGGER audit_record_no_update"))
            await session.exec(text("DROP TRIGGER audit_record_no_delete"))
        else:
            await session.exec(
                text("ALTER TABLE audit_record DISABLE TRIGGER audit_record_append_only")
            )
        await session.commit()


async def _verdict(db) -> audit.Verdict:
    async with db.session() as session:
        return await audit.verify(session, heads.verify_key(db.settings))


async def test_the_database_refuses_edits(client, db, people):
    await post_alert(client, people["focal"], seizure_body())
    for statement in ("UPDATE audit_record SET outcome = 'x'", "DELETE FROM audit_record"):
        with pytest.raises(Exception, match="append-only"):
            async with db.session() as session:
                await session.exec(text(statement))
                await session.commit()


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        ("UPDATE audit_record SET outcome = 'failure' WHERE seq = 3", "content does not match"),
        ("DELETE FROM audit_record WHERE seq = 3", "record 3 is missing"),
        (
            # reorder: records 3 and 4 trade places
            "UPDATE audit_record SET seq = CASE seq WHEN 3 THEN -4 ELSE -3 END WHERE seq IN (3, 4)",
            "does not link",
        ),
    ],
    ids=["edit", "delete", "reorder"],
)
async def test_tampering_is_detected_and_named(client, db, people, backend, tamper, reason):
    for _ in range(3):
        await post_alert(client, people["focal"], seizure_body())
    assert (await _verdict(db)).ok
    await _unlock(db, backend)
    async with db.session() as session:
        await session.exec(text(tamper))
        if "-4" in tamper:  # two rows swap places in the sequence
            await session.exec(text("UPDATE audit_record SET seq = -seq WHERE seq < 0"))
        await session.commit()
    verdict = await _verdict(db)
    assert not verdict.ok
    assert verdict.first_broken_seq == 3
    assert reason in verdict.reason


async def test_cutting_the_tail_below_a_signed_head_is_detected(client, db, people, backend):
    for _ in range(3):
        await post_alert(client, people["focal"], seizure_body())
    async with db.session() as session:
        head = await audit.sign_head(session, heads.signing_key(db.settings))
        await session.commit()
    assert (await _verdict(db)).signed_head_seq == head.seq
    await _unlock(db, backend)
    async with db.session() as session:
        await session.exec(
            text("DELETE FROM audit_record WHERE seq >= :s"), params={"s": head.seq - 1}
        )
        await session.commit()
    verdict = await _verdict(db)
    assert not verdict.ok and "cut" in verdict.reason


async def test_concurrent_writers_do_not_fork_the_chain(db, settings, backend):
    if backend != "postgres":
        pytest.skip("SQLite has one writer at a time by construction")
    databases = [Database(settings) for _ in range(4)]

    async def writer(database: Database, n: int) -> None:
        for i in range(n):
            async with database.session() as session:
                await audit.record(session, None, "test.concurrent", details={"i": i})
                await session.commit()

    try:
        await asyncio.gather(*(writer(d, 25) for d in databases))
    finally:
        for d in databases:
            await d.dispose()
    rows = await _records(db, action="test.concurrent")
    assert len(rows) == 100
    verdict = await _verdict(db)
    assert verdict.ok and verdict.checked == len(await _records(db))
