"""Cross-matching serialised items between agencies' alerts (DESIGN §5)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency
from app.alerts import visible
from app.alerts.models import Alert, AlertItem
from app.audit import service as audit
from app.authz import rules
from app.authz.principal import Principal, Scope
from app.core import concurrency
from app.core.errors import Conflict, NotFound
from app.core.pagination import keyset_page
from app.core.types import new_id, utcnow
from app.events import service as events
from app.events.models import EventType
from app.hits import disclosure, parties
from app.hits.models import TIER_RANK, Hit, HitStatus, HitTier, PendingMatch
from app.hits.schemas import HitCounterpart, HitRead
from app.hits.serials import calibre_key
from app.sharing import visibility
from app.sharing.handling import AlertStatus


def tier_of(a: AlertItem, b: AlertItem) -> HitTier:
    """strong: serial + make + calibre; probable: serial + make; candidate: serial only."""
    if a.make_key and a.make_key == b.make_key:
        ca, cb = calibre_key(a.calibre), calibre_key(b.calibre)
        return HitTier.strong if ca and ca == cb else HitTier.probable
    return HitTier.candidate


async def match_alert(
    session: AsyncSession, alert: Alert, *, now: datetime | None = None
) -> list[Hit]:
    """Match a released alert's serialised items against every other agency's released items.

    Drafts are never matched; an alert still under embargo is held (`PendingMatch`) and
    matched by the worker when the embargo has passed (`match_released`). One indexed
    look-up (alert_item.serial_key) for all of the alert's keys; obliterated and absent
    serials have no key and so never match.
    """
    if alert.status != AlertStatus.published:
        return []
    now = now or utcnow()
    if alert.embargo_until is not None and alert.embargo_until > now:
        await _hold(session, alert.id)
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
                sa.or_(col(Alert.embargo_until).is_(None), col(Alert.embargo_until) <= now),
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
        hit = await _upsert(session, alert, other, key, tier, now)
        if hit is not None:
            created.append(hit)
    return created


def _insert(session: AsyncSession) -> Any:
    """INSERT … ON CONFLICT DO NOTHING, in the dialect's own spelling."""
    return pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert


async def _hold(session: AsyncSession, alert_id: uuid.UUID) -> None:
    """Keep an embargoed alert for matching at release (once, however often it is held)."""
    statement = _insert(session)(PendingMatch).values(alert_id=alert_id, created_at=utcnow())
    await session.exec(statement.on_conflict_do_nothing(index_elements=["alert_id"]))  # type: ignore[call-overload]


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
                Alert.status != AlertStatus.published.value,
                col(Alert.embargo_until).is_(None),
                col(Alert.embargo_until) <= now,
            )
        )
        .order_by(col(PendingMatch.created_at), col(PendingMatch.alert_id))
        .limit(batch)
    )
    if session.bind.dialect.name == "postgresql":
        # The alert's row too, so one being changed right now (its embargo moved) waits a
        # run; NO KEY UPDATE, so that the hit's foreign-key checks on a row another worker
        # has claimed do not wait on it (that wait, against the hit's unique index, was a
        # deadlock when two workers released the two alerts of one pair).
        query = query.with_for_update(
            skip_locked=True,
            key_share=True,
            of=[PendingMatch, Alert],  # type: ignore[arg-type]
        )
    due = list((await session.exec(query)).all())
    if not due:
        return 0
    await session.exec(delete(PendingMatch).where(col(PendingMatch.alert_id).in_(due)))  # type: ignore[call-overload]
    for alert_id in due:
        alert = await session.get(Alert, alert_id)
        if alert is not None:
            await match_alert(session, alert, now=now)
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
        if TIER_RANK[tier] > TIER_RANK[HitTier(existing.tier)]:
            existing.tier = tier.value
            # Only a side shown the real tier sees it change (disclosure.tier_shown).
            records = {a.id: a, b.id: b}
            for side in ("a", "b"):
                agency_id, other_alert = _side(existing, side, records)
                view = await _agency_view(session, existing, side, agency_id, other_alert, now)
                if view is disclosure.HitView.full:
                    _bump(existing, side, now)
            session.add(existing)
        return None
    values = {
        "id": new_id(),
        "alert_a_id": a.id,
        "agency_a_id": a.originator_agency_id,
        "alert_b_id": b.id,
        "agency_b_id": b.originator_agency_id,
        "serial_key": key,
        "tier": tier.value,
        "status_a": HitStatus.new.value,
        "status_b": HitStatus.new.value,
        "created_at": utcnow(),
        "updated_at": utcnow(),
    }
    # A concurrent match of the same pair (the other alert's release, an edit) may have
    # inserted it first: then this one adds nothing and notifies nobody.
    statement = (
        _insert(session)(Hit)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["alert_a_id", "alert_b_id", "serial_key"])
        .returning(Hit.id)  # type: ignore[arg-type]
    )
    if (await session.exec(statement)).first() is None:  # type: ignore[call-overload]
        return None
    hit = await session.get(Hit, values["id"])
    assert hit is not None
    records = {a.id: a, b.id: b}
    for side in ("a", "b"):
        agency_id, other_alert = _side(hit, side, records)
        view = await _agency_view(session, hit, side, agency_id, other_alert, now)
        await _tell(session, hit, agency_id, view)
    return hit


def side_version(hit: Hit, side: str) -> int:
    """The hit's version as `side` knows it (its ETag)."""
    return hit.version_a if side == "a" else hit.version_b


def _bump(hit: Hit, side: str, now: datetime | None = None) -> None:
    """One more change that `side` can see, of a hit locked for change."""
    if side == "a":
        hit.version_a += 1
    else:
        hit.version_b += 1
    hit.updated_at = now or utcnow()


def _side(hit: Hit, side: str, records: dict[uuid.UUID, Alert]) -> tuple[uuid.UUID, Alert]:
    """(agency on `side`, the other side's alert)."""
    if side == "a":
        return hit.agency_a_id, records[hit.alert_b_id]
    return hit.agency_b_id, records[hit.alert_a_id]


async def _agency_view(
    session: AsyncSession,
    hit: Hit,
    side: str,
    agency_id: uuid.UUID,
    other_alert: Alert,
    now: datetime | None = None,
) -> disclosure.HitView:
    """What the agency on `side` may learn of the hit (notifications, disclosure)."""
    dialect = session.bind.dialect.name
    query = sa.select(visible.content_filter(agency_id)).where(
        Alert.id == other_alert.id, visible.visible_filter(agency_id, now, dialect=dialect)
    )
    row = (await session.exec(query)).first()  # type: ignore[call-overload]
    return disclosure.view_of(
        sees_other=row is not None,
        sees_other_content=row is not None and bool(row[0]),
        other_blind=disclosure.keeps_hits_blind(other_alert.tlp, other_alert.audience),
        disclosed=disclosure.disclosed_to(hit, side),
    )


async def _tell(
    session: AsyncSession, hit: Hit, agency_id: uuid.UUID, view: disclosure.HitView
) -> None:
    """`hit.created` to one side, with the tier it may see; a blind side is told nothing."""
    if view is disclosure.HitView.hidden:
        return
    await events.record(
        session,
        EventType.hit_created,
        agency_ids=[agency_id],
        data={"hit_id": str(hit.id), "tier": disclosure.tier_shown(view, hit.tier).value},
    )


async def notice_for(
    session: AsyncSession, reader: Principal, hit_id: uuid.UUID
) -> dict[str, str] | None:
    """The `hit.created` data that `reader` may be sent *now* (a delivery, at send time).

    None when it may no longer know of the hit (the other record became blind to it) or
    may not read hits at all (a subscription whose manager lacks `alerts:read`); else the
    tier as `GET /hits/{id}` shows it to that agency now.
    """
    if not reader.has_scope(Scope.alerts_read):
        return None
    hit = await session.get(Hit, hit_id)
    if hit is None or reader.agency_id not in (hit.agency_a_id, hit.agency_b_id):
        return None
    shown = await read_models(session, reader, [hit])
    if not shown:
        return None
    return {"hit_id": str(hit.id), "tier": shown[0].tier.value}


async def get_hit(
    session: AsyncSession, principal: Principal, hit_id: uuid.UUID, *, for_change: bool = False
) -> Hit:
    """A hit on one of the principal's agency's records that it may know of, or 404.

    `for_change` locks it (app/core/concurrency.py).
    """
    rules.require_alert_reader(principal)
    shown = disclosure.shown_filter(principal.agency_id, dialect=session.bind.dialect.name)
    query = select(Hit).where(Hit.id == hit_id, shown)
    if for_change:
        query = concurrency.for_change(query, Hit)
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
    """Hits on the principal's agency's records that it may know of, newest first."""
    rules.require_alert_reader(principal)
    query = select(Hit).where(
        disclosure.shown_filter(principal.agency_id, dialect=session.bind.dialect.name)
    )
    if status:
        mine = sa.case((Hit.agency_a_id == principal.agency_id, Hit.status_a), else_=Hit.status_b)
        query = query.where(mine == status.value)
    return await keyset_page(session, query, Hit, limit=limit, cursor=cursor, newest_first=True)


async def set_status(
    session: AsyncSession,
    principal: Principal,
    hit_id: uuid.UUID,
    status: Literal[HitStatus.confirmed, HitStatus.dismissed],
    *,
    if_match: str | None = None,
) -> Hit:
    """Confirm or dismiss a hit for the principal's side (409 if that is its status already)."""
    hit = await get_hit(session, principal, hit_id, for_change=True)
    side = parties.require_hit_actor(hit, principal)
    concurrency.check_version(side_version(hit, side), if_match, required=False, what="hit")
    if getattr(hit, f"status_{side}") == status.value:
        raise Conflict(f"The hit is {status.value} for your side already.")
    setattr(hit, f"status_{side}", status.value)
    _bump(hit, side)
    session.add(hit)
    await session.flush()
    await audit.record(
        session, principal, f"hit.{status.value}", object_type="hit", object_id=hit.id
    )
    return hit


async def disclose(session: AsyncSession, principal: Principal, hit_id: uuid.UUID) -> Hit:
    """Tell the other side of a hit that our record keeps blind who holds it (audited, once).

    Under the hit's row lock (app/core/concurrency.py): of two disclosures at once, the
    second finds it done and tells no one again.
    """
    hit = await get_hit(session, principal, hit_id, for_change=True)
    side = parties.hit_side(hit, principal)
    disclosure.require_discloser(principal)
    done = hit.disclosed_by_a_at if side == "a" else hit.disclosed_by_b_at
    if done is not None:
        return hit
    other_side = "b" if side == "a" else "a"
    mine = await session.get(Alert, hit.alert_a_id if side == "a" else hit.alert_b_id)
    assert mine is not None
    other_agency = hit.agency_b_id if side == "a" else hit.agency_a_id
    if (
        await _agency_view(session, hit, other_side, other_agency, mine)
        is not disclosure.HitView.hidden
    ):
        raise Conflict("The other agency already knows of this hit: there is nothing to disclose.")
    now = utcnow()
    setattr(hit, "disclosed_by_a_at" if side == "a" else "disclosed_by_b_at", now)
    _bump(hit, side, now)
    session.add(hit)
    await session.flush()
    view = await _agency_view(session, hit, other_side, other_agency, mine)
    await _tell(session, hit, other_agency, view)
    await audit.record(
        session,
        principal,
        "hit.disclose",
        object_type="hit",
        object_id=hit.id,
        details={"to_agency_id": str(other_agency)},
    )
    return hit


async def read_one(session: AsyncSession, principal: Principal, hit: Hit) -> HitRead:
    """One hit from the caller's side; 404 if it may not know of it."""
    found = await read_models(session, principal, [hit])
    if not found:
        raise NotFound("No such hit.")
    return found[0]


async def read_models(
    session: AsyncSession, principal: Principal, hits: Sequence[Hit]
) -> list[HitRead]:
    """Each hit from the caller's side, as app/hits/disclosure lets it learn of it.

    The other record (its id, the real tier) only when the caller may see it; otherwise
    who holds it under the uniform tier; hits the caller may not know of are left out.
    """
    if not hits:
        return []
    dialect = session.bind.dialect.name
    sides = {h.id: parties.hit_side(h, principal) for h in hits}
    mine_of = {h.id: h.alert_a_id if sides[h.id] == "a" else h.alert_b_id for h in hits}
    other_of = {h.id: h.alert_b_id if sides[h.id] == "a" else h.alert_a_id for h in hits}
    query = visible.visible_alerts(principal, dialect=dialect).where(
        col(Alert.id).in_(set(other_of.values()))
    )
    seen = {a.id: a for a in (await session.exec(query)).all()}
    # Both records' handling: whether each keeps its hits blind (never shown as such).
    handling = {
        row[0]: disclosure.keeps_hits_blind(row[1], row[2])
        for row in (
            await session.exec(
                select(Alert.id, Alert.tlp, Alert.audience).where(
                    col(Alert.id).in_(set(other_of.values()) | set(mine_of.values()))
                )
            )
        ).all()
    }
    agency_ids = {h.agency_a_id for h in hits} | {h.agency_b_id for h in hits}
    agencies = {
        a.id: a
        for a in (await session.exec(select(Agency).where(col(Agency.id).in_(agency_ids)))).all()
    }
    views = {}
    for hit in hits:
        other = seen.get(other_of[hit.id])
        views[hit.id] = disclosure.view_of(
            sees_other=other is not None,
            sees_other_content=other is not None and visibility.sees_content(other, principal),
            other_blind=handling.get(other_of[hit.id], True),
            disclosed=disclosure.disclosed_to(hit, sides[hit.id]),
        )
    blind_to_them = await _blind_to_other_side(session, hits, sides, mine_of, handling)
    out: list[HitRead] = []
    for hit in hits:
        side, view = sides[hit.id], views[hit.id]
        if view is disclosure.HitView.hidden:
            continue
        other_agency = agencies[hit.agency_b_id if side == "a" else hit.agency_a_id]
        out.append(
            HitRead(
                id=hit.id,
                version=side_version(hit, side),
                tier=disclosure.tier_shown(view, hit.tier),
                serial_key=hit.serial_key,
                status=hit.status_a if side == "a" else hit.status_b,
                created_at=hit.created_at,
                my_alert_id=mine_of[hit.id],
                blind_to_other=hit.id in blind_to_them,
                other=HitCounterpart(
                    agency_id=other_agency.id,
                    agency_name=other_agency.name,
                    agency_country=other_agency.country,
                    contact_email=other_agency.contact_email,
                    alert_id=other_of[hit.id] if other_of[hit.id] in seen else None,
                ),
            )
        )
    return out


async def _blind_to_other_side(
    session: AsyncSession,
    hits: Sequence[Hit],
    sides: dict[uuid.UUID, str],
    mine_of: dict[uuid.UUID, uuid.UUID],
    blind: dict[uuid.UUID, bool],
) -> set[uuid.UUID]:
    """The hits the other side is not told of: our record keeps them blind, undisclosed."""
    dialect = session.bind.dialect.name
    candidates: dict[uuid.UUID, list[Hit]] = {}
    for hit in hits:
        other_side = "b" if sides[hit.id] == "a" else "a"
        if blind.get(mine_of[hit.id], True) and not disclosure.disclosed_to(hit, other_side):
            agency = hit.agency_b_id if other_side == "b" else hit.agency_a_id
            candidates.setdefault(agency, []).append(hit)
    out: set[uuid.UUID] = set()
    # One query per other agency among such hits (few: blind records are the exception).
    for agency_id, group in candidates.items():
        ids = {mine_of[h.id] for h in group}
        query = sa.select(Alert.id).where(
            col(Alert.id).in_(ids), visible.visible_filter(agency_id, dialect=dialect)
        )
        shown = set((await session.exec(query)).scalars().all())  # type: ignore[call-overload]
        out |= {h.id for h in group if mine_of[h.id] not in shown}
    return out
