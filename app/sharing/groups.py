"""Sharing groups: create, list, rename, retire, and change who belongs to them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency
from app.audit import service as audit
from app.authz import rights
from app.authz.principal import ActorKind, Principal
from app.core import concurrency, patch
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.pagination import keyset_page
from app.core.types import utcnow
from app.sharing import membership
from app.sharing import service as sharing
from app.sharing.models import SharingGroup, SharingGroupMember
from app.sharing.schemas import SharingGroupCreate, SharingGroupRead, SharingGroupUpdate

# Platform administrators have no power over groups beyond their own agency's (DESIGN §2),
# and since the operator's agency is never a member, in practice none.


def _require_group_manager(principal: Principal, group: SharingGroup) -> None:
    if principal.kind != ActorKind.user or not principal.is_admin:
        raise Forbidden("Only an agency administrator may manage sharing groups.")
    if group.owner_agency_id != principal.agency_id:
        raise Forbidden("Only the owning agency's administrators may manage this group.")


async def _members(session: AsyncSession, group_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.exec(
        select(SharingGroupMember.agency_id)
        .where(SharingGroupMember.group_id == group_id)
        .order_by(col(SharingGroupMember.added_at), col(SharingGroupMember.agency_id))
    )
    return list(rows.all())


async def group_read(
    session: AsyncSession, principal: Principal, group: SharingGroup
) -> SharingGroupRead:
    """The group as the principal may see it (members hidden unless owner, if asked)."""
    members = await _members(session, group.id)
    shows = not group.hide_members or group.owner_agency_id == principal.agency_id
    return SharingGroupRead(
        id=group.id,
        owner_agency_id=group.owner_agency_id,
        name=group.name,
        description=group.description,
        hide_members=group.hide_members,
        created_at=group.created_at,
        updated_at=group.updated_at,
        member_count=len(members),
        members=members if shows else None,
    )


async def get_group(
    session: AsyncSession, principal: Principal, group_id: uuid.UUID, *, for_change: bool = False
) -> SharingGroup:
    """A live group the principal's agency owns or belongs to, or 404 (`for_change`: locked,
    so that membership changes of one group happen one at a time)."""
    query = select(SharingGroup).where(
        SharingGroup.id == group_id,
        col(SharingGroup.deleted_at).is_(None),
        membership.visible_group_filter(principal),
    )
    if for_change:
        query = concurrency.for_change(query, SharingGroup)
    group = (await session.exec(query)).first()
    if group is None:
        raise NotFound("No such sharing group.")
    return group


async def create_group(
    session: AsyncSession, principal: Principal, data: SharingGroupCreate
) -> SharingGroup:
    """Create a group owned by the principal's agency (its administrators only)."""
    owner = data.owner_agency_id or principal.agency_id
    rights.require_agency_manager(principal, owner)
    await sharing.require_agencies(session, [owner], "owner_agency_id")
    await sharing.require_agencies(session, data.members, "members")
    group = SharingGroup(
        owner_agency_id=owner,
        name=data.name,
        description=data.description,
        hide_members=data.hide_members,
    )
    session.add(group)
    await session.flush()
    for agency_id in dict.fromkeys([owner, *data.members]):
        session.add(SharingGroupMember(group_id=group.id, agency_id=agency_id))
    await session.flush()
    await audit.record(
        session, principal, "group.create", object_type="sharing_group", object_id=group.id
    )
    return group


async def list_groups(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[Sequence[SharingGroup], str | None]:
    """Live groups the principal's agency owns or belongs to (operators: all)."""
    query = select(SharingGroup).where(
        col(SharingGroup.deleted_at).is_(None), membership.visible_group_filter(principal)
    )
    return await keyset_page(session, query, SharingGroup, limit=limit, cursor=cursor)


async def update_group(
    session: AsyncSession, principal: Principal, group_id: uuid.UUID, data: SharingGroupUpdate
) -> SharingGroup:
    """Rename a group, change its description or whether members are hidden."""
    group = await get_group(session, principal, group_id)
    _require_group_manager(principal, group)
    changes = patch.changes_of(data, not_null=("name", "description", "hide_members"))
    patch.apply_changes(group, changes)
    group.updated_at = utcnow()
    session.add(group)
    await session.flush()
    await audit.record(
        session, principal, "group.update", object_type="sharing_group", object_id=group.id
    )
    return group


async def delete_group(session: AsyncSession, principal: Principal, group_id: uuid.UUID) -> None:
    """Retire a group: alerts addressed to it are no longer readable through it."""
    group = await get_group(session, principal, group_id)
    _require_group_manager(principal, group)
    group.deleted_at = utcnow()
    session.add(group)
    await session.flush()
    await audit.record(
        session, principal, "group.delete", object_type="sharing_group", object_id=group.id
    )


async def add_member(
    session: AsyncSession, principal: Principal, group_id: uuid.UUID, agency_id: uuid.UUID
) -> SharingGroup:
    """Add an agency to a group (idempotent)."""
    group = await get_group(session, principal, group_id, for_change=True)
    _require_group_manager(principal, group)
    agency = await session.get(Agency, agency_id)
    if agency is None:
        raise NotFound("No such agency.")
    if agency.is_operator:
        raise InvalidInput.on(
            "agency_id", f"{agency_id} {sharing.OPERATOR_REFUSED}", location="path"
        )
    if await session.get(SharingGroupMember, (group_id, agency_id)) is None:
        session.add(SharingGroupMember(group_id=group_id, agency_id=agency_id))
        group.updated_at = utcnow()
        session.add(group)
        await session.flush()
        await audit.record(
            session,
            principal,
            "group.add_member",
            object_type="sharing_group",
            object_id=group.id,
            details={"agency_id": str(agency_id)},
        )
    return group


async def remove_member(
    session: AsyncSession, principal: Principal, group_id: uuid.UUID, agency_id: uuid.UUID
) -> SharingGroup:
    """Remove an agency from a group: it loses access to the group's alerts at once."""
    group = await get_group(session, principal, group_id, for_change=True)
    _require_group_manager(principal, group)
    if agency_id == group.owner_agency_id:
        raise Conflict("The owning agency cannot leave its own group.")
    member = await session.get(SharingGroupMember, (group_id, agency_id))
    if member is None:
        raise NotFound("That agency is not a member of the group.")
    await session.delete(member)
    group.updated_at = utcnow()
    session.add(group)
    await session.flush()
    await audit.record(
        session,
        principal,
        "group.remove_member",
        object_type="sharing_group",
        object_id=group.id,
        details={"agency_id": str(agency_id)},
    )
    return group
