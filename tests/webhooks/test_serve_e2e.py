"""The whole service as deployed: `tracewire serve` (uvicorn) + its worker + a real receiver."""

from __future__ import annotations

import asyncio
import time

import httpx
from standardwebhooks import Webhook

from app.core.principal import Role
from tests import live
from tests.factories import PASSWORD, make_agency, make_user, seizure_body
from tests.webhooks.receiver import Receiver


async def test_alert_posted_over_http_arrives_signed(db, app, db_url, tmp_path):
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE")
    de = await make_agency(db, country="DE")
    focal = await make_user(db, hashing, ke, Role.focal_point)
    admin = await make_user(db, hashing, de, Role.agency_admin)
    receiver = Receiver()
    await receiver.start()
    try:
        async with (
            live.serve(
                db_url,
                tmp_path,
                WEBHOOK_ALLOW_NETWORKS=f"127.0.0.1:{receiver.port}",
                WEBHOOK_REQUIRE_HTTPS="false",
                WEBHOOK_POLL_SECONDS="0.2",
                WORKER_IN_PROCESS="true",
            ) as base,
            httpx.AsyncClient(base_url=base, timeout=10) as http,
        ):

            async def login(email: str) -> dict[str, str]:
                answer = await http.post(
                    "/api/v1/auth/token",
                    data={"grant_type": "password", "username": email, "password": PASSWORD},
                )
                return {"Authorization": f"Bearer {answer.json()['access_token']}"}

            sub = await http.post(
                "/api/v1/subscriptions",
                json={"url": receiver.url},
                headers=await login(admin.email),
            )
            assert sub.status_code == 201, sub.text
            posted = await http.post(
                "/api/v1/alerts",
                json={**seizure_body(), "publish": True},
                headers=await login(focal.email),
            )
            assert posted.status_code == 201
            deadline = time.monotonic() + 30
            while not receiver.received and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
    finally:
        await receiver.stop()
    assert len(receiver.received) == 1
    event = Webhook(sub.json()["secret"]).verify(
        receiver.received[0].body, receiver.received[0].headers
    )
    assert event["type"] == "alert.published"
    assert event["data"]["alert"]["id"] == posted.json()["id"]
