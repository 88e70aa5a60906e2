"""The transactional outbox: one delivery row per subscription that may receive an event.

Rows are written in the transaction of the change, so a delivery exists exactly when
the change committed. Who receives what is the sharing predicate of app/sharing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus
from app.alerts.models import TLP_ORDER, Alert, AlertStatus, Tlp
from app.core.types import new_id, utcnow
from app.events.models import Event
from app.sharing import service as sharing
from app.sharing import visibility
from app.sharing.visibility import AlertFacts
from app.webhooks.models import Delivery, DeliveryStatus, Subscription, SubscriptionStatus

NOTIFY_CHANNEL = "tracewire_deliveries"


def wants(sub: Subscription, event_type: str, alert: Alert | None) -> bool:
    """The subscription's own filters: event types, kinds, countries, maximum TLP."""
    if sub.event_types and event_type not in sub.event_types:
        return False
    if alert is None:
        return True
    if sub.kinds and alert.kind not in sub.kinds:
        return False
    if sub.countries and alert.country not in sub.countries:
        return False
    return not (sub.max_tlp and TLP_ORDER[Tlp(alert.tlp)] > TLP_ORDER[Tlp(sub.max_tlp)])


async def count_receiving(
    session: AsyncSession, agency_id: uuid.UUID, event_type: str, alert: Alert
) -> int:
    """How many of an agency's live subscriptions want this event (preview-audience)."""
    subs = (
        await session.exec(
            select(Subscription).where(
                Subscription.agency_id == agency_id,
                Subscription.status == SubscriptionStatus.active.value,
                col(Subscription.deleted_at).is_(None),
            )
        )
    ).all()
    return sum(1 for sub in subs if wants(sub, event_type, alert))


@dataclass(frozen=True)
class Reach:
    """What the sharing rule needs about one alert, loaded once for all its subscriptions."""

    facts: AlertFacts
    live_group_members: Mapping[uuid.UUID, frozenset[uuid.UUID]]


async def reach_of(session: AsyncSession, alert: Alert) -> Reach:
    """The alert's sharing facts and the current members of its recipient groups."""
    facts = await sharing.facts_of(session, alert)
    return Reach(facts, await sharing.live_group_members(session, facts.recipient_groups))


def may_receive(reach: Reach, agency: Agency, at: datetime) -> bool:
    """The sharing rule, as of `at`, for a subscription's agency."""
    return visibility.can_see(
        reach.facts,
        agency.id,
        agency_active=agency.status == AgencyStatus.active,
        live_group_members=reach.live_group_members,
        now=at,
    )


def payload(event: Event, alert: Alert | None, base_url: str) -> dict[str, Any]:
    """`{type, timestamp, data}`; a `red` alert travels as a reference, never content."""
    data: dict[str, Any] = dict(event.data)
    if alert is not None:
        reference = {
            "id": str(alert.id),
            "kind": alert.kind,
            "tlp": alert.tlp,
            "status": alert.status,
            "version": alert.version,
            "url": f"{base_url}/api/v1/alerts/{alert.id}",
        }
        if alert.tlp == Tlp.red or alert.status == AlertStatus.withdrawn:
            data["alert"] = reference
        else:
            data["alert"] = reference | {
                "title": alert.title,
                "summary": alert.summary,
                "country": alert.country,
                "occurred_at": alert.occurred_at.isoformat() if alert.occurred_at else None,
                "tags": alert.tags,
                "originator_agency_id": str(alert.originator_agency_id),
                "details": alert.details,
            }
    return {"type": event.type, "timestamp": event.created_at.isoformat(), "data": data}


async def fan_out(session: AsyncSession, event: Event, *, base_url: str) -> int:
    """Write the deliveries of `event`; returns how many."""
    subs = (
        await session.exec(
            select(Subscription, Agency)
            .join(Agency, col(Agency.id) == col(Subscription.agency_id))
            .where(
                Subscription.status == SubscriptionStatus.active.value,
                col(Subscription.deleted_at).is_(None),
            )
        )
    ).all()
    if not subs:
        return 0
    alert = await session.get(Alert, event.alert_id) if event.alert_id else None
    now = utcnow()
    # An embargoed alert's deliveries fall due when the embargo ends, not before.
    due = max(now, alert.embargo_until) if alert and alert.embargo_until else now
    body = payload(event, alert, base_url)
    reach = await reach_of(session, alert) if alert is not None else None
    rows: list[dict[str, Any]] = []
    for sub, agency in subs:
        if event.agency_ids and sub.agency_id not in event.agency_ids:
            continue
        if agency.status != AgencyStatus.active or not wants(sub, event.type, alert):
            continue
        if reach is not None and not may_receive(reach, agency, due):
            continue
        rows.append(
            {
                "id": new_id(),
                "subscription_id": sub.id,
                "event_id": event.id,
                "event_type": event.type,
                "alert_id": alert.id if alert else None,
                "payload": body,
                "status": DeliveryStatus.pending.value,
                "attempts": 0,
                "next_attempt_at": due,
                "created_at": now,
            }
        )
    if rows:
        # One multi-row INSERT, not ten ORM objects through the unit of work: the ORM
        # path was a quarter of an alert's CPU time (bench/RESULTS.md, ingest).
        await session.exec(sa.insert(Delivery), params=rows)  # type: ignore[call-overload]
        await notify(session)
    return len(rows)


async def notify(session: AsyncSession) -> None:
    """Wake the workers (PostgreSQL delivers the NOTIFY when the transaction commits)."""
    if session.bind.dialect.name == "postgresql":
        await session.exec(text(f"NOTIFY {NOTIFY_CHANNEL}"))  # type: ignore[call-overload]


def new_delivery_like(delivery: Delivery) -> Delivery:
    """A fresh delivery of the same message (replay): a new `webhook-id`, the same body."""
    return Delivery(
        id=uuid.uuid4(),
        subscription_id=delivery.subscription_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        alert_id=delivery.alert_id,
        payload=delivery.payload,
    )
