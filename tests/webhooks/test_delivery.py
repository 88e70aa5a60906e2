"""Webhooks end to end: real receiver on 127.0.0.1, real signatures, sharing decides."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlmodel import select
from standardwebhooks import Webhook

from app.webhooks.delivery.worker import DeliveryWorker
from app.webhooks.models import Delivery
from tests.factories import post_alert, seizure_body
from tests.secrets_seen import remember
from tests.webhooks.receiver import Receiver


@pytest.fixture
def settings(settings, receiver):
    return settings.model_copy(
        update={
            "webhook_allow_networks": [f"127.0.0.1:{receiver.port}"],
            "webhook_require_https": False,
            "webhook_retry_schedule": [0.05, 0.05, 0.05, 0.05, 0.05],
            "webhook_read_timeout": 0.5,
            "webhook_poll_seconds": 0.05,
        }
    )


@pytest.fixture
async def receiver():
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


async def _subscribe(client, admin, url, **filters) -> dict:
    answer = await client.post(
        "/api/v1/subscriptions", json={"url": url, **filters}, headers=admin.headers
    )
    assert answer.status_code == 201, answer.text
    assert answer.json()["secret"].startswith("whsec_")
    remember(answer.json()["secret"])
    return answer.json()


async def _drain(db, settings, rounds: int = 40) -> None:
    worker = DeliveryWorker(db, settings)
    try:
        for _ in range(rounds):
            await worker.run_once()
            async with db.session() as session:
                open_ = (
                    await session.exec(
                        select(Delivery).where(Delivery.status.in_(["pending", "delivering"]))
                    )
                ).all()
            if not open_:
                return
            await asyncio.sleep(0.06)
    finally:
        await worker.aclose()


def _verify(secret: str, received) -> dict:
    return Webhook(secret).verify(received.body, received.headers)


async def test_sharing_decides_who_receives_what(client, db, settings, world, receiver):
    de = await _subscribe(client, world["DE_admin"], receiver.url + "?de")
    jo = await _subscribe(client, world["JO_admin"], receiver.url + "?jo")
    de_id = str(world["DE"].agency.id)
    community = await post_alert(client, world["KE"], seizure_body(title="Community seizure"))
    named = await post_alert(
        client,
        world["KE"],
        seizure_body(
            title="For Germany only",
            handling={"tlp": "amber", "audience": "recipients", "recipient_agencies": [de_id]},
        ),
    )
    red = await post_alert(
        client,
        world["KE"],
        seizure_body(
            title="Red secret title",
            summary="Red secret summary",
            handling={"tlp": "red", "audience": "recipients", "recipient_agencies": [de_id]},
        ),
    )
    await _drain(db, settings)
    by_target: dict[str, list[dict]] = {"de": [], "jo": []}
    for r in receiver.received:
        target = None
        for name, sub in (("de", de), ("jo", jo)):
            try:
                body = _verify(sub["secret"], r)
                by_target[name].append(body)
                target = name
            except Exception:
                continue
        assert target is not None, "a delivery no subscription secret verifies"
    de_alerts = {b["data"]["alert"]["id"] for b in by_target["de"]}
    jo_alerts = {b["data"]["alert"]["id"] for b in by_target["jo"]}
    assert de_alerts == {community["id"], named["id"], red["id"]}
    assert jo_alerts == {community["id"]}
    red_body = next(b for b in by_target["de"] if b["data"]["alert"]["id"] == red["id"])
    assert set(red_body["data"]["alert"]) == {"id", "kind", "tlp", "status", "version", "url"}
    raw = b"".join(r.body for r in receiver.received)
    assert b"Red secret" not in raw
    assert {b["type"] for b in by_target["de"]} == {"alert.published"}


async def test_filters_choose_events(client, db, settings, world, receiver):
    sub = await _subscribe(
        client, world["DE_admin"], receiver.url, kinds=["trace_request"], max_tlp="green"
    )
    await post_alert(client, world["KE"], seizure_body())  # wrong kind
    await _drain(db, settings)
    assert receiver.received == []
    assert sub["kinds"] == ["trace_request"]


async def test_access_withdrawn_before_sending_cancels(client, db, settings, world, receiver):
    group = await client.post(
        "/api/v1/sharing-groups",
        json={"name": "Desk", "members": [str(world["DE"].agency.id)]},
        headers=world["KE_admin"].headers,
    )
    await _subscribe(client, world["DE_admin"], receiver.url)
    await post_alert(
        client,
        world["KE"],
        seizure_body(
            handling={
                "tlp": "amber",
                "audience": "recipients",
                "recipient_groups": [group.json()["id"]],
            }
        ),
    )
    async with db.session() as session:
        queued = (await session.exec(select(Delivery))).all()
    assert len(queued) == 1
    removed = await client.delete(
        f"/api/v1/sharing-groups/{group.json()['id']}/members/{world['DE'].agency.id}",
        headers=world["KE_admin"].headers,
    )
    assert removed.status_code == 200
    await _drain(db, settings)
    assert receiver.received == []
    async with db.session() as session:
        delivery = (await session.exec(select(Delivery))).one()
    assert delivery.status == "cancelled"
    assert delivery.last_error == "access withdrawn before sending"


async def test_failures_are_retried_with_the_same_webhook_id(client, db, settings, world, receiver):
    sub = await _subscribe(client, world["DE_admin"], receiver.url)
    receiver.fail_next = 2
    await post_alert(client, world["KE"], seizure_body())
    await _drain(db, settings)
    assert len(receiver.received) == 3
    assert len(set(receiver.ids())) == 1
    log = (
        await client.get(
            f"/api/v1/subscriptions/{sub['id']}/deliveries", headers=world["DE_admin"].headers
        )
    ).json()
    assert [(d["status"], d["attempts"], d["last_status_code"]) for d in log["items"]] == [
        ("delivered", 3, 200)
    ]


async def test_receiver_down_then_back(client, db, settings, world, receiver):
    await _subscribe(client, world["DE_admin"], receiver.url)
    await receiver.stop()
    await post_alert(client, world["KE"], seizure_body())
    worker = DeliveryWorker(db, settings)
    await worker.run_once()  # connection refused: scheduled again
    await worker.aclose()
    async with db.session() as session:
        delivery = (await session.exec(select(Delivery))).one()
    assert (
        delivery.status == "pending" and delivery.attempts == 1 and "Connect" in delivery.last_error
    )
    await receiver.start()
    await _drain(db, settings)
    assert len(receiver.received) == 1


async def test_slow_receiver_times_out_and_is_retried(client, db, settings, world, receiver):
    await _subscribe(client, world["DE_admin"], receiver.url)
    receiver.delay = 1.0
    await post_alert(client, world["KE"], seizure_body())
    worker = DeliveryWorker(db, settings)
    await worker.run_once()
    await worker.aclose()
    receiver.delay = 0
    await _drain(db, settings)
    async with db.session() as session:
        delivery = (await session.exec(select(Delivery))).one()
    assert delivery.status == "delivered" and delivery.attempts == 2
    assert len(set(receiver.ids())) == 1  # the timed-out copy and the retry share the id


async def test_gone_disables_the_subscription(client, db, settings, world, receiver):
    sub = await _subscribe(client, world["DE_admin"], receiver.url)
    receiver.status = 410
    await post_alert(client, world["KE"], seizure_body())
    await _drain(db, settings)
    got = (
        await client.get(f"/api/v1/subscriptions/{sub['id']}", headers=world["DE_admin"].headers)
    ).json()
    assert got["status"] == "disabled" and got["disabled_reason"] == "410 Gone"


async def test_ping_rotation_and_replay(client, db, settings, world, receiver):
    sub = await _subscribe(client, world["DE_admin"], receiver.url)
    headers = world["DE_admin"].headers
    assert (
        await client.post(f"/api/v1/subscriptions/{sub['id']}/ping", headers=headers)
    ).status_code == 202
    await _drain(db, settings)
    assert _verify(sub["secret"], receiver.received[-1])["type"] == "ping"
    rotated = (
        await client.post(f"/api/v1/subscriptions/{sub['id']}/rotate-secret", headers=headers)
    ).json()
    assert rotated["secret"] != sub["secret"]
    await client.post(f"/api/v1/subscriptions/{sub['id']}/ping", headers=headers)
    await _drain(db, settings)
    last = receiver.received[-1]
    assert _verify(rotated["secret"], last)["type"] == "ping"
    assert _verify(sub["secret"], last)["type"] == "ping"  # the old one still signs (overlap)
    replay = await client.post(
        f"/api/v1/subscriptions/{sub['id']}/replay",
        json={"since": "2000-01-01T00:00:00Z"},
        headers=headers,
    )
    assert replay.json() == {"queued": 2}
    before = len(receiver.received)
    await _drain(db, settings)
    assert len(receiver.received) == before + 2


async def test_subscription_rules(client, world, settings):
    admin = world["DE_admin"].headers
    for url, field in (
        ("ftp://example.org/x", "body.url"),
        ("https://user:pw@example.org/", "body.url"),
    ):
        answer = await client.post("/api/v1/subscriptions", json={"url": url}, headers=admin)
        assert answer.status_code == 422
        assert answer.json()["errors"][0]["field"] == field
    focal = await client.post(
        "/api/v1/subscriptions", json={"url": "https://example.org/"}, headers=world["DE"].headers
    )
    assert focal.status_code == 403
    sub = await client.post(
        "/api/v1/subscriptions", json={"url": "https://example.org/"}, headers=admin
    )
    other = await client.get(
        f"/api/v1/subscriptions/{sub.json()['id']}", headers=world["JO_admin"].headers
    )
    assert other.status_code == 404
    listed = await client.get("/api/v1/subscriptions", headers=admin)
    assert "secret" not in listed.json()["items"][0]
    assert uuid.UUID(sub.json()["id"])


class FakeResolver:
    """A DNS answer we control (the edge of the world)."""

    def __init__(self, answers: list[list[str]]) -> None:
        self.answers = answers

    async def resolve(self, host: str, port: int) -> list[str]:
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


async def test_dns_rebinding_is_caught_at_send_time(client, db, settings, world, receiver):
    # The name resolved to a public address when it was checked before; now it points inside.
    await _subscribe(
        client, world["DE_admin"], f"http://hooks.partner.example:{receiver.port}/hook"
    )
    await post_alert(client, world["KE"], seizure_body())
    worker = DeliveryWorker(db, settings, resolver=FakeResolver([["10.0.0.7"]]))
    await worker.run_once()
    await worker.aclose()
    assert receiver.received == []
    async with db.session() as session:
        delivery = (await session.exec(select(Delivery))).one()
    assert delivery.status == "pending" and delivery.last_error.startswith("refused")
    # Once the name answers with an allowed address again, the same message goes out.
    worker = DeliveryWorker(db, settings, resolver=FakeResolver([["127.0.0.1"]]))
    await asyncio.sleep(0.1)
    await worker.run_once()
    await worker.aclose()
    assert len(receiver.received) == 1
    assert receiver.received[0].headers["host"] == f"hooks.partner.example:{receiver.port}"


async def test_a_run_of_failures_disables_the_subscription(client, db, settings, world, receiver):
    settings = settings.model_copy(update={"webhook_disable_after_failures": 3})
    sub = await _subscribe(client, world["DE_admin"], receiver.url)
    receiver.status = 500
    await post_alert(client, world["KE"], seizure_body())
    await _drain(db, settings)
    got = (
        await client.get(f"/api/v1/subscriptions/{sub['id']}", headers=world["DE_admin"].headers)
    ).json()
    assert got["status"] == "disabled" and got["disabled_reason"] == "3 failures"
    from app.events.models import Event

    async with db.session() as session:
        told = (
            await session.exec(select(Event).where(Event.type == "subscription.disabled"))
        ).all()
    assert [e.agency_ids for e in told] == [[world["DE"].agency.id]]
    enabled = await client.patch(
        f"/api/v1/subscriptions/{sub['id']}",
        json={"status": "active"},
        headers=world["DE_admin"].headers,
    )
    assert enabled.json()["status"] == "active" and enabled.json()["consecutive_failures"] == 0


async def test_retry_of_a_failed_delivery(client, db, settings, world, receiver):
    settings = settings.model_copy(update={"webhook_retry_schedule": [0.05]})
    await _subscribe(client, world["DE_admin"], receiver.url)
    receiver.status = 500
    await post_alert(client, world["KE"], seizure_body())
    await _drain(db, settings)
    async with db.session() as session:
        delivery = (await session.exec(select(Delivery))).one()
    assert delivery.status == "failed" and delivery.attempts == 2
    receiver.status = 200
    again = await client.post(
        f"/api/v1/deliveries/{delivery.id}/retry", headers=world["DE_admin"].headers
    )
    assert again.status_code == 200 and again.json()["status"] == "pending"
    other = await client.post(
        f"/api/v1/deliveries/{delivery.id}/retry", headers=world["JO_admin"].headers
    )
    assert other.status_code == 404
    await _drain(db, settings)
    assert len(set(receiver.ids())) == 1 and len(receiver.ids()) == 3


async def test_embargoed_alert_is_delivered_when_the_embargo_ends(
    client, db, settings, world, receiver
):
    from datetime import timedelta

    from app.core.types import utcnow

    await _subscribe(client, world["DE_admin"], receiver.url)
    ends = utcnow() + timedelta(seconds=1)
    await post_alert(
        client,
        world["KE"],
        seizure_body(
            handling={"tlp": "green", "audience": "community", "embargo_until": ends.isoformat()}
        ),
    )
    worker = DeliveryWorker(db, settings)
    assert await worker.run_once() == 0  # not due yet
    await asyncio.sleep(1.2)
    assert await worker.run_once() == 1
    await worker.aclose()
    assert len(receiver.received) == 1


async def test_preview_counts_only_the_callers_own_subscriptions(client, world):
    await _subscribe(client, world["DE_admin"], "https://hooks.de.example/a")
    await _subscribe(client, world["DE_admin"], "https://hooks.de.example/b", max_tlp="clear")
    await _subscribe(client, world["KE_admin"], "https://hooks.ke.example/a")
    body = {"kind": "seized_weapon", "handling": {"tlp": "green", "audience": "community"}}

    async def counts(actor) -> dict[str, int | None]:
        preview = await client.post(
            "/api/v1/alerts/preview-audience", json=body, headers=actor.headers
        )
        assert preview.status_code == 200, preview.text
        return {a["id"]: a["subscriptions"] for a in preview.json()["agencies"]}

    ids = {code: str(world[code].agency.id) for code in ("KE", "DE", "JO")}
    from_ke = await counts(world["KE"])
    # Another agency's count, tried against chosen filters, would reveal its filters.
    assert from_ke == {ids["KE"]: 1, ids["DE"]: None, ids["JO"]: None}
    from_de = await counts(world["DE"])
    assert from_de[ids["DE"]] == 1  # the clear-only one does not take green
    assert from_de[ids["KE"]] is None


@pytest.mark.parametrize(
    ("retry_after", "honoured"),
    [
        (b"\xb2", False),  # "²": str.isdigit() says yes, int() says no
        (b"Fri, 31 Dec 99999 23:59:59 GMT", False),
        (b"Mon, 32 Jan 2026 00:00:00 GMT", False),
        (b"99999999999999999999", True),  # capped at a day
    ],
)
async def test_a_receivers_retry_after_never_stops_the_worker(
    client, db, settings, world, receiver, retry_after, honoured
):
    """An unreadable Retry-After counts as absent (the schedule decides); a huge one is
    capped; either way the attempt is recorded and the worker goes on."""
    from datetime import timedelta

    from app.core.types import utcnow
    from app.webhooks.delivery.sender import RETRY_AFTER_CAP_SECONDS

    settings = settings.model_copy(update={"webhook_retry_schedule": [0.05]})
    await _subscribe(client, world["DE_admin"], receiver.url)
    receiver.status = 503
    receiver.reply_headers = [(b"retry-after", retry_after)]
    await post_alert(client, world["KE"], seizure_body())
    await _drain(db, settings, rounds=10)
    async with db.session() as session:
        delivery = (await session.exec(select(Delivery))).one()
    assert delivery.last_status_code == 503
    if honoured:
        assert delivery.status == "pending" and delivery.attempts == 1
        wait = delivery.next_attempt_at - utcnow()
        assert timedelta(hours=23) < wait <= timedelta(seconds=RETRY_AFTER_CAP_SECONDS)
    else:
        assert delivery.status == "failed" and delivery.attempts == 2


async def test_a_reenable_while_a_message_is_in_flight_is_not_written_over(
    client, db, settings, world, receiver
):
    """The worker records a failure on the subscription as the admin left it: an admin's
    re-enable committed while the failing message was in flight stays; the failure
    count starts again from it instead of disabling the subscription once more."""
    import uuid as uuid_

    from app.core import concurrency
    from app.webhooks.models import Subscription

    settings = settings.model_copy(update={"webhook_disable_after_failures": 3})
    sub = await _subscribe(client, world["DE_admin"], receiver.url)
    sub_id = uuid_.UUID(sub["id"])
    async with db.session() as session:
        row = await session.get(Subscription, sub_id)
        row.consecutive_failures = 2  # one more failure would disable it
        session.add(row)
        await session.commit()
    receiver.status = 500
    await post_alert(client, world["KE"], seizure_body())
    worker = DeliveryWorker(db, settings)
    try:
        async with db.session() as admin:
            locked = await concurrency.get_for_change(admin, Subscription, sub_id)
            locked.consecutive_failures = 0  # the admin's reset, as PATCH status=active does
            concurrency.bump(locked)
            admin.add(locked)
            await admin.flush()
            sending = asyncio.create_task(worker.run_once())
            for _ in range(100):  # SQLite queues the worker behind this writer instead
                if receiver.received:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)  # the worker is now recording the failure
            await admin.commit()
        await asyncio.wait_for(sending, 30)
    finally:
        await worker.aclose()
    async with db.session() as session:
        stored = await session.get(Subscription, sub_id)
    assert stored.consecutive_failures == 1 and stored.status == "active"
    assert stored.version == sub["version"] + 1


async def test_another_agencys_delivery_id_is_answered_as_an_unknown_one(
    client, db, settings, world, receiver
):
    import uuid as uuid_

    await _subscribe(client, world["DE_admin"], receiver.url)
    receiver.status = 500
    await post_alert(client, world["KE"], seizure_body())  # community: Jordan sees it too
    await _drain(db, settings)
    async with db.session() as session:
        delivery = (await session.exec(select(Delivery))).one()
    assert delivery.status == "failed"
    answers = {}
    for label, target in (("theirs", delivery.id), ("random", uuid_.uuid4())):
        for actor in ("JO_admin", "JO"):
            answer = await client.post(
                f"/api/v1/deliveries/{target}/retry", headers=world[actor].headers
            )
            answers[label, actor] = (answer.status_code, answer.json()["detail"])
    assert (
        answers["theirs", "JO_admin"]
        == answers["random", "JO_admin"]
        == (
            404,
            "No such delivery.",
        )
    )
    assert answers["theirs", "JO"] == answers["random", "JO"]
    assert answers["theirs", "JO"][0] == 403
