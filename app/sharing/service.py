"""Applying a handling block: the policy in force, its checks, and the audience it reaches.

What alerts, trace requests and imports call when they store a handling block: the
agency's policy default or the fallback, the TLP rules and ceiling, and that every
agency and group named exists for the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus
from app.authz import rights
from app.authz.principal import Principal
from app.core import memo
from app.core.errors import InvalidInput
from app.sharing import membership, rules
from app.sharing.handling import AlertFacts, AlertKind, Audience, HandledRecord, Handling, Tlp
from app.sharing.models import (
    AlertRecipientAgency,
    AlertRecipientGroup,
    SharingGroup,
    SharingPolicy,
)
from app.sharing.schemas import KindPolicy, SharingPolicyBody
from app.sharing.visibility import Grant, grants

OPERATOR_REFUSED = "is the platform operator's agency, which never receives alerts or joins groups"


async def require_agencies(
    session: AsyncSession,
    ids: Iterable[uuid.UUID],
    field: str,
    *,
    addressed_to: uuid.UUID | None = None,
    indexed: bool = True,
    found: dict[uuid.UUID, bool] | None = None,
) -> None:
    """Every agency named exists and none is the operator's (DESIGN §2); one query.

    `addressed_to`, a trace request's addressee, is held to the same rule; `indexed`
    names a list's entries (`field.0`), otherwise `field` itself is at fault. `found`
    (id → is the operator's) is what a caller already read of exactly these agencies.
    """
    wanted = list(ids)
    asked = _asked(wanted, addressed_to)
    if not asked:
        return

    async def load() -> dict[uuid.UUID, bool]:
        rows = await session.exec(
            select(Agency.id, Agency.is_operator).where(col(Agency.id).in_(asked))
        )
        return dict(rows.all())

    if found is None:
        found = await memo.once(session, ("sharing.agencies", frozenset(asked)), load)
    if addressed_to is not None and found.get(addressed_to):
        raise InvalidInput.on("details.addressed_to", f"{addressed_to} {OPERATOR_REFUSED}")
    for index, agency_id in enumerate(wanted):
        at = f"{field}.{index}" if indexed else field
        if agency_id not in found:
            raise InvalidInput.on(at, f"no agency {agency_id}")
        if found[agency_id]:
            raise InvalidInput.on(at, f"{agency_id} {OPERATOR_REFUSED}")


def _asked(wanted: list[uuid.UUID], addressed_to: uuid.UUID | None) -> list[uuid.UUID]:
    return [*wanted, addressed_to] if addressed_to is not None else wanted


# --- policy in force -------------------------------------------------------------------


def stored_policy(stored: dict[str, Any]) -> tuple[SharingPolicyBody, dict[AlertKind, str]]:
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


_Stored = tuple[SharingPolicyBody, dict[AlertKind, str]]
_Parts = tuple[Handling | None, dict[str, object] | None, str | None]


async def _policy_parts(session: AsyncSession, agency_id: uuid.UUID, kind: AlertKind) -> _Parts:
    """(default handling, ceiling, why the stored default is unusable) for one kind."""

    async def load() -> _Stored | None:
        row = await session.get(SharingPolicy, agency_id)
        return None if row is None else stored_policy(row.rules)

    return _parts_of(await memo.once(session, ("sharing.policy", agency_id), load), kind)


def _parts_of(stored: _Stored | None, kind: AlertKind) -> _Parts:
    if stored is None:
        return None, None, None
    body, unusable = stored
    policy = body.kinds.get(kind)
    if policy is None:
        return None, None, None
    ceiling = policy.ceiling.model_dump() if policy.ceiling else None
    return policy.default, ceiling, unusable.get(kind)


async def _policy_and_agencies(
    session: AsyncSession, agency_id: uuid.UUID, asked: list[uuid.UUID]
) -> tuple[_Stored | None, dict[uuid.UUID, bool]]:
    """The agency's stored policy and the agencies named (id → is the operator's), in one
    query: a post that gives its handling needs both before it writes."""

    async def load() -> tuple[_Stored | None, dict[uuid.UUID, bool]]:
        policy = (
            select(SharingPolicy.rules)
            .where(col(SharingPolicy.agency_id) == agency_id)
            .scalar_subquery()
        )
        one = select(sa.literal(1).label("one")).subquery()
        rows = (
            await session.exec(
                select(policy, Agency.id, Agency.is_operator).select_from(
                    one.outerjoin(Agency, col(Agency.id).in_(asked))
                )
            )
        ).all()
        rules_ = rows[0][0] if rows else None
        found = {row[1]: row[2] for row in rows if row[1] is not None}
        return (None if rules_ is None else stored_policy(rules_)), found

    key = ("sharing.policy+agencies", agency_id, frozenset(asked))
    return await memo.once(session, key, load)


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
    field: str = "handling",
) -> Handling:
    """The handling block to store: the given one or the policy default, checked in full."""
    found: dict[uuid.UUID, bool] | None = None
    if given is None:
        default, ceiling, unusable = await _policy_parts(session, principal.agency_id, kind)
    else:  # the agencies to check are known already: read them with the policy
        asked = _asked(list(given.recipient_agencies), addressed_to)
        stored, found = await _policy_and_agencies(session, principal.agency_id, asked)
        default, ceiling, unusable = _parts_of(stored, kind)
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
        found=found,
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
    found: dict[uuid.UUID, bool] | None = None,
) -> None:
    """TLP rules, policy ceiling, and that every named agency and group exists for us
    (`found`: what the caller read of the agencies named, as `require_agencies` takes)."""
    for name, values in (
        ("recipient_agencies", handling.recipient_agencies),
        ("recipient_groups", handling.recipient_groups),
    ):
        if twice := rules.duplicates(values):
            raise InvalidInput.on(f"{field}.{name}", f"{twice[0]} is named twice")
    rules.check_tlp_rules(handling, kind=kind, field=field)
    rules.check_ceiling(handling, ceiling, kind=kind, addressed_to=addressed_to, field=field)
    await require_agencies(
        session,
        handling.recipient_agencies,
        f"{field}.recipient_agencies",
        addressed_to=addressed_to,
        found=found,
    )
    if handling.recipient_groups:

        async def load() -> set[uuid.UUID]:
            query = select(SharingGroup.id).where(
                col(SharingGroup.id).in_(handling.recipient_groups),
                col(SharingGroup.deleted_at).is_(None),
                membership.visible_group_filter(principal),
            )
            return set((await session.exec(query)).all())

        asked = frozenset(handling.recipient_groups)
        usable = await memo.once(session, ("sharing.groups", principal.agency_id, asked), load)
        for index, group_id in enumerate(handling.recipient_groups):
            if group_id not in usable:
                raise InvalidInput.on(
                    f"{field}.recipient_groups.{index}", f"no sharing group {group_id} for you"
                )


# --- audiences --------------------------------------------------------------------------


async def audience_of(session: AsyncSession, facts: AlertFacts) -> list[tuple[Agency, list[Grant]]]:
    """Every agency that may see an alert with these facts, with the rules that let it."""
    members = await membership.live_group_members(session, facts.recipient_groups)
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


async def facts_of(session: AsyncSession, alert: HandledRecord) -> AlertFacts:
    """What the sharing rule needs to know about a stored alert: its columns and rows."""
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
    return AlertFacts.of(alert, agencies, groups)
