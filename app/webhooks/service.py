"""Webhook subscriptions and their delivery log: create, change, rotate, ping, retry, replay."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts.models import Alert
from app.audit import service as audit
from app.authz import rights
from app.authz.principal import Principal
from app.core import concurrency, patch
from app.core.config import Settings
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.pagination import keyset_page
from app.core.types import utcnow
from app.events import service as events
from app.events.models import EventType
from app.sharing import render
from app.webhooks import outbox, prepare, ssrf
from app.webhooks.models import Delivery, DeliveryStatus, Subscription, SubscriptionStatus
from app.webhooks.schemas import SubscriptionCreate, SubscriptionUpdate
from app.webhooks.signing import new_webhook_secret


def check_url(url: str, settings: Settings) -> str:
    """The URL's own rules (scheme, https outside dev, no userinfo); 422 naming `url`."""
    try:
        ssrf.check_url_syntax(url, require_https=settings.webhooks_need_https)
    except ssrf.UrlRefused as exc:
        raise InvalidInput.on("url", str(exc)) from exc
    return url


async def create(
    session: AsyncSession, principal: Principal, data: SubscriptionCreate, settings: Settings
) -> tuple[Subscription, str]:
    """A new subscription for the principal's agency; its secret is returned once."""
    rights.require_webhook_manager(principal)
    secret = new_webhook_secret()
    sub = Subscription(
        agency_id=principal.agency_id,
        url=check_url(data.url, settings),
        description=data.description,
        event_types=[e.value for e in data.event_types],
        kinds=[k.value for k in data.kinds],
        countries=list(data.countries),
        max_tlp=data.max_tlp,
        secret=secret,
    )
    _managed_by(sub, principal)
    session.add(sub)
    await session.flush()
    await audit.record(
        session, principal, "subscription.create", object_type="subscription", object_id=sub.id
    )
    return sub, secret


async def get(
    session: AsyncSession, principal: Principal, sub_id: uuid.UUID, *, for_change: bool = False
) -> Subscription:
    """A live subscription of the principal's agency, or 404 (`for_change`: locked)."""
    rights.require_webhook_manager(principal)
    if for_change:
        sub = await concurrency.get_for_change(session, Subscription, sub_id)
    else:
        sub = await session.get(Subscription, sub_id)
    if sub is None or sub.deleted_at is not None or not rights.owns(principal, sub.agency_id):
        raise NotFound("No such subscription.")
    return sub


async def list_subscriptions(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[Sequence[Subscription], str | None]:
    """The agency's live subscriptions, oldest first."""
    rights.require_webhook_manager(principal)
    query = select(Subscription).where(
        rights.own_agency_filter(Subscription.agency_id, principal),
        col(Subscription.deleted_at).is_(None),
    )
    return await keyset_page(session, query, Subscription, limit=limit, cursor=cursor)


async def update(
    session: AsyncSession,
    principal: Principal,
    sub_id: uuid.UUID,
    data: SubscriptionUpdate,
    settings: Settings,
    *,
    if_match: str | None = None,
) -> tuple[Subscription, str | None]:
    """Change the URL, filters or status (re-enabling resets the failure count).

    A new URL is a new endpoint: it gets a fresh secret (returned once, no overlap) and
    none of the old URL's messages, queued or past (no retry, no replay).
    """
    sub = await get(session, principal, sub_id, for_change=True)
    concurrency.check_version(sub.version, if_match, required=False, what="subscription")
    changes = patch.changes_of(data, not_null=("url",))
    secret: str | None = None
    if "url" in changes:
        check_url(changes["url"], settings)
        if changes["url"] != sub.url:
            secret = await _move(session, sub)
    if changes.get("status") == SubscriptionStatus.active:
        sub.consecutive_failures = 0
        sub.disabled_reason = None
    for field in ("event_types", "kinds", "countries"):
        if field in changes:  # lists of plain strings (JSON); null clears the filter
            changes[field] = [str(v) for v in changes[field] or []]
    patch.apply_changes(sub, changes)
    _managed_by(sub, principal)
    concurrency.bump(sub)
    session.add(sub)
    await session.flush()
    await audit.record(
        session,
        principal,
        "subscription.update",
        object_type="subscription",
        object_id=sub.id,
        details={"fields": sorted(changes), "new_secret": secret is not None},
    )
    return sub, secret


def _managed_by(sub: Subscription, principal: Principal) -> None:
    """Whoever creates or changes a subscription manages it: its content right is theirs."""
    sub.managed_by_kind = principal.kind
    sub.managed_by_id = principal.id


async def _move(session: AsyncSession, sub: Subscription) -> str:
    """A new URL: a fresh secret, a new epoch, and the old URL's queued messages cancelled."""
    await session.exec(
        sa.update(Delivery)
        .where(
            col(Delivery.subscription_id) == sub.id,
            col(Delivery.url_epoch) == sub.url_epoch,
            col(Delivery.status) == DeliveryStatus.pending,
        )
        .values(status=DeliveryStatus.cancelled, last_error=prepare.MOVED)
    )
    sub.url_epoch += 1
    secret = new_webhook_secret()
    sub.secret = secret
    # The old secret never signs for the new endpoint.
    sub.previous_secret = None
    sub.previous_secret_expires_at = None
    return secret


async def delete(session: AsyncSession, principal: Principal, sub_id: uuid.UUID) -> None:
    """Stop delivering: pending deliveries are cancelled."""
    sub = await get(session, principal, sub_id, for_change=True)
    sub.deleted_at = utcnow()
    concurrency.bump(sub)
    session.add(sub)
    await session.exec(
        sa.update(Delivery)
        .where(
            col(Delivery.subscription_id) == sub.id,
            col(Delivery.status) == DeliveryStatus.pending,
        )
        .values(status=DeliveryStatus.cancelled)
    )
    await session.flush()
    await audit.record(
        session, principal, "subscription.delete", object_type="subscription", object_id=sub.id
    )


async def rotate_secret(
    session: AsyncSession, principal: Principal, sub_id: uuid.UUID, settings: Settings
) -> tuple[Subscription, str]:
    """A new secret; the old one keeps signing alongside it for the overlap period."""
    sub = await get(session, principal, sub_id, for_change=True)
    secret = new_webhook_secret()
    sub.previous_secret = sub.secret
    sub.previous_secret_expires_at = utcnow() + timedelta(
        seconds=settings.webhook_secret_overlap_seconds
    )
    sub.secret = secret
    _managed_by(sub, principal)
    concurrency.bump(sub)
    session.add(sub)
    await session.flush()
    await audit.record(
        session,
        principal,
        "subscription.rotate_secret",
        object_type="subscription",
        object_id=sub.id,
    )
    return sub, secret


async def ping(session: AsyncSession, sub: Subscription) -> Delivery:
    """Queue a `ping` to this subscription only (one of the caller's: `get`)."""
    event = await events.record(session, EventType.ping, agency_ids=[], data={}, fan_out=False)
    delivery = Delivery(
        subscription_id=sub.id,
        event_id=event.id,
        event_type=event.type,
        url_epoch=sub.url_epoch,
        payload=outbox.envelope(event),
    )
    session.add(delivery)
    await session.flush()
    await outbox.notify(session)
    return delivery


async def list_deliveries(
    session: AsyncSession,
    sub: Subscription,
    *,
    status: DeliveryStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Delivery], str | None]:
    """The deliveries of a subscription of the caller's (`get`), newest first."""
    shown = render.shown_in_delivery_log(
        Alert, col(Delivery.alert_id), sub.agency_id, dialect=session.get_bind().dialect.name
    )
    query = select(Delivery).where(Delivery.subscription_id == sub.id, shown)
    if status:
        query = query.where(Delivery.status == status)
    return await keyset_page(
        session, query, Delivery, limit=limit, cursor=cursor, newest_first=True
    )


async def retry(session: AsyncSession, principal: Principal, delivery_id: uuid.UUID) -> Delivery:
    """Send a failed or cancelled delivery again, now (same `webhook-id`, rendered anew)."""
    rights.require_webhook_manager(principal)
    shown = render.shown_in_delivery_log(
        Alert, col(Delivery.alert_id), principal.agency_id, dialect=session.get_bind().dialect.name
    )
    # One query for "ours and shown": another agency's delivery id is answered as an
    # unknown one, whatever it is about.
    query = (
        select(Delivery)
        .join(Subscription, col(Subscription.id) == col(Delivery.subscription_id))
        .where(
            Delivery.id == delivery_id,
            Subscription.agency_id == principal.agency_id,
            col(Subscription.deleted_at).is_(None),
            shown,
        )
    )
    delivery = (await session.exec(query)).first()
    if delivery is None:
        raise NotFound("No such delivery.")
    sub = await get(session, principal, delivery.subscription_id)
    if delivery.status in (DeliveryStatus.pending, DeliveryStatus.delivering):
        raise Conflict("The delivery is already queued.")
    if delivery.url_epoch != sub.url_epoch:
        raise Conflict("The delivery was for an earlier URL of this subscription.")
    if await _overtaken(session, delivery):
        raise Conflict(
            "A later message about this alert has gone out since; it carried the "
            "alert's current state. Replay to receive the messages again in order."
        )
    delivery.status = DeliveryStatus.pending
    delivery.next_attempt_at = utcnow()
    delivery.claimed_until = None
    session.add(delivery)
    await session.flush()
    await outbox.notify(session)
    await audit.record(
        session, principal, "delivery.retry", object_type="delivery", object_id=delivery.id
    )
    return delivery


async def _overtaken(session: AsyncSession, delivery: Delivery) -> bool:
    """Whether a later message of the same alert to the same endpoint is out or going out."""
    if delivery.alert_id is None:
        return False
    mates = (
        await session.exec(
            select(Delivery).where(
                Delivery.alert_id == delivery.alert_id,
                Delivery.subscription_id == delivery.subscription_id,
                Delivery.url_epoch == delivery.url_epoch,
                col(Delivery.status).in_([DeliveryStatus.delivered, DeliveryStatus.delivering]),
            )
        )
    ).all()
    key = prepare.order_key(delivery)
    return any(prepare.order_key(m) > key for m in mates)


async def replay(
    session: AsyncSession, principal: Principal, sub: Subscription, since: datetime
) -> int:
    """Queue again every delivery since `since` to the current URL, in their order.

    `sub` is one of the principal's agency's (`get`). The copies are rendered when sent,
    like every delivery: what the agency may see then.
    """
    shown = render.shown_in_delivery_log(
        Alert, col(Delivery.alert_id), sub.agency_id, dialect=session.get_bind().dialect.name
    )
    rows = (
        await session.exec(
            select(Delivery).where(
                Delivery.subscription_id == sub.id,
                shown,
                Delivery.url_epoch == sub.url_epoch,
                col(Delivery.created_at) >= since,
                col(Delivery.status).in_([DeliveryStatus.delivered, DeliveryStatus.failed]),
            )
        )
    ).all()
    now = utcnow()
    for position, old in enumerate(sorted(rows, key=prepare.order_key)):
        # Distinct creation times keep the copies in the originals' order.
        created = now + timedelta(microseconds=position)
        session.add(outbox.new_delivery_like(old, replayed_at=now, created_at=created))
    await session.flush()
    await audit.record(
        session,
        principal,
        "subscription.replay",
        object_type="subscription",
        object_id=sub.id,
        details={"since": since.isoformat(), "queued": len(rows)},
    )
    if rows:
        await outbox.notify(session)
    return len(rows)
