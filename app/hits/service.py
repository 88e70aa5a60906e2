"""Cross-matching serialised items between agencies' alerts (DESIGN §5)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Literal

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency
from app.alerts.models import Alert, AlertItem, AlertStatus
from app.audit import service as audit
from app.core.errors import NotFound
from app.core.pagination import keyset_page
from app.core.principal import Principal
from app.core.types import utcnow
from app.events import service as events
from app.events.models import EventType
from app.hits.models import TIER_RANK, Hit, HitStatus, HitTier
from app.hits.schemas import HitCounterpart, HitRead
from app.hits.serials import calibre_key
from app.sharing import parties, rules, visibility


def tier_of(a: AlertItem, b: AlertItem) -> HitTier:
    """strong: serial + make + calibre; probable: serial + make; candidate: serial only."""
    if a.make_key and a.make_key == b.make_key:
        ca, cb = calibre_key(a.calibre), calibre_key(b.calibre)
        return HitTier.strong if ca and ca == cb else HitTier.probable
    return HitTier.candidate


async def match_alert(session: AsyncSession, alert: Alert) -> list[Hit]:
    """Match a published alert's serialised items against every other agency's items.

    One indexed look-up (alert_item.serial_key) for all of the alert's keys; obliterated
    and absent serials have no key and so never match.
    """
    if alert.status != AlertStatus.published:
        return []
    mine = (
        await session.exec(
            select(AlertItem).where(
                AlertItem.alert_id == alert.id, col(AlertItem.serial_key).is_not(None)
            )
        )
    ).all()
    keys = {i.serial_key for i in mine}
    if not keys:
        return []
    others = (
        await session.exec(
            select(AlertItem, Alert)
            .join(Alert, col(Alert.id) == col(AlertItem.alert_id))
            .where(
                col(AlertItem.serial_key).in_(keys),
                AlertItem.alert_id != alert.id,
                Alert.status == AlertStatus.published.value,
                Alert.originator_agency_id != alert.originator_agency_id,
            )
        )
    ).all()
    best: dict[tuple[uuid.UUID, str], tuple[HitTier, Alert]] = {}
    for item in mine:
        for other_item, other in others:
            if other_item.serial_key != item.serial_key:
                continue
            tier = tier_of(item, other_item)
            slot = (other.id, str(item.serial_key))
            if slot not in best or TIER_RANK[tier] > TIER_RANK[best[slot][0]]:
                best[slot] = (tier, other)
    created: list[Hit] = []
    for (_other_id, key), (tier, other) in best.items():
        hit = await _upsert(session, alert, other, key, tier)
        if hit is not None:
            created.append(hit)
    return created


async def _upsert(
    session: AsyncSession, alert: Alert, other: Alert, key: str, tier: HitTier
) -> Hit | None:
    a, b = sorted((alert, other), key=lambda x: x.id.hex)
    existing = (
        await session.exec(
            select(Hit).where(Hit.alert_a_id == a.id, Hit.alert_b_id == b.id, Hit.serial_key == key)
        )
    ).first()
    if existing is not None:
        if TIER_RANK[tier] > TIER_RANK[HitTier(existing.tier)]:
            existing.tier = tier.value
            existing.updated_at = utcnow()
            session.add(existing)
        return None
    hit = Hit(
        alert_a_id=a.id,
        agency_a_id=a.originator_agency_id,
        alert_b_id=b.id,
        agency_b_id=b.originator_agency_id,
        serial_key=key,
        tier=tier.value,
    )
    session.add(hit)
    await session.flush()
    await events.record(
        session,
        EventType.hit_created,
        agency_ids=[hit.agency_a_id, hit.agency_b_id],
        data={"hit_id": str(hit.id), "tier": hit.tier},
    )
    return hit


async def get_hit(session: AsyncSession, principal: Principal, hit_id: uuid.UUID) -> Hit:
    """A hit on one of the principal's agency's records, or 404."""
    rules.require_alert_reader(principal)
    query = select(Hit).where(Hit.id == hit_id, parties.hit_party_filter(principal.agency_id))
    hit = (await session.exec(query)).first()
    if hit is None:
        raise NotFound("No such hit.")
    return hit


async def list_hits(
    session: AsyncSession,
    principal: Principal,
    *,
    status: HitStatus | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[Hit], str | None]:
    """Hits on the principal's agency's records, newest first."""
    rules.require_alert_reader(principal)
    query = select(Hit).where(parties.hit_party_filter(principal.agency_id))
    if status:
        mine = sa.case((Hit.agency_a_id == principal.agency_id, Hit.status_a), else_=Hit.status_b)
        query = query.where(mine == status.value)
    return await keyset_page(session, query, Hit, limit=limit, cursor=cursor, newest_first=True)


async def set_status(
    session: AsyncSession,
    principal: Principal,
    hit_id: uuid.UUID,
    status: Literal[HitStatus.confirmed, HitStatus.dismissed],
) -> Hit:
    """Confirm or dismiss a hit for the principal's side."""
    hit = await get_hit(session, principal, hit_id)
    side = parties.require_hit_actor(hit, principal)
    setattr(hit, f"status_{side}", status.value)
    hit.updated_at = utcnow()
    session.add(hit)
    await session.flush()
    await audit.record(
        session, principal, f"hit.{status.value}", object_type="hit", object_id=hit.id
    )
    return hit


async def read_models(
    session: AsyncSession, principal: Principal, hits: Sequence[Hit]
) -> list[HitRead]:
    """Each hit from the caller's side: the other record only if sharing lets them see it."""
    others = {
        (h.alert_b_id if parties.hit_side(h, principal) == "a" else h.alert_a_id) for h in hits
    }
    dialect = session.bind.dialect.name
    seen: set[uuid.UUID] = set()
    if others:
        query = visibility.visible_alerts(principal, dialect=dialect).where(
            col(Alert.id).in_(others)
        )
        seen = {a.id for a in (await session.exec(query)).all()}
    agency_ids = {h.agency_a_id for h in hits} | {h.agency_b_id for h in hits}
    agencies = {
        a.id: a
        for a in (await session.exec(select(Agency).where(col(Agency.id).in_(agency_ids)))).all()
    }
    out: list[HitRead] = []
    for hit in hits:
        side = parties.hit_side(hit, principal)
        mine_alert, other_alert = (
            (hit.alert_a_id, hit.alert_b_id) if side == "a" else (hit.alert_b_id, hit.alert_a_id)
        )
        other_agency = agencies[hit.agency_b_id if side == "a" else hit.agency_a_id]
        out.append(
            HitRead(
                id=hit.id,
                tier=hit.tier,
                serial_key=hit.serial_key,
                status=hit.status_a if side == "a" else hit.status_b,
                created_at=hit.created_at,
                my_alert_id=mine_alert,
                other=HitCounterpart(
                    agency_id=other_agency.id,
                    agency_name=other_agency.name,
                    agency_country=other_agency.country,
                    contact_email=other_agency.contact_email,
                    alert_id=other_alert if other_alert in seen else None,
                ),
            )
        )
    return out
