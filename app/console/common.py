"""Look-ups every console page needs, all through the domain services."""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies import service as agencies
from app.agencies.models import Agency
from app.authz.principal import Principal
from app.core.errors import AppError
from app.core.pagination import MAX_LIMIT
from app.sharing import groups as sharing_groups
from app.sharing.models import SharingGroup


async def directory(session: AsyncSession) -> dict[uuid.UUID, Agency]:
    """The agency directory (every principal may read it to address alerts)."""
    out: dict[uuid.UUID, Agency] = {}
    cursor: str | None = None
    while True:
        rows, cursor = await agencies.list_agencies(session, limit=MAX_LIMIT, cursor=cursor)
        out.update({a.id: a for a in rows})
        if cursor is None or len(out) >= 5000:
            return out


async def groups(session: AsyncSession, principal: Principal) -> list[SharingGroup]:
    """Sharing groups the agency owns or belongs to."""
    try:
        rows, _ = await sharing_groups.list_groups(session, principal, limit=MAX_LIMIT, cursor=None)
    except AppError:
        return []
    return list(rows)


def parse_uuid(value: str | None) -> uuid.UUID | None:
    """A UUID from a query or form value, or None."""
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None
