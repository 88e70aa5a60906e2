"""The whole service as deployed: `tracewire serve` (uvicorn) + its worker + a real receiver."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
from standardwebhooks import Webhook

from app.authz.principal import Role
from tests import live
from tests.factories import PASSWORD, make_agency, make_user, seizure_body
from tests.secrets_seen import remember
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


async def _until(predicate, what: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def _by_alert(events: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for event in events:
        out.setdefault(event["data"]["alert"]["id"], []).append(event)
    return out


async def test_deliveries_carry_what_is_true_when_sent(db, app, db_url, tmp_path):
    """Embargo then withdraw, raised to red and edited during the embargo, a failing
    endpoint retried after a withdrawal, a retry by hand and a replay: over real HTTP,
    checked by receivers that verify every signature."""
    hashing = app.state.auth.hashing
    ke = await make_agency(db, country="KE")
    de = await make_agency(db, country="DE")
    focal = await make_user(db, hashing, ke, Role.focal_point)
    admin = await make_user(db, hashing, de, Role.agency_admin)
    up, down = Receiver(), Receiver()
    await up.start()
    await down.start()
    try:
        async with (
            live.serve(
                db_url,
                tmp_path,
                WEBHOOK_ALLOW_NETWORKS=f"127.0.0.1:{up.port},127.0.0.1:{down.port}",
                WEBHOOK_REQUIRE_HTTPS="false",
                WEBHOOK_POLL_SECONDS="0.2",
                WEBHOOK_RETRY_SCHEDULE=",".join(["0.3"] * 40),
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

            ke_h, de_h = await login(focal.email), await login(admin.email)
            subs = {}
            for name, receiver in (("up", up), ("down", down)):
                made = await http.post(
                    "/api/v1/subscriptions", json={"url": receiver.url}, headers=de_h
                )
                assert made.status_code == 201, made.text
                subs[name] = made.json()
                receiver.secret = made.json()["secret"]
                remember(receiver.secret)
            await down.stop()  # this endpoint fails until it comes back below

            async def post(body: dict) -> dict:
                answer = await http.post(
                    "/api/v1/alerts", json={**body, "publish": True}, headers=ke_h
                )
                assert answer.status_code == 201, answer.text
                return answer.json()

            async def patch(alert: dict, body: dict) -> dict:
                answer = await http.patch(
                    f"/api/v1/alerts/{alert['id']}",
                    json=body,
                    headers={**ke_h, "If-Match": f'"{alert["version"]}"'},
                )
                assert answer.status_code == 200, answer.text
                return answer.json()

            async def withdraw(alert: dict) -> dict:
                answer = await http.post(
                    f"/api/v1/alerts/{alert['id']}/withdraw",
                    json={"reason": "In error"},
                    headers=ke_h,
                )
                assert answer.status_code == 200, answer.text
                return answer.json()

            ends = (datetime.now(UTC) + timedelta(seconds=6)).isoformat()
            community = {"tlp": "green", "audience": "community", "embargo_until": ends}
            named = {"tlp": "amber", "audience": "recipients", "recipient_agencies": [str(de.id)]}
            named["embargo_until"] = ends
            w = await withdraw(await post(seizure_body(title="W secret", handling=community)))
            r = await post(seizure_body(title="R secret", handling=named))
            r = await patch(r, {"handling": {**named, "tlp": "red"}})
            u = await post(seizure_body(summary="Informant Ahmed", handling=community))
            u = await patch(u, {"summary": "Source protected"})
            f = await post(seizure_body(title="F secret"))
            path = f"/api/v1/subscriptions/{subs['down']['id']}/deliveries"

            async def f_failed() -> bool:
                log = (await http.get(path, headers=de_h)).json()["items"]
                return any(d["alert_id"] == f["id"] and d["attempts"] >= 1 for d in log)

            deadline = time.monotonic() + 30
            while not await f_failed():
                assert time.monotonic() < deadline, "the failing endpoint was never tried"
                await asyncio.sleep(0.2)
            await _until(lambda: len(up.received) >= 1, "the live endpoint")
            f = await withdraw(f)
            await down.start()
            await _until(lambda: len(up.received) >= 8 and len(down.received) >= 8, "8 each")

            async def down_recorded() -> bool:
                # A receiver has a request before the worker records it as delivered, and a
                # replay re-sends only recorded deliveries: wait for the records.
                log = (await http.get(path, headers=de_h)).json()["items"]
                return sum(d["status"] in ("delivered", "failed") for d in log) >= 8

            deadline = time.monotonic() + 30
            while not await down_recorded():
                assert time.monotonic() < deadline, "the first pass was never recorded"
                await asyncio.sleep(0.2)

            log = (await http.get(path, headers=de_h)).json()["items"]
            f_published = next(
                d for d in log if d["alert_id"] == f["id"] and d["event_type"] == "alert.published"
            )
            retry = await http.post(f"/api/v1/deliveries/{f_published['id']}/retry", headers=de_h)
            assert retry.status_code == 409, retry.text
            replay = await http.post(
                f"/api/v1/subscriptions/{subs['down']['id']}/replay",
                json={"since": "2000-01-01T00:00:00Z"},
                headers=de_h,
            )
            assert replay.json() == {"queued": 8}
            await _until(lambda: len(down.received) >= 16, "the replay")
    finally:
        await up.stop()
        await down.stop()

    for receiver in (up, down):
        # Every request verified; the first pass and the replay each keep their order.
        events = receiver.events()
        passes = [events[:8]] if receiver is up else [events[:8], events[8:]]
        assert len(events) == (8 if receiver is up else 16)
        for batch in passes:
            grouped = _by_alert(batch)
            for alert in (w, r, u, f):
                types = [e["type"] for e in grouped[alert["id"]]]
                assert types == ["alert.published", alert_last(alert)], (alert["title"], types)
            assert all(e["data"]["alert"]["tombstone"] for e in grouped[w["id"]])
            assert all(e["data"]["alert"]["tlp"] == "red" for e in grouped[r["id"]])
            assert all("title" not in e["data"]["alert"] for e in grouped[r["id"]])
            assert all(
                e["data"]["alert"]["summary"] == "Source protected" for e in grouped[u["id"]]
            )
        raw = b"".join(x.body for x in receiver.received)
        assert b"W secret" not in raw and b"R secret" not in raw and b"Informant" not in raw
    # The live endpoint read F while it was published; the failing one never did.
    assert b"F secret" in b"".join(x.body for x in up.received)
    assert b"F secret" not in b"".join(x.body for x in down.received)
    assert all(e["data"]["alert"]["tombstone"] for e in _by_alert(down.events())[f["id"]])


def alert_last(alert: dict) -> str:
    """The event an alert's stream ends with in this test."""
    return "alert.withdrawn" if alert["status"] == "withdrawn" else "alert.updated"
