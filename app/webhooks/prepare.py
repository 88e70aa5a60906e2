"""Just before sending: which claimed deliveries go out now, and what each one carries.

Each claimed delivery is judged on the state of things *now*: its subscription (still
live, still at the URL the message was queued for, still wanting it), its alert (still
visible to the subscription's agency, and in which form, through app/sharing/render.py)
and the other messages about the same alert to the same subscription, which go out in
order. A delivery that may not go out now is cancelled with the reason, deferred to
the end of an embargo, or put back to wait for the message ahead of it.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus
from app.alerts.models import Alert
from app.authz.principal import Principal
from app.events.models import EventType
from app.hits import read as hit_read
from app.sharing import render
from app.webhooks import outbox
from app.webhooks.models import Delivery, DeliveryStatus, Subscription, SubscriptionStatus

log = logging.getLogger("tracewire.webhooks")

MOVED = "the subscription moved to another URL"
OPEN = (DeliveryStatus.pending, DeliveryStatus.delivering)
_EARLIEST = datetime.min.replace(tzinfo=UTC)

Stream = tuple[uuid.UUID, uuid.UUID, int]  # subscription, alert, URL epoch


@dataclass(frozen=True)
class Ready:
    """A delivery that goes out now, with the body rendered for it."""

    delivery: Delivery
    subscription: Subscription
    body: bytes


@dataclass(frozen=True)
class _Hold:
    """Not now: cancelled (`reason`), or pending again from `until`."""

    reason: str | None = None
    until: datetime | None = None


def order_key(delivery: Delivery) -> tuple[datetime, int, datetime, uuid.UUID]:
    """The order of one alert's messages to one subscription.

    The alert's version first (each change bumps it, so the order holds whatever the
    clocks of the processes that wrote the rows); a replay comes after every original,
    in the originals' order.
    """
    return (
        delivery.replayed_at or _EARLIEST,
        delivery.alert_version or 0,
        delivery.created_at,
        delivery.id,
    )


def stream_of(delivery: Delivery) -> Stream | None:
    """The (subscription, alert, URL epoch) a delivery belongs to; None without an alert."""
    if delivery.alert_id is None:
        return None
    return (delivery.subscription_id, delivery.alert_id, delivery.url_epoch)


async def prepare(
    session: AsyncSession,
    ids: Sequence[uuid.UUID],
    *,
    worker: str,
    now: datetime,
    base_url: str,
    poll_seconds: float,
) -> list[Ready]:
    """Judge the deliveries `worker` claimed; cancel, defer or hold back those not to send."""
    rows = (
        await session.exec(
            select(Delivery, Subscription, Agency)
            .outerjoin(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
            .outerjoin(Agency, col(Agency.id) == col(Subscription.agency_id))
            .where(col(Delivery.id).in_(ids))
        )
    ).all()
    mine = sorted(
        (row for row in rows if row[0].claimed_by == worker), key=lambda row: order_key(row[0])
    )
    alert_ids = {d.alert_id for d, _, _ in mine if d.alert_id is not None}
    alerts = {
        a.id: a
        for a in (await session.exec(select(Alert).where(col(Alert.id).in_(alert_ids)))).all()
    }
    streams = await _streams(session, [d for d, _, _ in mine])
    found = await render.managers(
        session, [(s.managed_by_kind, s.managed_by_id) for _, s, _ in mine if s is not None]
    )
    reaches: dict[uuid.UUID, render.Reach] = {}
    ready: list[Ready] = []
    sending: set[uuid.UUID] = set()
    for delivery, sub, agency in mine:
        if sub is None or agency is None:
            _apply(delivery, _Hold(reason="subscription deleted"))
            continue
        alert = alerts.get(delivery.alert_id) if delivery.alert_id else None
        if alert is not None and alert.id not in reaches:
            reaches[alert.id] = await render.reach_of(session, alert)
        manager = (
            found.get((sub.managed_by_kind, sub.managed_by_id))
            if sub.managed_by_kind and sub.managed_by_id
            else None
        )
        reader = render.subscriber(sub.agency_id, manager)
        outcome = _judge(
            delivery,
            sub,
            agency,
            alert,
            reaches.get(alert.id) if alert else None,
            reader,
            streams.get(stream) if (stream := stream_of(delivery)) else None,
            sending,
            now=now,
            base_url=base_url,
            poll_seconds=poll_seconds,
        )
        if not isinstance(outcome, _Hold) and delivery.event_type == EventType.hit_created:
            outcome = await _hit_notice(session, delivery, reader)
        if isinstance(outcome, _Hold):
            _apply(delivery, outcome)
            continue
        sending.add(delivery.id)
        ready.append(Ready(delivery, sub, outcome))
    return ready


async def _streams(
    session: AsyncSession, deliveries: Sequence[Delivery]
) -> dict[Stream, list[Delivery]]:
    """The open and delivered messages of the streams the claimed deliveries belong to."""
    with_alert = [d for d in deliveries if d.alert_id is not None]
    if not with_alert:
        return {}
    # In the same session: the claimed rows come back as the same objects, so a
    # decision taken earlier in this pass is seen by the messages behind it.
    mates = (
        await session.exec(
            select(Delivery).where(
                col(Delivery.alert_id).in_({d.alert_id for d in with_alert}),
                col(Delivery.subscription_id).in_({d.subscription_id for d in with_alert}),
                col(Delivery.status).in_([*OPEN, DeliveryStatus.delivered]),
            )
        )
    ).all()
    out: dict[Stream, list[Delivery]] = {}
    for mate in mates:
        key = stream_of(mate)
        if key is not None:
            out.setdefault(key, []).append(mate)
    return out


def _judge(
    delivery: Delivery,
    sub: Subscription,
    agency: Agency,
    alert: Alert | None,
    reach: render.Reach | None,
    reader: Principal,
    mates: list[Delivery] | None,
    sending: set[uuid.UUID],
    *,
    now: datetime,
    base_url: str,
    poll_seconds: float,
) -> bytes | _Hold:
    """The body to send now, or why not."""
    stopped = _receiver_stopped(delivery, sub, agency)
    if stopped is not None:
        return _Hold(reason=stopped)
    envelope = outbox.stored_envelope(delivery)
    if delivery.alert_id is None:
        return _encode(envelope)
    if alert is None or reach is None:
        return _Hold(reason="access withdrawn before sending")
    if not outbox.wants(sub, delivery.event_type, alert):
        return _Hold(reason="no longer matches the subscription's filters")
    verdict = render.for_delivery(alert, reach, agency, reader, now=now, base_url=base_url)
    if verdict.refused is not None:
        return _Hold(reason=verdict.refused)
    if verdict.defer_until is not None:
        return _Hold(until=verdict.defer_until)
    waiting = _out_of_turn(delivery, mates or [], sending, now, poll_seconds)
    if waiting is not None:
        return waiting
    data = dict(envelope["data"])
    data.pop("version", None)  # the event's version; the alert block says what is current
    data["alert"] = verdict.body
    return _encode({**envelope, "data": data})


def _receiver_stopped(delivery: Delivery, sub: Subscription, agency: Agency) -> str | None:
    """Why nothing may go to this subscription's URL now, or None."""
    if sub.deleted_at is not None:
        return "subscription deleted"
    if sub.status != SubscriptionStatus.active or agency.status != AgencyStatus.active:
        return "subscription or agency inactive"
    if delivery.url_epoch != sub.url_epoch:
        return MOVED
    return None


def _out_of_turn(
    delivery: Delivery,
    mates: list[Delivery],
    sending: set[uuid.UUID],
    now: datetime,
    poll_seconds: float,
) -> _Hold | None:
    """Hold a message that would overtake, or arrive after, another about the same alert."""
    key = order_key(delivery)
    others = [m for m in mates if m.id != delivery.id]
    if any(m.status == DeliveryStatus.delivered and order_key(m) > key for m in others):
        # A later message went out first (a manual retry raced it): this one would
        # arrive out of order; the later one already carried the current state.
        return _Hold(reason="superseded by a later delivery about this alert")
    ahead = [m for m in others if m.status in OPEN and order_key(m) < key]
    if ahead:
        return _Hold(until=_when_free(min(ahead, key=order_key), sending, now, poll_seconds))
    return None


async def _hit_notice(
    session: AsyncSession, delivery: Delivery, reader: Principal
) -> bytes | _Hold:
    """A `hit.created` as the subscription's agency may learn of the hit now (the tier it
    is shown), or cancelled when it may no longer know of it."""
    envelope = outbox.stored_envelope(delivery)
    try:
        hit_id = uuid.UUID(str(envelope["data"]["hit_id"]))
    except (KeyError, TypeError, ValueError):
        return _Hold(reason="access withdrawn before sending")
    data = await hit_read.notice_for(session, reader, hit_id)
    if data is None:
        return _Hold(reason="access withdrawn before sending")
    return _encode({**envelope, "data": data})


def _when_free(
    head: Delivery, sending: set[uuid.UUID], now: datetime, poll_seconds: float
) -> datetime:
    """When to look again at a message waiting behind `head`."""
    if head.id in sending:
        return now  # this worker sends it now; the next pass takes the one behind
    if head.status == DeliveryStatus.pending:
        return max(now, head.next_attempt_at)
    return now + timedelta(seconds=poll_seconds)  # in flight at another worker


def _apply(delivery: Delivery, hold: _Hold) -> None:
    delivery.claimed_until = None
    if hold.reason is not None:
        delivery.status = DeliveryStatus.cancelled
        delivery.last_error = hold.reason
        log.info("delivery cancelled", extra={"delivery_id": str(delivery.id), "why": hold.reason})
        return
    delivery.status = DeliveryStatus.pending
    if hold.until is not None:
        delivery.next_attempt_at = hold.until


def _encode(body: dict[str, object]) -> bytes:
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
