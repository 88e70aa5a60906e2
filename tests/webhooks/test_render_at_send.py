"""A delivery carries what is true when it is sent, never what was true when it was queued.

Each case is one that reached a subscriber before: an embargoed alert withdrawn, raised
to red or edited before its embargo ended; a failing endpoint retried, a delivery retried
by hand or a subscription replayed after the alert was withdrawn; a subscription made by
a client that may not read alerts; a subscription re-pointed to a new URL. Real worker,
real receiver on 127.0.0.1 that verifies every signature with `standardwebhooks`.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlmodel import select
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from app.agencies.models import ApiClient
from app.core.types import utcnow
from app.webhooks.delivery.worker import DeliveryWorker
from app.webhooks.models import Delivery, DeliveryAttempt
from app.webhooks.signing import message_id
from tests.factories import (
    bearer,
    client_login,
    make_client,
    post_alert,
    seizure_body,
)
from tests.secrets_seen import remember
from tests.webhooks.receiver import Receiver

REFERENCE = {"id", "kind", "tlp", "status", "version", "url"}
EMBARGO = 4.0  # seconds: time to change the alert on a loaded machine (2.5 s was once too short
# in a 33-minute CI run), short enough to wait


@pytest.fixture
async def receiver():
    r = Receiver()
    await r.start()
    yield r
    await r.stop()


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


async def _subscribe(client, headers, receiver: Receiver, url: str | None = None, **filters):
    answer = await client.post(
        "/api/v1/subscriptions", json={"url": url or receiver.url, **filters}, headers=headers
    )
    assert answer.status_code == 201, answer.text
    remember(answer.json()["secret"])
    receiver.secret = answer.json()["secret"]
    return answer.json()


async def _drain(db, settings, rounds: int = 60) -> None:
    worker = DeliveryWorker(db, settings)
    try:
        for _ in range(rounds):
            await worker.run_once()
            async with db.session() as session:
                open_ = (
                    await session.exec(
                        select(Delivery).where(
                            Delivery.status.in_(["pending", "delivering"]),
                            Delivery.next_attempt_at <= utcnow() + timedelta(seconds=1),
                        )
                    )
                ).all()
            if not open_:
                return
            await asyncio.sleep(0.06)
    finally:
        await worker.aclose()


async def _run_once(db, settings) -> int:
    worker = DeliveryWorker(db, settings)
    try:
        return await worker.run_once()
    finally:
        await worker.aclose()


async def _patch(client, actor, alert: dict, body: dict) -> dict:
    current = await client.get(f"/api/v1/alerts/{alert['id']}", headers=actor.headers)
    answer = await client.patch(
        f"/api/v1/alerts/{alert['id']}",
        json=body,
        headers={**actor.headers, "If-Match": current.headers["etag"]},
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _withdraw(client, actor, alert: dict) -> dict:
    answer = await client.post(
        f"/api/v1/alerts/{alert['id']}/withdraw",
        json={"reason": "Posted in error"},
        headers=actor.headers,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _embargoed(**handling) -> dict:
    until = (utcnow() + timedelta(seconds=EMBARGO)).isoformat()
    return {"tlp": "green", "audience": "community", **handling, "embargo_until": until}


async def _after_embargo(db, settings) -> None:
    assert await _run_once(db, settings) == 0  # nothing is due before the embargo ends
    await asyncio.sleep(EMBARGO + 0.2)
    await _drain(db, settings)


def _raw(receiver: Receiver) -> bytes:
    return b"".join(r.body for r in receiver.received)


async def _deliveries(db) -> list[Delivery]:
    async with db.session() as session:
        return list((await session.exec(select(Delivery).order_by(Delivery.created_at))).all())


# --- the observed cases -----------------------------------------------------------------


async def test_embargoed_then_withdrawn_goes_out_as_a_tombstone(
    client, db, settings, world, receiver
):
    await _subscribe(client, world["DE_admin"].headers, receiver)
    alert = await post_alert(
        client,
        world["KE"],
        seizure_body(title="W secret title", summary="W secret", handling=_embargoed()),
    )
    await _withdraw(client, world["KE"], alert)
    await _after_embargo(db, settings)
    events = receiver.events()
    assert [e["type"] for e in events] == ["alert.published", "alert.withdrawn"]
    for event in events:
        block = event["data"]["alert"]
        assert block["id"] == alert["id"] and block["tombstone"] is True
        assert block["status"] == "withdrawn" and block["withdrawal_reason"] == "Posted in error"
        assert "title" not in block and "details" not in block
    assert b"W secret" not in _raw(receiver)


async def test_raised_to_red_during_embargo_goes_as_a_reference(
    client, db, settings, world, receiver
):
    await _subscribe(client, world["DE_admin"].headers, receiver)
    de = str(world["DE"].agency.id)
    alert = await post_alert(
        client,
        world["KE"],
        seizure_body(
            title="R secret title",
            summary="R secret",
            handling=_embargoed(tlp="amber", audience="recipients", recipient_agencies=[de]),
        ),
    )
    red = {"tlp": "red", "audience": "recipients", "recipient_agencies": [de]}
    await _patch(client, world["KE"], alert, {"handling": {**red, "embargo_until": None}})
    # The patch lifted the embargo as well: both messages fall due at once, in order.
    await _drain(db, settings)
    events = receiver.events()
    assert [e["type"] for e in events] == ["alert.published", "alert.updated"]
    for event in events:
        assert set(event["data"]["alert"]) == REFERENCE
        assert event["data"]["alert"]["tlp"] == "red"
    assert b"R secret" not in _raw(receiver)


async def test_raised_to_red_while_still_embargoed(client, db, settings, world, receiver):
    await _subscribe(client, world["DE_admin"].headers, receiver)
    de = str(world["DE"].agency.id)
    handling = _embargoed(tlp="amber", audience="recipients", recipient_agencies=[de])
    alert = await post_alert(
        client, world["KE"], seizure_body(title="R2 secret", handling=handling)
    )
    await _patch(client, world["KE"], alert, {"handling": {**handling, "tlp": "red"}})
    await _after_embargo(db, settings)
    events = receiver.events()
    assert [e["type"] for e in events] == ["alert.published", "alert.updated"]
    assert all(set(e["data"]["alert"]) == REFERENCE for e in events)
    assert b"R2 secret" not in _raw(receiver)


async def test_edited_during_embargo_sends_only_the_current_version(
    client, db, settings, world, receiver
):
    await _subscribe(client, world["DE_admin"].headers, receiver)
    alert = await post_alert(
        client,
        world["KE"],
        seizure_body(summary="Informant Ahmed named", handling=_embargoed()),
    )
    edited = await _patch(client, world["KE"], alert, {"summary": "Source protected"})
    await _after_embargo(db, settings)
    events = receiver.events()
    assert [e["type"] for e in events] == ["alert.published", "alert.updated"]
    for event in events:
        assert event["data"]["alert"]["summary"] == "Source protected"
        assert event["data"]["alert"]["version"] == edited["version"]
        assert "version" not in event["data"]  # no stale version beside the current one
    assert b"Informant" not in _raw(receiver)


async def test_failing_endpoint_retried_after_withdraw_keeps_order_and_content_out(
    client, db, settings, world, receiver
):
    await _subscribe(client, world["DE_admin"].headers, receiver)
    await receiver.stop()  # the endpoint is down: the first attempt fails
    alert = await post_alert(client, world["KE"], seizure_body(title="F secret title"))
    assert await _run_once(db, settings) == 1
    (first,) = await _deliveries(db)
    assert first.status == "pending" and first.attempts == 1
    await _withdraw(client, world["KE"], alert)
    await receiver.start()
    await _drain(db, settings)
    events = receiver.events()
    assert [e["type"] for e in events] == ["alert.published", "alert.withdrawn"]
    assert all(e["data"]["alert"]["tombstone"] is True for e in events)
    assert receiver.received[0].webhook_id == message_id(first.id)  # the same message
    assert b"F secret" not in _raw(receiver)


async def test_retry_by_hand_after_withdraw_sends_the_tombstone(
    client, db, settings, world, receiver
):
    settings = settings.model_copy(update={"webhook_retry_schedule": [0.05]})
    sub = await _subscribe(
        client, world["DE_admin"].headers, receiver, event_types=["alert.published"]
    )
    receiver.status = 500
    alert = await post_alert(client, world["KE"], seizure_body(title="M secret title"))
    await _drain(db, settings)
    (delivery,) = await _deliveries(db)
    assert delivery.status == "failed"
    seen = len(receiver.received)
    await _withdraw(client, world["KE"], alert)
    receiver.status = 200
    again = await client.post(
        f"/api/v1/deliveries/{delivery.id}/retry", headers=world["DE_admin"].headers
    )
    assert again.status_code == 200, again.text
    await _drain(db, settings)
    after = receiver.received[seen:]
    assert [r.webhook_id for r in after] == [message_id(delivery.id)]
    assert after[0].verified["data"]["alert"]["tombstone"] is True
    assert b"M secret" not in after[0].body
    log = await client.get(
        f"/api/v1/subscriptions/{sub['id']}/deliveries", headers=world["DE_admin"].headers
    )
    assert log.json()["items"][0]["status"] == "delivered"


async def test_retry_by_hand_refused_once_a_later_message_went_out(
    client, db, settings, world, receiver
):
    settings = settings.model_copy(update={"webhook_retry_schedule": [0.05]})
    await _subscribe(client, world["DE_admin"].headers, receiver)
    receiver.status = 500
    alert = await post_alert(client, world["KE"], seizure_body())
    await _drain(db, settings)
    receiver.status = 200
    await _withdraw(client, world["KE"], alert)
    await _drain(db, settings)
    published, withdrawn = await _deliveries(db)
    assert (published.status, withdrawn.status) == ("failed", "delivered")
    again = await client.post(
        f"/api/v1/deliveries/{published.id}/retry", headers=world["DE_admin"].headers
    )
    assert again.status_code == 409
    assert "later message" in again.json()["detail"]
    # Queued again all the same (as a retry racing the later message would be), it is
    # cancelled before sending rather than arrive after the withdrawal.
    async with db.session() as session:
        await session.exec(
            sa.update(Delivery).where(Delivery.id == published.id).values(status="pending")
        )
        await session.commit()
    before = len(receiver.received)
    await _drain(db, settings)
    assert len(receiver.received) == before
    published, _ = await _deliveries(db)
    assert published.status == "cancelled"
    assert published.last_error == "superseded by a later delivery about this alert"


async def test_replay_sends_the_current_state_in_order(client, db, settings, world, receiver):
    sub = await _subscribe(client, world["DE_admin"].headers, receiver)
    alert = await post_alert(client, world["KE"], seizure_body(title="P secret title"))
    await _drain(db, settings)
    assert receiver.events()[0]["data"]["alert"]["title"] == "P secret title"  # true then
    await _withdraw(client, world["KE"], alert)
    await _drain(db, settings)
    seen = len(receiver.received)
    replay = await client.post(
        f"/api/v1/subscriptions/{sub['id']}/replay",
        json={"since": "2000-01-01T00:00:00Z"},
        headers=world["DE_admin"].headers,
    )
    assert replay.json() == {"queued": 2}
    await _drain(db, settings)
    replayed = receiver.events()[seen:]
    assert [e["type"] for e in replayed] == ["alert.published", "alert.withdrawn"]
    assert all(e["data"]["alert"]["tombstone"] is True for e in replayed)
    assert b"P secret" not in b"".join(r.body for r in receiver.received[seen:])
    assert not set(receiver.ids()[seen:]) & set(receiver.ids()[:seen])  # new webhook-ids


# --- sideways paths -----------------------------------------------------------------------


async def test_re_marked_beyond_the_subscriptions_tlp_is_not_sent(
    client, db, settings, world, receiver
):
    await _subscribe(client, world["DE_admin"].headers, receiver, max_tlp="green")
    de = str(world["DE"].agency.id)
    alert = await post_alert(
        client, world["KE"], seizure_body(title="T secret", handling=_embargoed())
    )
    amber = {"tlp": "amber", "audience": "recipients", "recipient_agencies": [de]}
    await _patch(client, world["KE"], alert, {"handling": _embargoed(**amber)})
    await _after_embargo(db, settings)
    assert receiver.received == []
    (delivery,) = await _deliveries(db)  # the amber update was never queued for it
    assert delivery.status == "cancelled"
    assert delivery.last_error == "no longer matches the subscription's filters"


async def test_no_longer_addressed_before_the_embargo_ends_is_cancelled(
    client, db, settings, world, receiver
):
    await _subscribe(client, world["JO_admin"].headers, receiver)
    de, jo = str(world["DE"].agency.id), str(world["JO"].agency.id)
    handling = _embargoed(tlp="amber", audience="recipients", recipient_agencies=[de, jo])
    alert = await post_alert(client, world["KE"], seizure_body(handling=handling))
    await _patch(client, world["KE"], alert, {"handling": {**handling, "recipient_agencies": [de]}})
    await _after_embargo(db, settings)
    assert receiver.received == []
    (delivery,) = await _deliveries(db)
    assert delivery.last_error == "access withdrawn before sending"


async def test_embargo_lifted_sends_at_once_in_order(client, db, settings, world, receiver):
    await _subscribe(client, world["DE_admin"].headers, receiver)
    until = (utcnow() + timedelta(hours=1)).isoformat()
    handling = {"tlp": "green", "audience": "community", "embargo_until": until}
    alert = await post_alert(client, world["KE"], seizure_body(handling=handling))
    await _patch(client, world["KE"], alert, {"handling": {**handling, "embargo_until": None}})
    await _drain(db, settings)
    assert [e["type"] for e in receiver.events()] == ["alert.published", "alert.updated"]


async def test_embargo_extended_defers_the_message_rather_than_drop_it(
    client, db, settings, world, receiver
):
    await _subscribe(client, world["DE_admin"].headers, receiver)
    alert = await post_alert(client, world["KE"], seizure_body(handling=_embargoed()))
    longer = utcnow() + timedelta(seconds=EMBARGO * 2)
    await _patch(
        client,
        world["KE"],
        alert,
        {
            "handling": {
                "tlp": "green",
                "audience": "community",
                "embargo_until": longer.isoformat(),
            }
        },
    )
    await asyncio.sleep(EMBARGO + 0.2)
    await _run_once(db, settings)  # the first embargo has ended, the second has not
    assert receiver.received == []
    published, _ = await _deliveries(db)
    assert published.status == "pending" and published.next_attempt_at == longer
    await asyncio.sleep(max(0.0, (longer - utcnow()).total_seconds()) + 0.2)
    await _drain(db, settings)
    assert [e["type"] for e in receiver.events()] == ["alert.published", "alert.updated"]


# --- who manages a subscription -----------------------------------------------------------


async def _client_actor(client, db, agency, scopes: str) -> tuple[ApiClient, dict]:
    api_client, secret = await make_client(db, agency, scopes)
    tokens = await client_login(client, api_client.id, secret)
    return api_client, bearer(tokens["access_token"])


async def test_a_client_that_may_not_read_alerts_subscribes_to_references_only(
    client, db, settings, world, receiver
):
    _, headers = await _client_actor(client, db, world["DE"].agency, "webhooks:manage")
    sub = await _subscribe(client, headers, receiver)
    assert (sub["managed_by_kind"], sub["status"]) == ("client", "active")
    await post_alert(client, world["KE"], seizure_body(title="C secret title"))
    await _drain(db, settings)
    (event,) = receiver.events()
    assert set(event["data"]["alert"]) == REFERENCE
    assert b"C secret" not in _raw(receiver)
    replay = await client.post(
        f"/api/v1/subscriptions/{sub['id']}/replay",
        json={"since": "2000-01-01T00:00:00Z"},
        headers=headers,
    )
    assert replay.json() == {"queued": 1}
    await _drain(db, settings)
    assert b"C secret" not in _raw(receiver)


async def test_content_follows_the_managers_right_at_send_time(
    client, db, settings, world, receiver
):
    reader, headers = await _client_actor(
        client, db, world["DE"].agency, "webhooks:manage alerts:read"
    )
    await _subscribe(client, headers, receiver)
    await post_alert(client, world["KE"], seizure_body(title="First"))
    await _drain(db, settings)
    assert receiver.events()[-1]["data"]["alert"]["title"] == "First"
    # The client is revoked: its subscription keeps running, with references only.
    async with db.session() as session:
        await session.exec(
            sa.update(ApiClient).where(ApiClient.id == reader.id).values(revoked_at=utcnow())
        )
        await session.commit()
    await post_alert(client, world["KE"], seizure_body(title="Second secret"))
    await _drain(db, settings)
    assert set(receiver.events()[-1]["data"]["alert"]) == REFERENCE
    assert b"Second secret" not in _raw(receiver)


async def test_a_new_url_needs_a_new_secret_and_takes_no_history(
    client, db, settings, world, receiver
):
    admin = world["DE_admin"].headers
    sub = await _subscribe(client, admin, receiver, url=receiver.url + "?old")
    old_secret = sub["secret"]
    await post_alert(client, world["KE"], seizure_body(title="H secret title"))
    await _drain(db, settings)
    (sent,) = await _deliveries(db)
    await post_alert(client, world["KE"], seizure_body(title="Queued for the old URL"))
    _, headers = await _client_actor(client, db, world["DE"].agency, "webhooks:manage")
    moved = await client.patch(
        f"/api/v1/subscriptions/{sub['id']}", json={"url": receiver.url + "?new"}, headers=headers
    )
    assert moved.status_code == 200, moved.text
    new_secret = moved.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    assert moved.json()["managed_by_kind"] == "client"
    remember(new_secret)
    receiver.secret = new_secret
    unchanged = await client.patch(
        f"/api/v1/subscriptions/{sub['id']}", json={"description": "x"}, headers=headers
    )
    assert unchanged.json()["secret"] is None  # shown once, only when the URL changes
    _, queued = await _deliveries(db)
    assert (
        queued.status == "cancelled"
        and queued.last_error == "the subscription moved to another URL"
    )
    replay = await client.post(
        f"/api/v1/subscriptions/{sub['id']}/replay",
        json={"since": "2000-01-01T00:00:00Z"},
        headers=headers,
    )
    assert replay.json() == {"queued": 0}
    retry = await client.post(f"/api/v1/deliveries/{sent.id}/retry", headers=headers)
    assert retry.status_code == 409
    seen = len(receiver.received)
    await post_alert(client, world["KE"], seizure_body(title="N secret title"))
    await _drain(db, settings)
    after = receiver.received[seen:]
    assert [r.target for r in after] == ["/hook?new"]
    assert set(after[0].verified["data"]["alert"]) == REFERENCE  # the client may not read
    with pytest.raises(WebhookVerificationError):
        Webhook(old_secret).verify(after[0].body, after[0].headers)
    assert b"H secret" not in b"".join(r.body for r in after)


# --- the allow-list and the delivery log --------------------------------------------------


async def test_an_allow_listed_host_is_reachable_on_its_port_only(
    client, db, settings, world, receiver
):
    inside = Receiver()  # another service on the same host, e.g. the API itself
    await inside.start()
    try:
        await _subscribe(client, world["DE_admin"].headers, receiver, url=inside.url)
        await post_alert(client, world["KE"], seizure_body())
        await _run_once(db, settings)
    finally:
        await inside.stop()
    assert inside.received == []
    (delivery,) = await _deliveries(db)
    assert delivery.last_error.startswith("refused") and delivery.last_response is None


async def test_the_log_keeps_nothing_of_an_answer_from_a_non_public_address(
    client, db, settings, world, receiver
):
    await _subscribe(client, world["DE_admin"].headers, receiver)
    receiver.answer = b'{"email": "admin@inside.example", "role": "platform_admin"}' * 20
    await post_alert(client, world["KE"], seizure_body())
    await _drain(db, settings)
    (delivery,) = await _deliveries(db)
    assert (delivery.status, delivery.last_status_code) == ("delivered", 200)
    assert delivery.last_response is None
    async with db.session() as session:
        attempts = (await session.exec(select(DeliveryAttempt))).all()
    assert [(a.status_code, a.response_excerpt) for a in attempts] == [(200, None)]


def test_the_log_keeps_at_most_256_bytes_of_a_public_answer():
    from app.webhooks.delivery.sender import excerpt

    assert excerpt(b"x" * 5000, public=True) == "x" * 256
    cut = excerpt(b"x" * 255 + "é".encode(), public=True)  # a character split at the cut
    assert cut == "x" * 255 and len(cut.encode()) <= 256
    assert excerpt(b"short", public=True) == "short"
    assert excerpt(b"short", public=False) is None


async def test_the_delivery_log_never_tells_of_an_alert_the_agency_may_not_see(
    client, db, settings, world, receiver
):
    """A message waiting for an embargo, or cancelled because the agency may no longer
    see its alert, is not in the agency's log, cannot be retried, is not replayed; once
    the alert is released it is there."""
    sub = await _subscribe(client, world["JO_admin"].headers, receiver)
    log = f"/api/v1/subscriptions/{sub['id']}/deliveries"
    de, jo = str(world["DE"].agency.id), str(world["JO"].agency.id)
    to_both = _embargoed(tlp="amber", audience="recipients", recipient_agencies=[de, jo])
    waiting = await post_alert(client, world["KE"], seizure_body(handling=to_both))
    dropped = await post_alert(client, world["KE"], seizure_body(handling=to_both))
    only_de = {"handling": {**to_both, "recipient_agencies": [de]}}
    await _patch(client, world["KE"], dropped, only_de)

    listed = await client.get(log, headers=world["JO_admin"].headers)
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    for alert in (waiting, dropped):
        assert alert["id"] not in listed.text
    queued = {d.alert_id: d for d in await _deliveries(db)}
    assert set(queued) == {uuid.UUID(waiting["id"]), uuid.UUID(dropped["id"])}

    await _after_embargo(db, settings)
    cancelled = queued[uuid.UUID(dropped["id"])]
    retried = await client.post(
        f"/api/v1/deliveries/{cancelled.id}/retry", headers=world["JO_admin"].headers
    )
    assert retried.status_code == 404
    replayed = await client.post(
        f"/api/v1/subscriptions/{sub['id']}/replay",
        json={"since": "2020-01-01T00:00:00Z"},
        headers=world["JO_admin"].headers,
    )
    assert replayed.status_code == 200, replayed.text
    listed = await client.get(log, headers=world["JO_admin"].headers)
    shown = {item["alert_id"] for item in listed.json()["items"]}
    assert shown == {waiting["id"]} and dropped["id"] not in listed.text


# --- hit notices --------------------------------------------------------------------------

MATCHING = {"category": "small_arm", "make": "Kalashnikov Concern", "calibre": "7.62x39mm"}


def _serialised(serial: str) -> dict:
    return seizure_body(items=[{**MATCHING, "serial_raw": serial}])


@pytest.mark.parametrize(("remarked", "told"), [("red", None), ("amber", "candidate")])
async def test_a_hit_notice_says_what_the_agency_may_learn_when_it_is_sent(
    client, db, settings, world, receiver, remarked, told
):
    """Queued as `strong` while Germany could see the Kenyan record; re-marked before it
    is sent: red keeps the hit blind to Germany (no notice), amber to Jordan alone leaves
    Germany the uniform tier."""
    await _subscribe(client, world["DE_admin"].headers, receiver, event_types=["hit.created"])
    kenyan = await post_alert(client, world["KE"], _serialised("HN-4711"))
    await post_alert(client, world["DE"], _serialised("HN-4711"))
    jo = str(world["JO"].agency.id)
    handling = {"tlp": remarked, "audience": "recipients", "recipient_agencies": [jo]}
    await _patch(client, world["KE"], kenyan, {"handling": handling})
    await _drain(db, settings)
    shown = (await client.get("/api/v1/hits", headers=world["DE"].headers)).json()["items"]
    if told is None:
        assert receiver.received == [] and shown == []
    else:
        (event,) = receiver.events()
        assert event["data"]["tier"] == told == shown[0]["tier"]
        assert event["data"]["hit_id"] == shown[0]["id"]


async def test_a_subscription_that_may_not_read_hits_gets_no_hit_notice(
    client, db, settings, world, receiver
):
    _, headers = await _client_actor(client, db, world["DE"].agency, "webhooks:manage")
    await _subscribe(client, headers, receiver, event_types=["hit.created"])
    await post_alert(client, world["KE"], _serialised("HN-4712"))
    await post_alert(client, world["DE"], _serialised("HN-4712"))
    await _drain(db, settings)
    assert receiver.received == []
    (delivery,) = [d for d in await _deliveries(db) if d.event_type == "hit.created"]
    assert delivery.status == "cancelled"
