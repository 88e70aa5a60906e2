"""What each side of a hit may know of it, and what it is told when the hit changes.

Shared by the matching (a new or upgraded hit) and the agencies' own steps on a hit
(disclosure): each side has its own version, status and view of the other record.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import visible
from app.alerts.models import Alert
from app.authz.disclosure import HitView, disclosed_to, view_of
from app.core.types import utcnow
from app.events import service as events
from app.events.models import EventType
from app.hits import disclosure
from app.hits.models import Hit


def side_version(hit: Hit, side: str) -> int:
    """The hit's version as `side` knows it (its ETag)."""
    return hit.version_a if side == "a" else hit.version_b


def bump(hit: Hit, side: str, now: datetime | None = None) -> None:
    """One more change that `side` can see, of a hit locked for change."""
    if side == "a":
        hit.version_a += 1
    else:
        hit.version_b += 1
    hit.updated_at = now or utcnow()


def side_of(hit: Hit, side: str, records: dict[uuid.UUID, Alert]) -> tuple[uuid.UUID, Alert]:
    """(agency on `side`, the other side's alert)."""
    if side == "a":
        return hit.agency_a_id, records[hit.alert_b_id]
    return hit.agency_b_id, records[hit.alert_a_id]


async def agency_view(
    session: AsyncSession,
    hit: Hit,
    side: str,
    agency_id: uuid.UUID,
    other_alert: Alert,
    now: datetime | None = None,
) -> HitView:
    """What the agency on `side` may learn of the hit (notifications, disclosure)."""
    dialect = session.get_bind().dialect.name
    query = select(visible.content_filter(agency_id)).where(
        col(Alert.id) == other_alert.id, visible.visible_filter(agency_id, now, dialect=dialect)
    )
    content = (await session.exec(query)).first()  # None: the other alert is not visible
    return view_of(
        sees_other=content is not None,
        sees_other_content=bool(content),
        other_blind=disclosure.keeps_hits_blind(other_alert.tlp, other_alert.audience),
        disclosed=disclosed_to(hit, side),
    )


async def tell(session: AsyncSession, hit: Hit, agency_id: uuid.UUID, view: HitView) -> None:
    """`hit.created` to one side, with the tier it may see; a blind side is told nothing."""
    if view is HitView.hidden:
        return
    await events.record(
        session,
        EventType.hit_created,
        agency_ids=[agency_id],
        data={"hit_id": str(hit.id), "tier": disclosure.tier_shown(view, hit.tier).value},
    )
