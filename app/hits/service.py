"""An agency's own steps on a hit: confirm or dismiss it for its side, disclose it."""

from __future__ import annotations

import uuid
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts.models import Alert
from app.audit import service as audit
from app.authz import parties
from app.authz.disclosure import HitView, require_discloser
from app.authz.principal import Principal
from app.core import concurrency
from app.core.errors import Conflict
from app.core.types import utcnow
from app.hits.models import Hit, HitStatus
from app.hits.read import get_hit
from app.hits.sides import agency_view, bump, side_version, tell

# The statuses an agency sets its side of a hit to.
Decision = Literal[HitStatus.confirmed, HitStatus.dismissed]


async def set_status(
    session: AsyncSession,
    principal: Principal,
    hit_id: uuid.UUID,
    status: Decision,
    *,
    if_match: str | None = None,
) -> Hit:
    """Confirm or dismiss a hit for the principal's side (409 if that is its status already)."""
    hit = await get_hit(session, principal, hit_id, for_change=True)
    side = parties.require_hit_actor(hit, principal)
    concurrency.check_version(side_version(hit, side), if_match, required=False, what="hit")
    if getattr(hit, f"status_{side}") == status:
        raise Conflict(f"The hit is {status.value} for your side already.")
    setattr(hit, f"status_{side}", status)
    bump(hit, side)
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
    require_discloser(principal)
    done = hit.disclosed_by_a_at if side == "a" else hit.disclosed_by_b_at
    if done is not None:
        return hit
    other_side = "b" if side == "a" else "a"
    mine = await session.get(Alert, hit.alert_a_id if side == "a" else hit.alert_b_id)
    assert mine is not None
    other_agency = hit.agency_b_id if side == "a" else hit.agency_a_id
    if await agency_view(session, hit, other_side, other_agency, mine) is not HitView.hidden:
        raise Conflict("The other agency already knows of this hit: there is nothing to disclose.")
    now = utcnow()
    setattr(hit, "disclosed_by_a_at" if side == "a" else "disclosed_by_b_at", now)
    bump(hit, side, now)
    session.add(hit)
    await session.flush()
    view = await agency_view(session, hit, other_side, other_agency, mine)
    await tell(session, hit, other_agency, view)
    await audit.record(
        session,
        principal,
        "hit.disclose",
        object_type="hit",
        object_id=hit.id,
        details={"to_agency_id": str(other_agency)},
    )
    return hit
