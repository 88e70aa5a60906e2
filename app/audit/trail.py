"""Reading the audit trail: its records, newest first, filtered, a keyset page at a time."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import chain
from app.audit.models import AuditRecord
from app.core.pagination import Keyset, SeqCursor

# The trail's order, newest first; its cursor is the last `seq` shown.
RECORD_ORDER = Keyset((col(AuditRecord.seq),), newest_first=True, cursor=SeqCursor())


async def list_records(
    session: AsyncSession,
    *,
    agency_id: uuid.UUID | None,
    actor_id: uuid.UUID | None,
    action: str | None,
    object_type: str | None,
    object_id: str | None,
    since: datetime | None,
    until: datetime | None,
    before_seq: int | None,
    limit: int,
) -> list[AuditRecord]:
    """Records newest first, filtered; keyset on `seq`."""
    await chain.linked(session)
    query = select(AuditRecord).where(col(AuditRecord.seq).is_not(None))
    for column, value in (
        (AuditRecord.agency_id, agency_id),
        (AuditRecord.actor_id, actor_id),
        (AuditRecord.action, action),
        (AuditRecord.object_type, object_type),
        (AuditRecord.object_id, object_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if since:
        query = query.where(col(AuditRecord.at) >= since)
    if until:
        query = query.where(col(AuditRecord.at) < until)
    if before_seq:
        query = RECORD_ORDER.after(query, (before_seq,))
    query = RECORD_ORDER.ordered(query).limit(limit)
    return list((await session.exec(query)).all())
