"""The migration to send-time rendering: who manages each subscription, the order of its
deliveries, and the answers the old log kept, for rows written before it."""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import select

from app.authz.principal import Role
from app.core import migrate
from app.core.db import create_engine
from app.webhooks.models import Delivery, DeliveryAttempt, Subscription
from tests.conftest import settings_for
from tests.factories import make_actor, make_agency, post_alert, seizure_body

BEFORE = "5b7e0c1d9a31"


async def test_rows_written_before_are_carried_over(client, db, app, db_url):
    hashing = app.state.auth.hashing
    ke = await make_actor(
        client, db, hashing, await make_agency(db, country="KE"), Role.focal_point
    )
    de = await make_actor(
        client, db, hashing, await make_agency(db, country="DE"), Role.agency_admin
    )
    made = await client.post(
        "/api/v1/subscriptions", json={"url": "https://hooks.de.example/"}, headers=de.headers
    )
    assert made.status_code == 201
    alert = await post_alert(client, ke, seizure_body())
    engine = create_engine(settings_for(db_url))
    try:
        await migrate.downgrade(engine, BEFORE)
        async with engine.begin() as conn:
            # What the old worker kept: the first 2 KB of an answer, from any address.
            await conn.execute(sa.text("UPDATE webhook_delivery SET last_response = 'secret'"))
            await conn.execute(
                sa.text(
                    "INSERT INTO webhook_attempt (id, delivery_id, at, response_excerpt) "
                    "SELECT id, id, created_at, 'secret' FROM webhook_delivery"
                )
            )
    finally:
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()
    async with db.session() as session:
        sub = (await session.exec(select(Subscription))).one()
        delivery = (await session.exec(select(Delivery))).one()
        attempts = (await session.exec(select(DeliveryAttempt))).all()
    assert (sub.managed_by_kind, sub.managed_by_id, sub.url_epoch) == ("user", de.user.id, 1)
    assert (delivery.alert_version, delivery.url_epoch) == (alert["version"], 1)
    assert delivery.last_response is None
    assert [a.response_excerpt for a in attempts] == [None]
