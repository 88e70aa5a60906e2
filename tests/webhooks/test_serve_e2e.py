"""The whole service as deployed: `tracewire serve` (uvicorn) + its worker + a real receiver."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import httpx
from standardwebhooks import Webhook

from app.core.principal import Role
from tests.conftest import TEST_JWT_SECRET
from tests.factories import PASSWORD, make_agency, make_user, seizure_body
from tests.webhooks.receiver import Receiver


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_alert_posted_over_http_arrives_signed(db, app, db_url, tmp_path):
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE")
    de = await make_agency(db, country="DE")
    focal = await make_user(db, hashing, ke, Role.focal_point)
    admin = await make_user(db, hashing, de, Role.agency_admin)
    receiver = Receiver()
    await receiver.start()
    port = _port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEWIRE_")}
    env.update(
        TRACEWIRE_DATABASE_URL=db_url,
        TRACEWIRE_ENVIRONMENT="test",
        TRACEWIRE_JWT_SECRET=TEST_JWT_SECRET,
        TRACEWIRE_PASSWORD_HASH_MEMORY_KIB="1024",
        TRACEWIRE_PASSWORD_HASH_TIME_COST="1",
        TRACEWIRE_WEBHOOK_ALLOW_NETWORKS="127.0.0.1/32",
        TRACEWIRE_WEBHOOK_REQUIRE_HTTPS="false",
        TRACEWIRE_WEBHOOK_POLL_SECONDS="0.2",
        TRACEWIRE_WORKER_IN_PROCESS="true",
        TRACEWIRE_LOG_LEVEL="WARNING",
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)], env=env, cwd=tmp_path
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, "server not ready"
                await asyncio.sleep(0.2)

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
        server.terminate()
        server.wait(timeout=30)
        await receiver.stop()
    assert len(receiver.received) == 1
    event = Webhook(sub.json()["secret"]).verify(
        receiver.received[0].body, receiver.received[0].headers
    )
    assert event["type"] == "alert.published"
    assert event["data"]["alert"]["id"] == posted.json()["id"]
