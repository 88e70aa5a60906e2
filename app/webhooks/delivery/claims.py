"""Leases on due deliveries: claim a batch for one worker, give back what a stopping worker holds.

Claims are leases (`claimed_until`): a killed worker's deliveries fall due again when
the lease ends, so every delivery is sent at least once. On PostgreSQL, claims use
`FOR UPDATE SKIP LOCKED`, so two workers never share a delivery.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import col, select

from app.core.db import Database
from app.core.types import utcnow
from app.webhooks.models import Delivery, DeliveryStatus


async def claim(db: Database, *, worker: str, limit: int, lease_seconds: float) -> list[uuid.UUID]:
    """Lease up to `limit` due deliveries (pending and due, or with an expired lease)."""
    now = utcnow()
    due = sa.or_(
        sa.and_(
            col(Delivery.status) == DeliveryStatus.pending,
            col(Delivery.next_attempt_at) <= now,
        ),
        sa.and_(
            col(Delivery.status) == DeliveryStatus.delivering,
            col(Delivery.claimed_until) < now,
        ),
    )
    query = (
        select(Delivery.id)
        .where(due)
        .order_by(col(Delivery.next_attempt_at))
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    async with db.session() as session:
        ids = list((await session.exec(query)).all())
        if ids:
            await session.exec(
                sa.update(Delivery)
                .where(col(Delivery.id).in_(ids))
                .values(
                    status=DeliveryStatus.delivering,
                    claimed_until=now + timedelta(seconds=lease_seconds),
                    claimed_by=worker,
                )
            )
        await session.commit()
    return ids


async def release(db: Database, *, worker: str) -> None:
    """Put the worker's unsent claims back to pending, so others need not wait out the lease."""
    # Best effort: a stopping worker must stop, and an unreleased lease runs out anyway.
    with contextlib.suppress(Exception):
        async with db.session() as session:
            await session.exec(
                sa.update(Delivery)
                .where(
                    col(Delivery.claimed_by) == worker,
                    col(Delivery.status) == DeliveryStatus.delivering,
                )
                .values(status=DeliveryStatus.pending, claimed_until=None)
            )
            await session.commit()
