"""The migration that adds versions and forward links keeps every row written before it."""

from __future__ import annotations

import sqlalchemy as sa

from app.authz.principal import Role
from app.core import migrate
from app.core.db import create_engine
from tests.conftest import settings_for
from tests.factories import make_actor, make_agency, post_alert, seizure_body, trace_body

BEFORE = "5e1b7c9a2d40"
COUNTED = (
    "trace_request",
    "trace_response",
    "trace_message",
    "trace_transition",
    "webhook_subscription",
    "webhook_delivery",
    "hit",
    "sharing_policy",
)


async def _counts(engine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            t: (await conn.execute(sa.text(f"SELECT count(*) FROM {t}"))).scalar_one()  # noqa: S608
            for t in COUNTED
        }


async def test_rows_written_before_are_kept_both_ways(client, db, app, db_url):
    hashing = app.state.auth.hashing
    ke_agency, de_agency = await make_agency(db, country="KE"), await make_agency(db, country="DE")
    ke = await make_actor(client, db, hashing, ke_agency, Role.focal_point)
    de = await make_actor(client, db, hashing, de_agency, Role.focal_point)
    de_admin = await make_actor(client, db, hashing, de_agency, Role.agency_admin)
    sub = await client.post(
        "/api/v1/subscriptions", json={"url": "https://hooks.de.example/"}, headers=de_admin.headers
    )
    assert sub.status_code == 201
    policy = await client.put(
        f"/api/v1/agencies/{de_agency.id}/sharing-policy",
        json={"kinds": {}},
        headers=de_admin.headers,
    )
    assert policy.status_code == 200
    trace = await post_alert(client, ke, trace_body(de_agency))
    base = f"/api/v1/trace-requests/{trace['id']}"
    await client.post(f"{base}/request-info", json={"question": "Marks?"}, headers=de.headers)
    await client.post(f"{base}/provide-info", json={"answer": "A crown."}, headers=ke.headers)
    answered = await client.post(f"{base}/respond", json={"outcome": "traced"}, headers=de.headers)
    assert answered.status_code == 200
    await post_alert(client, de, seizure_body(country="DE", items=trace_body(de_agency)["items"]))
    engine = create_engine(settings_for(db_url))
    try:
        written = await _counts(engine)
        assert all(written.values()), written
        await migrate.downgrade(engine, BEFORE)
        assert await _counts(engine) == written
        await migrate.upgrade(engine)
        assert await _counts(engine) == written
        async with engine.connect() as conn:
            # A hit's version is per side since 6a2f9d4c1e07; both start where it was.
            columns = {
                "hit": ("version_a", "version_b"),
                "webhook_subscription": ("version",),
                "sharing_policy": ("version",),
            }
            for table, names in columns.items():
                for name in names:
                    query = sa.text(f"SELECT {name} FROM {table}")  # noqa: S608
                    versions = (await conn.execute(query)).all()
                    assert {v for (v,) in versions} == {1}, (table, name)
    finally:
        await engine.dispose()
    again = await client.get(base, headers=de.headers)
    assert again.json()["response"]["outcome"] == "traced"
    assert [m["kind"] for m in again.json()["messages"]] == ["question", "answer"]
