"""Reading hits: each agency's side of them, as app/sharing/disclosure lets it learn of them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency
from app.alerts import visible
from app.alerts.models import Alert
from app.authz import parties, rules
from app.authz.disclosure import HitView, disclosed_to, view_of
from app.authz.principal import Principal, Scope
from app.core import concurrency
from app.core.errors import NotFound
from app.core.pagination import keyset_page
from app.hits import disclosure
from app.hits.models import Hit, HitStatus
from app.hits.schemas import HitCounterpart, HitRead
from app.hits.sides import side_version
from app.sharing import visibility


async def get_hit(
    session: AsyncSession, principal: Principal, hit_id: uuid.UUID, *, for_change: bool = False
) -> Hit:
    """A hit on one of the principal's agency's records that it may know of, or 404.

    `for_change` locks it (app/core/concurrency.py).
    """
    rules.require_alert_reader(principal)
    shown = disclosure.shown_filter(principal.agency_id, dialect=session.get_bind().dialect.name)
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
        disclosure.shown_filter(principal.agency_id, dialect=session.get_bind().dialect.name)
    )
    if status:
        mine = sa.case(
            (col(Hit.agency_a_id) == principal.agency_id, Hit.status_a), else_=Hit.status_b
        )
        query = query.where(mine == status)
    return await keyset_page(session, query, Hit, limit=limit, cursor=cursor, newest_first=True)


async def read_one(session: AsyncSession, principal: Principal, hit: Hit) -> HitRead:
    """One hit from the caller's side; 404 if it may not know of it."""
    found = await read_models(session, principal, [hit])
    if not found:
        raise NotFound("No such hit.")
    return found[0]


async def read_models(
    session: AsyncSession, principal: Principal, hits: Sequence[Hit]
) -> list[HitRead]:
    """Each hit from the caller's side, as app/sharing/disclosure lets it learn of it.

    The other record (its id, the real tier) only when the caller may see it; otherwise
    who holds it under the uniform tier; hits the caller may not know of are left out.
    """
    if not hits:
        return []
    dialect = session.get_bind().dialect.name
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
        views[hit.id] = view_of(
            sees_other=other is not None,
            sees_other_content=other is not None and visibility.sees_content(other, principal),
            other_blind=handling.get(other_of[hit.id], True),
            disclosed=disclosed_to(hit, sides[hit.id]),
        )
    blind_to_them = await _blind_to_other_side(session, hits, sides, mine_of, handling)
    out: list[HitRead] = []
    for hit in hits:
        side, view = sides[hit.id], views[hit.id]
        if view is HitView.hidden:
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
    sides: Mapping[uuid.UUID, str],
    mine_of: dict[uuid.UUID, uuid.UUID],
    blind: dict[uuid.UUID, bool],
) -> set[uuid.UUID]:
    """The hits the other side is not told of: our record keeps them blind, undisclosed."""
    dialect = session.get_bind().dialect.name
    candidates: dict[uuid.UUID, list[Hit]] = {}
    for hit in hits:
        other_side = "b" if sides[hit.id] == "a" else "a"
        if blind.get(mine_of[hit.id], True) and not disclosed_to(hit, other_side):
            agency = hit.agency_b_id if other_side == "b" else hit.agency_a_id
            candidates.setdefault(agency, []).append(hit)
    out: set[uuid.UUID] = set()
    # One query per other agency among such hits (few: blind records are the exception).
    for agency_id, group in candidates.items():
        ids = {mine_of[h.id] for h in group}
        query = select(col(Alert.id)).where(
            col(Alert.id).in_(ids), visible.visible_filter(agency_id, dialect=dialect)
        )
        shown = set((await session.exec(query)).all())
        out |= {h.id for h in group if mine_of[h.id] not in shown}
    return out


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
