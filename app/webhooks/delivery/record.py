"""Recording sent deliveries: every attempt, its audit record and the retry schedule, at once.

One transaction per call, in a few multi-row statements whatever the number of results:
the attempts in one INSERT, the deliveries in one executemany UPDATE, the audit records
in one append. Subscriptions are locked in id order first, as an admin's change locks them
(app/core/concurrency.py): a failure count is added to what the admin left, never written
over a re-enable made while the message was in flight.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import service as audit
from app.core import concurrency
from app.core.columns import table_of
from app.core.config import Settings
from app.core.db import Database
from app.core.types import new_id, utcnow
from app.events import service as events
from app.events.models import EventType
from app.webhooks.delivery import policy
from app.webhooks.delivery.sender import Outcome
from app.webhooks.models import Delivery, DeliveryAttempt, Subscription, SubscriptionStatus


@dataclass(frozen=True)
class Sent:
    """One attempt made: the delivery as claimed, the subscription it went to, how it ended."""

    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    outcome: Outcome


_DELIVERIES = table_of(Delivery)
_ATTEMPTS = table_of(DeliveryAttempt)


def _param(name: str, column: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name, type_=_DELIVERIES.c[column].type)


# Every row of the executemany carries the same keys; a None `delivered_at` or
# `next_attempt_at` keeps what the row had (delivered or failed for good).
_UPDATE = (
    sa.update(_DELIVERIES)
    .where(_DELIVERIES.c.id == _param("b_id", "id"))
    .values(
        attempts=_param("b_attempts", "attempts"),
        status=_param("b_status", "status"),
        last_status_code=_param("b_status_code", "last_status_code"),
        last_error=_param("b_error", "last_error"),
        last_latency_ms=_param("b_latency_ms", "last_latency_ms"),
        last_response=_param("b_response", "last_response"),
        claimed_until=None,
        delivered_at=sa.func.coalesce(
            _param("b_delivered_at", "delivered_at"), _DELIVERIES.c.delivered_at
        ),
        next_attempt_at=sa.func.coalesce(
            _param("b_next_attempt_at", "next_attempt_at"), _DELIVERIES.c.next_attempt_at
        ),
    )
)


async def record(db: Database, sent: Sequence[Sent], *, worker: str, settings: Settings) -> None:
    """Every attempt in `sent`, its audit record and the retry schedule, in one commit."""
    if not sent:
        return
    now = utcnow()
    async with db.session() as session:
        sub_ids = sorted({s.subscription_id for s in sent})
        subs = {
            s.id: s
            for s in (
                await session.exec(
                    concurrency.for_change(
                        select(Subscription)
                        .where(col(Subscription.id).in_(sub_ids))
                        .order_by(col(Subscription.id))
                    )
                )
            ).all()
        }
        attempts: dict[uuid.UUID, int] = dict(
            (
                await session.exec(
                    select(Delivery.id, Delivery.attempts).where(
                        col(Delivery.id).in_({s.delivery_id for s in sent})
                    )
                )
            ).all()
        )
        entries: list[audit.Entry] = []
        rows: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for one in sent:
            sub = subs.get(one.subscription_id)
            if one.delivery_id not in attempts or sub is None:
                continue
            outcome = one.outcome
            attempts[one.delivery_id] += 1
            entries.append(policy.audit_entry(one.delivery_id, sub, outcome))
            rows.append(_attempt_row(one, worker))
            decision = policy.decide(
                outcome,
                attempts=attempts[one.delivery_id],
                failures=sub.consecutive_failures,
                settings=settings,
                now=now,
            )
            updates.append(
                {
                    "b_id": one.delivery_id,
                    "b_attempts": attempts[one.delivery_id],
                    "b_status": decision.status,
                    "b_status_code": outcome.status_code,
                    "b_error": outcome.error,
                    "b_latency_ms": outcome.latency_ms,
                    "b_response": outcome.excerpt,
                    "b_delivered_at": decision.delivered_at,
                    "b_next_attempt_at": decision.next_attempt_at,
                }
            )
            sub.consecutive_failures = decision.consecutive_failures
            if decision.disable_reason is not None:
                await _disable(session, sub, decision.disable_reason)
            session.add(sub)
        if rows:
            conn = await session.connection()
            await conn.execute(sa.insert(_ATTEMPTS), rows)
            await conn.execute(_UPDATE, updates)
        await audit.record_many(session, None, entries)
        await session.commit()


def _attempt_row(one: Sent, worker: str) -> dict[str, Any]:
    outcome = one.outcome
    return {
        "id": new_id(),
        "delivery_id": one.delivery_id,
        "at": utcnow(),
        "status_code": outcome.status_code,
        "latency_ms": outcome.latency_ms,
        "error": outcome.error,
        "response_excerpt": outcome.excerpt,
        "worker": worker,
    }


async def _disable(session: AsyncSession, sub: Subscription, reason: str) -> None:
    if sub.status == SubscriptionStatus.disabled:
        return
    sub.status = SubscriptionStatus.disabled
    sub.disabled_reason = reason
    concurrency.bump(sub)
    await events.record(
        session,
        EventType.subscription_disabled,
        agency_ids=[sub.agency_id],
        data={"subscription_id": str(sub.id), "reason": sub.disabled_reason},
        fan_out=False,
    )
