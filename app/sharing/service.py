"""Sharing groups, sharing policies, and resolving a handling block into facts and audiences."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus
from app.alerts.models import (
    Alert,
    AlertKind,
    AlertRecipientAgency,
    AlertRecipientGroup,
    Audience,
    Tlp,
)
from app.alerts.schemas import Handling
from app.audit import service as audit
from app.core import concurrency
from app.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.core.pagination import keyset_page
from app.core.principal import Principal
from app.core.types import utcnow
from app.sharing import rights, rules
from app.sharing.models import SharingGroup, SharingGroupMember, SharingPolicy
from app.sharing.schemas import (
    KindPolicy,
    SharingGroupCreate,
    SharingGroupRead,
    SharingGroupUpdate,
    SharingPolicyBody,
    SharingPolicyRead,
)
from app.sharing.visibility import AlertFacts, Grant, grants

# --- groups -----------------------------------------------------------------------------


# Platform administrators have no power over groups beyond their own agency's (DESIGN §2),
# and since the operator's agency is never a member, in practice none.


def _group_visible_filter(principal: Principal) -> sa.ColumnElement[bool]:
    member = sa.exists().where(
        SharingGroupMember.group_id == SharingGroup.id,
        SharingGroupMember.agency_id == principal.agency_id,
    )
    return sa.or_(SharingGroup.owner_agency_id == principal.agency_id, member)


def _require_group_manager(principal: Principal, group: SharingGroup) -> None:
    if principal.kind != "user" or not principal.is_admin:
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
        _group_visible_filter(principal),
    )
    if for_change:
        query = concurrency.for_change(query, SharingGroup)
    group = (await session.exec(query)).first()
    if group is None:
        raise NotFound("No such sharing group.")
    return group


OPERATOR_REFUSED = "is the platform operator's agency, which never receives alerts or joins groups"


async def require_agencies(
    session: AsyncSession,
    ids: Iterable[uuid.UUID],
    field: str,
    *,
    addressed_to: uuid.UUID | None = None,
    indexed: bool = True,
) -> None:
    """Every agency named exists and none is the operator's (DESIGN §2); one query.

    `addressed_to`, a trace request's addressee, is held to the same rule; `indexed`
    names a list's entries (`field.0`), otherwise `field` itself is at fault.
    """
    wanted = list(ids)
    asked = [*wanted, addressed_to] if addressed_to is not None else wanted
    if not asked:
        return
    rows = await session.exec(
        select(Agency.id, Agency.is_operator).where(col(Agency.id).in_(asked))
    )
    found = dict(rows.all())
    if found.get(addressed_to):
        raise InvalidInput.on("body.details.addressed_to", f"{addressed_to} {OPERATOR_REFUSED}")
    for index, agency_id in enumerate(wanted):
        at = f"{field}.{index}" if indexed else field
        if agency_id not in found:
            raise InvalidInput.on(at, f"no agency {agency_id}")
        if found[agency_id]:
            raise InvalidInput.on(at, f"{agency_id} {OPERATOR_REFUSED}")


async def create_group(
    session: AsyncSession, principal: Principal, data: SharingGroupCreate
) -> SharingGroup:
    """Create a group owned by the principal's agency (its administrators only)."""
    owner = data.owner_agency_id or principal.agency_id
    rights.require_agency_manager(principal, owner)
    await require_agencies(session, [owner], "body.owner_agency_id")
    await require_agencies(session, data.members, "body.members")
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
        col(SharingGroup.deleted_at).is_(None), _group_visible_filter(principal)
    )
    return await keyset_page(session, query, SharingGroup, limit=limit, cursor=cursor)


async def update_group(
    session: AsyncSession, principal: Principal, group_id: uuid.UUID, data: SharingGroupUpdate
) -> SharingGroup:
    """Rename a group, change its description or whether members are hidden."""
    group = await get_group(session, principal, group_id)
    _require_group_manager(principal, group)
    for field, value in data.model_dump(exclude_unset=True).items():
        if value is None:
            raise InvalidInput.on(f"body.{field}", "may not be null")
        setattr(group, field, value)
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
        raise InvalidInput.on("path.agency_id", f"{agency_id} {OPERATOR_REFUSED}")
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


# --- policies ---------------------------------------------------------------------------


def _require_policy_reader(principal: Principal, agency_id: uuid.UUID) -> None:
    # An agency's own principals only: running the platform gives no sight of it either.
    if principal.agency_id != agency_id:
        raise NotFound("No such agency.")


async def get_policy(
    session: AsyncSession, principal: Principal, agency_id: uuid.UUID
) -> SharingPolicyRead:
    """An agency's policy; only its own principals read it."""
    _require_policy_reader(principal, agency_id)
    if await session.get(Agency, agency_id) is None:
        raise NotFound("No such agency.")
    row = await session.get(SharingPolicy, agency_id)
    body = _stored_policy(row.rules)[0] if row else SharingPolicyBody()
    return SharingPolicyRead(
        agency_id=agency_id,
        kinds=body.kinds,
        updated_at=row.updated_at if row else None,
        version=row.version if row else 0,
    )


async def put_policy(
    session: AsyncSession,
    principal: Principal,
    agency_id: uuid.UUID,
    data: SharingPolicyBody,
    *,
    if_match: str | None = None,
) -> SharingPolicyRead:
    """Replace an agency's policy; each default must itself obey the rules and its ceiling.

    `If-Match` (optional) names the version replaced; `"0"` is the policy never set.
    """
    rights.require_agency_manager(principal, agency_id)
    if await session.get(Agency, agency_id) is None:
        raise NotFound("No such agency.")
    # Two first policies of one agency at once: the second insert fails on the primary
    # key and is answered 409, so "no row to lock" needs no lock of its own.
    row = await concurrency.get_for_change(session, SharingPolicy, agency_id)
    concurrency.check_version(row.version if row else 0, if_match, required=False, what="policy")
    for kind, policy in data.kinds.items():
        if policy.default is None:
            continue
        field = f"body.kinds.{kind.value}.default"
        await validate_handling(
            session,
            principal,
            policy.default,
            kind=kind,
            addressed_to=None,
            ceiling=policy.ceiling.model_dump() if policy.ceiling else None,
            field=field,
        )
    if row is None:
        row = SharingPolicy(agency_id=agency_id, version=0)
    row.rules = data.model_dump(mode="json")
    row.updated_by = principal.id
    concurrency.bump(row)
    session.add(row)
    await session.flush()
    await audit.record(
        session, principal, "policy.update", object_type="agency", object_id=agency_id
    )
    return SharingPolicyRead(
        agency_id=agency_id, kinds=data.kinds, updated_at=row.updated_at, version=row.version
    )


def _stored_policy(stored: dict[str, Any]) -> tuple[SharingPolicyBody, dict[AlertKind, str]]:
    """A stored policy as today's rules read it, and why any of its defaults is unusable.

    An earlier release could store a default today's rules refuse (an embargo that UTC
    cannot hold): it reads as no default and is never applied; its ceiling still binds.
    """
    kinds: dict[AlertKind, KindPolicy] = {}
    unusable: dict[AlertKind, str] = {}
    for key, raw in (stored.get("kinds") or {}).items():
        kind = AlertKind(key)
        try:
            kinds[kind] = KindPolicy.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(["kinds", kind.value, *(str(p) for p in error["loc"])])
            unusable[kind] = f"{where}: {error['msg']}"
            kinds[kind] = KindPolicy.model_validate({**raw, "default": None})
    return SharingPolicyBody(kinds=kinds), unusable


async def _policy_parts(
    session: AsyncSession, agency_id: uuid.UUID, kind: AlertKind
) -> tuple[Handling | None, dict[str, object] | None, str | None]:
    """(default handling, ceiling, why the stored default is unusable) for one kind."""
    row = await session.get(SharingPolicy, agency_id)
    if row is None:
        return None, None, None
    body, unusable = _stored_policy(row.rules)
    policy = body.kinds.get(kind)
    if policy is None:
        return None, None, None
    ceiling = policy.ceiling.model_dump() if policy.ceiling else None
    return policy.default, ceiling, unusable.get(kind)


async def policy_for(
    session: AsyncSession, agency_id: uuid.UUID, kind: AlertKind
) -> tuple[Handling | None, dict[str, object] | None]:
    """(default handling, ceiling) of an agency for one kind."""
    default, ceiling, _ = await _policy_parts(session, agency_id, kind)
    return default, ceiling


# The handling applied when neither the post nor the policy gives one: the narrowest.
FALLBACK_HANDLING = Handling(tlp=Tlp.amber, audience=Audience.originator)
TRACE_FALLBACK_HANDLING = Handling(tlp=Tlp.amber, audience=Audience.recipients)


async def resolve_handling(
    session: AsyncSession,
    principal: Principal,
    given: Handling | None,
    *,
    kind: AlertKind,
    addressed_to: uuid.UUID | None,
    field: str = "body.handling",
) -> Handling:
    """The handling block to store: the given one or the policy default, checked in full."""
    default, ceiling, unusable = await _policy_parts(session, principal.agency_id, kind)
    if given is None and unusable:
        raise InvalidInput.on(
            field,
            f"Your agency's sharing policy default for {kind.value} cannot be applied "
            f"({unusable}): give `handling`, or have an agency administrator save the "
            "policy again.",
        )
    fallback = TRACE_FALLBACK_HANDLING if kind is AlertKind.trace_request else FALLBACK_HANDLING
    handling = given or default or fallback
    await validate_handling(
        session,
        principal,
        handling,
        kind=kind,
        addressed_to=addressed_to,
        ceiling=ceiling,
        field=field,
    )
    return handling


async def validate_handling(
    session: AsyncSession,
    principal: Principal,
    handling: Handling,
    *,
    kind: AlertKind,
    addressed_to: uuid.UUID | None,
    ceiling: dict[str, object] | None,
    field: str,
) -> None:
    """TLP rules, policy ceiling, and that every named agency and group exists for us."""
    facts = rules.HandlingFacts(
        tlp=handling.tlp,
        audience=handling.audience,
        recipient_agencies=tuple(handling.recipient_agencies),
        recipient_groups=tuple(handling.recipient_groups),
    )
    for name, values in (
        ("recipient_agencies", handling.recipient_agencies),
        ("recipient_groups", handling.recipient_groups),
    ):
        if twice := rules.duplicates(values):
            raise InvalidInput.on(f"{field}.{name}", f"{twice[0]} is named twice")
    rules.check_tlp_rules(facts, kind=kind, field=field)
    rules.check_ceiling(facts, ceiling, kind=kind, addressed_to=addressed_to, field=field)
    await require_agencies(
        session,
        handling.recipient_agencies,
        f"{field}.recipient_agencies",
        addressed_to=addressed_to,
    )
    if handling.recipient_groups:
        query = select(SharingGroup.id).where(
            col(SharingGroup.id).in_(handling.recipient_groups),
            col(SharingGroup.deleted_at).is_(None),
            _group_visible_filter(principal),
        )
        usable = set((await session.exec(query)).all())
        for index, group_id in enumerate(handling.recipient_groups):
            if group_id not in usable:
                raise InvalidInput.on(
                    f"{field}.recipient_groups.{index}", f"no sharing group {group_id} for you"
                )


# --- audiences --------------------------------------------------------------------------


async def audience_of(session: AsyncSession, facts: AlertFacts) -> list[tuple[Agency, list[Grant]]]:
    """Every agency that may see an alert with these facts, with the rules that let it."""
    members = await live_group_members(session, facts.recipient_groups)
    agencies = (await session.exec(select(Agency).order_by(col(Agency.name)))).all()
    out: list[tuple[Agency, list[Grant]]] = []
    for agency in agencies:
        found = grants(
            facts,
            agency.id,
            agency_active=agency.status == AgencyStatus.active,
            live_group_members=members,
            now=facts.embargo_until,  # preview as of when the embargo ends
        )
        if found:
            out.append((agency, found))
    return out


def shows_subscription_count(principal: Principal, agency_id: uuid.UUID) -> bool:
    """Preview-audience counts the caller's own subscriptions only.

    Another agency's count, tried against chosen kinds, countries and TLPs, would show
    that agency's subscription filters.
    """
    return rights.owns(principal, agency_id)


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


async def facts_of(session: AsyncSession, alert: Alert) -> AlertFacts:
    """What the sharing rule needs to know about a stored alert."""
    agencies = (
        await session.exec(
            select(AlertRecipientAgency.agency_id).where(AlertRecipientAgency.alert_id == alert.id)
        )
    ).all()
    groups = (
        await session.exec(
            select(AlertRecipientGroup.group_id).where(AlertRecipientGroup.alert_id == alert.id)
        )
    ).all()
    return AlertFacts(
        originator=alert.originator_agency_id,
        status=alert.status,
        kind=alert.kind,
        audience=alert.audience,
        addressed_to=alert.addressed_to_agency_id,
        recipient_agencies=frozenset(agencies),
        recipient_groups=frozenset(groups),
        embargo_until=alert.embargo_until,
    )
