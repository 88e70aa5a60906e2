"""The transactional outbox: one delivery row per subscription that may receive an event.

Rows are written in the transaction of the change, so a delivery exists exactly when
the change committed. Who receives what is the sharing predicate of app/sharing; what
an alert delivery carries is decided only when it is sent (app/sharing/render.py), so a
row holds the event's envelope, never the alert's content.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus
from app.alerts import children
from app.alerts.models import Alert
from app.core.columns import table_of
from app.core.types import new_id, utcnow
from app.events import service as events
from app.events.models import Event, EventType
from app.sharing import membership, render
from app.sharing.handling import TLP_ORDER, AlertFacts, Tlp
from app.webhooks.models import Delivery, DeliveryStatus, Subscription, SubscriptionStatus

NOTIFY_CHANNEL = "tracewire_deliveries"
_DELIVERIES = table_of(Delivery)


def subscribe() -> None:
    """Register the outbox with the event log; every process that records events calls this."""
    events.subscribe("webhooks", on_events_recorded)


async def on_events_recorded(session: AsyncSession, recorded: Sequence[Event]) -> events.Written:
    """The webhooks' subscriber: the events' deliveries, written with them."""
    return await fan_out(session, recorded)


def wants(sub: Subscription | Receiver, event_type: EventType, alert: Alert | None) -> bool:
    """The subscription's own filters: event types, kinds, countries, maximum TLP."""
    if sub.event_types and event_type not in sub.event_types:
        return False
    if alert is None:
        return True
    if sub.kinds and alert.kind not in sub.kinds:
        return False
    if sub.countries and alert.country not in sub.countries:
        return False
    return not (sub.max_tlp and TLP_ORDER[alert.tlp] > TLP_ORDER[sub.max_tlp])


async def count_receiving(session: AsyncSession, agency_id: uuid.UUID, alert: Alert) -> int:
    """How many of an agency's live subscriptions would receive `alert`'s publication (the
    alerts' audience preview, through app/alerts/lifecycle.py)."""
    subs = (
        await session.exec(
            select(Subscription).where(
                Subscription.agency_id == agency_id,
                Subscription.status == SubscriptionStatus.active,
                col(Subscription.deleted_at).is_(None),
            )
        )
    ).all()
    return sum(1 for sub in subs if wants(sub, EventType.alert_published, alert))


def envelope(event: Event) -> dict[str, Any]:
    """`{type, timestamp, data}` as stored: an alert's block is added only when sent."""
    return {"type": event.type, "timestamp": event.created_at.isoformat(), "data": event.data}


@dataclass(frozen=True)
class Receiver:
    """A live subscription as the fan-out reads it: its filters and its agency's state."""

    id: uuid.UUID
    agency_id: uuid.UUID
    url_epoch: int
    event_types: list[str]
    kinds: list[str]
    countries: list[str]
    max_tlp: Tlp | None
    agency_active: bool


_RECEIVERS = (
    sa.select(
        col(Subscription.id),
        col(Subscription.agency_id),
        col(Subscription.url_epoch),
        col(Subscription.event_types),
        col(Subscription.kinds),
        col(Subscription.countries),
        col(Subscription.max_tlp),
        col(Agency.status),
    )
    .join(Agency, col(Agency.id) == col(Subscription.agency_id))
    .where(
        col(Subscription.status) == SubscriptionStatus.active,
        col(Subscription.deleted_at).is_(None),
    )
)


async def receivers(session: AsyncSession) -> list[Receiver]:
    """Every live subscription, as plain rows. Read again for every event, a batch's too
    (never from app/core/memo.py): a subscription or group member another transaction
    commits while a batch runs receives the batch's later alerts."""
    rows = await (await session.connection()).execute(_RECEIVERS)
    return [Receiver(*row[:7], agency_active=row[7] == AgencyStatus.active) for row in rows]


async def fan_out(session: AsyncSession, recorded: Sequence[Event]) -> events.Written:
    """The delivery rows of events (one change's, or a batch's; the live subscriptions
    read once), written in the events' own statement, which on PostgreSQL also wakes the
    workers (`pg_notify`, delivered at commit); SQLite's workers poll."""
    subs = await receivers(session)
    if not subs:
        return events.Written()
    now = utcnow()
    members = await _members_named(session, recorded)
    rows: list[dict[str, Any]] = []
    for event in recorded:
        rows += await _deliveries(session, event, subs, now, members)
    if not rows:
        return events.Written()
    return events.Written([(_DELIVERIES, rows)], then=f"pg_notify('{NOTIFY_CHANNEL}', '')")


async def _deliveries(
    session: AsyncSession,
    event: Event,
    subs: list[Receiver],
    now: datetime,
    members: Mapping[uuid.UUID, frozenset[uuid.UUID]],
) -> list[dict[str, Any]]:
    """The delivery rows of one event: a row per live subscription that may receive it."""
    alert = await session.get(Alert, event.alert_id) if event.alert_id else None
    # An embargoed alert's deliveries fall due when the embargo ends, not before.
    due = max(now, alert.embargo_until) if alert and alert.embargo_until else now
    body = envelope(event)
    reach = await _reach(session, alert, members) if alert is not None else None
    version = _event_version(event, alert)
    rows: list[dict[str, Any]] = []
    for sub in subs:
        if event.agency_ids and sub.agency_id not in event.agency_ids:
            continue
        if not sub.agency_active or not wants(sub, event.type, alert):
            continue
        if reach is not None and not render.may_see_agency(
            reach, sub.agency_id, active=sub.agency_active, at=due
        ):
            continue
        rows.append(
            {
                "id": new_id(),
                "subscription_id": sub.id,
                "event_id": event.id,
                "event_type": event.type,
                "alert_id": alert.id if alert else None,
                "alert_version": version,
                "url_epoch": sub.url_epoch,
                "payload": body,
                "status": DeliveryStatus.pending,
                "attempts": 0,
                "next_attempt_at": due,
                "created_at": now,
            }
        )
    if alert is not None and event.type == EventType.alert_updated:
        await _pull_forward(session, alert.id, due)
    return rows


async def notify(session: AsyncSession) -> None:
    """Wake the workers (PostgreSQL delivers the NOTIFY when the transaction commits)."""
    if session.get_bind().dialect.name == "postgresql":
        await (await session.connection()).execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


async def _members_named(
    session: AsyncSession, recorded: Sequence[Event]
) -> Mapping[uuid.UUID, frozenset[uuid.UUID]]:
    """The current members of every group that the events' alerts name in rows this
    transaction wrote (a post or a change; a batch's alerts together), in one read."""
    groups: set[uuid.UUID] = set()
    for event in recorded:
        written = children.written_recipients(session, event.alert_id) if event.alert_id else None
        if written is not None:
            groups.update(written[1])
    return await membership.live_group_members(session, groups)


async def _reach(
    session: AsyncSession, alert: Alert, members: Mapping[uuid.UUID, frozenset[uuid.UUID]]
) -> render.Reach:
    """The alert's sharing facts: from the recipient rows this transaction just wrote, when
    it wrote them (their groups' members read with the others', `_members_named`), else
    as stored."""
    written = children.written_recipients(session, alert.id)
    if written is None:
        return await render.reach_of(session, alert)
    facts = AlertFacts.of(alert, *written)
    named = {g: members[g] for g in facts.recipient_groups if g in members}
    return render.Reach(facts, named)


def _event_version(event: Event, alert: Alert | None) -> int | None:
    """The alert's version the event was written at (alert events name it)."""
    if alert is None:
        return None
    named = event.data.get("version")
    return named if isinstance(named, int) else alert.version


async def _pull_forward(session: AsyncSession, alert_id: uuid.UUID, due: datetime) -> None:
    """The embargo was lifted or shortened: waiting messages about the alert fall due now."""
    await session.exec(
        sa.update(Delivery)
        .where(
            col(Delivery.alert_id) == alert_id,
            col(Delivery.status) == DeliveryStatus.pending,
            col(Delivery.attempts) == 0,
            col(Delivery.next_attempt_at) > due,
        )
        .values(next_attempt_at=due)
    )


def stored_envelope(delivery: Delivery) -> dict[str, Any]:
    """A delivery's envelope, without the alert block that rows of older versions hold."""
    data = dict(delivery.payload.get("data") or {})
    data.pop("alert", None)
    return {**delivery.payload, "data": data}


def new_delivery_like(
    delivery: Delivery, *, replayed_at: datetime, created_at: datetime
) -> Delivery:
    """A fresh delivery of the same message (replay): a new `webhook-id`, rendered when sent."""
    return Delivery(
        id=uuid.uuid4(),
        subscription_id=delivery.subscription_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        alert_id=delivery.alert_id,
        alert_version=delivery.alert_version,
        url_epoch=delivery.url_epoch,
        replayed_at=replayed_at,
        created_at=created_at,
        next_attempt_at=created_at,
        payload=stored_envelope(delivery),
    )
