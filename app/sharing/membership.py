"""Who is in which sharing group, as queries: the groups an agency may name, live members."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import sqlalchemy as sa
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.authz.principal import Principal
from app.sharing.models import SharingGroup, SharingGroupMember


def visible_group_filter(principal: Principal) -> sa.ColumnElement[bool]:
    """Groups the principal's agency owns or belongs to, as a SQL condition."""
    member = sa.exists().where(
        col(SharingGroupMember.group_id) == SharingGroup.id,
        col(SharingGroupMember.agency_id) == principal.agency_id,
    )
    return sa.or_(col(SharingGroup.owner_agency_id) == principal.agency_id, member)


async def live_group_members(
    session: AsyncSession, group_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, frozenset[uuid.UUID]]:
    """Current members of each live group among `group_ids`."""
    ids = list(set(group_ids))
    if not ids:
        return {}
    rows = await session.exec(
        select(SharingGroupMember.group_id, SharingGroupMember.agency_id)
        .join(SharingGroup, col(SharingGroup.id) == col(SharingGroupMember.group_id))
        .where(col(SharingGroupMember.group_id).in_(ids), col(SharingGroup.deleted_at).is_(None))
    )
    members: dict[uuid.UUID, set[uuid.UUID]] = {}
    for group_id, agency_id in rows.all():
        members.setdefault(group_id, set()).add(agency_id)
    return {g: frozenset(m) for g, m in members.items()}


async def hidden_member_counts(
    session: AsyncSession, principal: Principal, group_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Groups among `group_ids` whose members are hidden from the principal, with their size."""
    ids = list(group_ids)
    if not ids:
        return {}
    query = (
        select(SharingGroup.id, func.count(col(SharingGroupMember.agency_id)))
        .join(SharingGroupMember, col(SharingGroupMember.group_id) == col(SharingGroup.id))
        .where(
            col(SharingGroup.id).in_(ids),
            col(SharingGroup.hide_members).is_(True),
            SharingGroup.owner_agency_id != principal.agency_id,
        )
        .group_by(col(SharingGroup.id))
    )
    return dict((await session.exec(query)).all())
