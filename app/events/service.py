"""Record domain events in the caller's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import get_settings
from app.events.models import Event, EventType
from app.webhooks import outbox


async def record(
    session: AsyncSession,
    type_: EventType,
    *,
    alert_id: uuid.UUID | None = None,
    agency_ids: Iterable[uuid.UUID] = (),
    data: dict[str, Any] | None = None,
    fan_out: bool = True,
) -> Event:
    """Append an event; it commits (or not) with the change it describes."""
    event = Event(type=type_.value, alert_id=alert_id, agency_ids=list(agency_ids), data=data or {})
    session.add(event)
    await session.flush()
    if fan_out:
        await outbox.fan_out(session, event, base_url=get_settings().public_url)
    return event
