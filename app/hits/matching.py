"""Cross-matching serialised items between agencies' alerts (DESIGN §5).

An alert is matched when it is published or its items change (through the alerts'
lifecycle hooks, app/wiring.py) and, when it was embargoed, by the worker at release.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import children
from app.alerts.models import Alert, AlertItem
from app.alerts.serials import calibre_key
from app.authz.disclosure import HitView
from app.core import concurrency
from app.core.columns import among
from app.core.types import new_id, utcnow
from app.hits.models import TIER_RANK, Hit, HitStatus, HitTier, PendingMatch
from app.hits.sides import agency_view, bump, side_of, tell
from app.sharing.handling import AlertStatus


def tier_of(a: children.StoredItem, b: children.StoredItem) -> HitTier:
    """strong: serial + make + calibre; probable: serial + make; candidate: serial only."""
    if a.make_key and a.make_key == b.make_key:
        ca, cb = calibre_key(a.calibre), calibre_key(b.calibre)
        return HitTier.strong if ca and ca == cb else HitTier.probable
    return HitTier.candidate


async def match_alerts(
    session: AsyncSession, alerts: Sequence[Alert], *, now: datetime | None = None
) -> list[Hit]:
    """Match released alerts' serialised items against every other agency's released items.

    Drafts are never matched; an alert still under embargo is held (`PendingMatch`) and
    matched by the worker when the embargo has passed (`match_released`). One indexed
    look-up (alert_item.serial_key) for all the alerts' keys, one alert or a batch;
    obliterated and absent serials have no key and so never match.
    """
    now = now or utcnow()
    published = [a for a in alerts if a.status == AlertStatus.published]
    held = {a.id for a in published if a.embargo_until is not None and a.embargo_until > now}
    released = [a for a in published if a.id not in held]
    await _hold(session, held)
    # The items this transaction just wrote, when it wrote them (no query).
    items = await children.items_by_alert(session, [a.id for a in released])
    mine = {a.id: [i for i in items.get(a.id, []) if i.serial_key is not None] for a in released}
    keys = {i.serial_key for serialised in mine.values() for i in serialised}
    if not keys:
        return []
    query = (
        select(AlertItem, Alert)
        .join(Alert, col(Alert.id) == col(AlertItem.alert_id))
        .where(
            among(col(AlertItem.serial_key), keys, session.get_bind().dialect.name),
            Alert.status == AlertStatus.published,
            sa.or_(col(Alert.embargo_until).is_(None), col(Alert.embargo_until) <= now),
        )
    )
    originators = {a.originator_agency_id for a in released}
    if len(originators) == 1:  # one agency's alerts (always a batch's): its own never match
        query = query.where(col(Alert.originator_agency_id).not_in(originators))
    by_key: dict[str, list[tuple[AlertItem, Alert]]] = {}
    for other_item, other in (await session.exec(query)).all():
        by_key.setdefault(str(other_item.serial_key), []).append((other_item, other))
    created: list[Hit] = []
    for alert in released:
        created += await _match_one(session, alert, mine[alert.id], by_key, now)
    return created


async def _match_one(
    session: AsyncSession,
    alert: Alert,
    mine: list[children.StoredItem],
    by_key: dict[str, list[tuple[AlertItem, Alert]]],
    now: datetime,
) -> list[Hit]:
    """One alert's hits among the items found for its keys: the best tier per other alert
    and key, never its own agency's."""
    best: dict[tuple[uuid.UUID, str], tuple[HitTier, Alert]] = {}
    for item in mine:
        for other_item, other in by_key.get(str(item.serial_key), []):
            if other.id == alert.id or other.originator_agency_id == alert.originator_agency_id:
                continue
            tier = tier_of(item, other_item)
            slot = (other.id, str(item.serial_key))
            if slot not in best or TIER_RANK[tier] > TIER_RANK[best[slot][0]]:
                best[slot] = (tier, other)
    created: list[Hit] = []
    for (_other_id, key), (tier, other) in best.items():
        hit = await _upsert(session, alert, other, key, tier, now)
        if hit is not None:
            created.append(hit)
    return created


def _insert(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO NOTHING, in the dialect's own spelling."""
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def _hold(session: AsyncSession, alert_ids: Collection[uuid.UUID]) -> None:
    """Keep embargoed alerts for matching at release (each once, however often it is held),
    in one statement."""
    if not alert_ids:
        return
    now = utcnow()
    statement = _insert(session)(PendingMatch).values(
        [{"alert_id": alert_id, "created_at": now} for alert_id in alert_ids]
    )
    await session.exec(statement.on_conflict_do_nothing(index_elements=["alert_id"]))


async def match_released(
    session: AsyncSession, *, now: datetime | None = None, batch: int = 500
) -> int:
    """Match the held alerts whose embargo has passed, each exactly once; drop withdrawn ones.

    On PostgreSQL the rows are claimed with `FOR UPDATE SKIP LOCKED` and deleted in the
    same transaction, so two workers never match the same release, and a hit racing the
    API's own matching is inserted once (`ON CONFLICT DO NOTHING`).
    """
    now = now or utcnow()
    query = (
        select(PendingMatch.alert_id)
        .join(Alert, col(Alert.id) == col(PendingMatch.alert_id))
        .where(
            sa.or_(
                col(Alert.status) != AlertStatus.published,
                col(Alert.embargo_until).is_(None),
                col(Alert.embargo_until) <= now,
            )
        )
        .order_by(col(PendingMatch.created_at), col(PendingMatch.alert_id))
        .limit(batch)
    )
    if session.get_bind().dialect.name == "postgresql":
        # The alert's row too, so one being changed right now (its embargo moved) waits a
        # run; NO KEY UPDATE, so that the hit's foreign-key checks on a row another worker
        # has claimed do not wait on it (that wait, against the hit's unique index, was a
        # deadlock when two workers released the two alerts of one pair).
        query = query.with_for_update(
            skip_locked=True,
            key_share=True,
            of=[PendingMatch, Alert],
        )
    due = list((await session.exec(query)).all())
    if not due:
        return 0
    await session.exec(delete(PendingMatch).where(col(PendingMatch.alert_id).in_(due)))
    held = [await session.get(Alert, alert_id) for alert_id in due]
    await match_alerts(session, [a for a in held if a is not None], now=now)
    return len(due)


async def _upsert(
    session: AsyncSession, alert: Alert, other: Alert, key: str, tier: HitTier, now: datetime
) -> Hit | None:
    a, b = sorted((alert, other), key=lambda x: x.id.hex)
    existing = (
        await session.exec(
            concurrency.for_change(
                select(Hit).where(
                    Hit.alert_a_id == a.id, Hit.alert_b_id == b.id, Hit.serial_key == key
                )
            )
        )
    ).first()
    if existing is not None:
        if TIER_RANK[tier] > TIER_RANK[existing.tier]:
            existing.tier = tier
            # Only a side shown the real tier sees it change (disclosure.tier_shown).
            records = {a.id: a, b.id: b}
            for side in ("a", "b"):
                agency_id, other_alert = side_of(existing, side, records)
                view = await agency_view(session, existing, side, agency_id, other_alert, now)
                if view is HitView.full:
                    bump(existing, side, now)
            session.add(existing)
        return None
    values = {
        "id": new_id(),
        "alert_a_id": a.id,
        "agency_a_id": a.originator_agency_id,
        "alert_b_id": b.id,
        "agency_b_id": b.originator_agency_id,
        "serial_key": key,
        "tier": tier,
        "status_a": HitStatus.new,
        "status_b": HitStatus.new,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    # A concurrent match of the same pair (the other alert's release, an edit) may have
    # inserted it first: then this one adds nothing and notifies nobody.
    statement = (
        _insert(session)(Hit)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["alert_a_id", "alert_b_id", "serial_key"])
        .returning(Hit.id)
    )
    if (await session.exec(statement)).first() is None:
        return None
    hit = await session.get(Hit, values["id"])
    assert hit is not None
    records = {a.id: a, b.id: b}
    for side in ("a", "b"):
        agency_id, other_alert = side_of(hit, side, records)
        view = await agency_view(session, hit, side, agency_id, other_alert, now)
        await tell(session, hit, agency_id, view)
    return hit
