"""THE visibility rule of DESIGN §4, twice: as one SQL filter and as a Python predicate.

Agency A may see alert x when A originated x (drafts included), or, once x is published
(or withdrawn, as a tombstone) and its embargo has passed, when x is a trace request
addressed to A, or x is addressed to recipients and A is named or is a current member
of a named live group, or x is addressed to the community and A is active.

Both forms take the alert as the handling columns it has (`HandledRecord`): the SQL form
the table, the Python forms a row or its `AlertFacts`. Every alert query starts from
app/alerts/visible.py, which binds the SQL form to the alert table; deliveries use
`can_see()`. A property test keeps the two equal.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from app.agencies.models import Agency, AgencyStatus
from app.authz.principal import ActorKind, Principal, Scope
from app.core.types import utcnow
from app.sharing.handling import (
    RELEASED,
    AlertFacts,
    AlertKind,
    AlertStatus,
    Audience,
    HandledRecord,
    Tlp,
)
from app.sharing.models import (
    AlertRecipientAgency,
    AlertRecipientGroup,
    SharingGroup,
    SharingGroupMember,
)


@dataclass(frozen=True)
class Grant:
    """One reason an agency may see an alert."""

    rule: str  # originator | addressee | recipient_agency | group_member | community
    group_id: uuid.UUID | None = None


def grants(
    alert: AlertFacts,
    agency_id: uuid.UUID,
    *,
    agency_active: bool,
    live_group_members: Mapping[uuid.UUID, frozenset[uuid.UUID]],
    now: datetime | None = None,
) -> list[Grant]:
    """Every rule that lets `agency_id` see `alert` (empty: it may not).

    `live_group_members` maps each live (not deleted) group to its current members;
    groups missing from it grant nothing.
    """
    if alert.originator == agency_id:
        return [Grant("originator")]
    if alert.status not in RELEASED:
        return []
    now = now or utcnow()
    if alert.embargo_until is not None and alert.embargo_until > now:
        return []
    found: list[Grant] = []
    if alert.kind == AlertKind.trace_request and alert.addressed_to == agency_id:
        found.append(Grant("addressee"))
    if alert.audience == Audience.recipients:
        if agency_id in alert.recipient_agencies:
            found.append(Grant("recipient_agency"))
        for group_id in sorted(alert.recipient_groups):
            if agency_id in live_group_members.get(group_id, frozenset()):
                found.append(Grant("group_member", group_id))
    if alert.audience == Audience.community and agency_active:
        found.append(Grant("community"))
    return found


def can_see(
    alert: AlertFacts,
    agency_id: uuid.UUID,
    *,
    agency_active: bool,
    live_group_members: Mapping[uuid.UUID, frozenset[uuid.UUID]],
    now: datetime | None = None,
) -> bool:
    """The predicate form of the rule (deliveries, previews, explanations)."""
    return bool(
        grants(
            alert,
            agency_id,
            agency_active=agency_active,
            live_group_members=live_group_members,
            now=now,
        )
    )


def _named_or_group_member(
    table: type[HandledRecord], agency_id: uuid.UUID, dialect: str
) -> ColumnElement[bool]:
    """A is a named recipient, or a current member of a live recipient group."""
    if dialect == "postgresql":
        # One array overlap per row: the alert's named agencies and groups against the
        # agency itself plus its live groups (an InitPlan, read once per query). Two
        # correlated sub-queries here make PostgreSQL hash every alert reachable through
        # the agency's groups before it can return the first page.
        live_groups = (
            select(SharingGroupMember.group_id)
            .join(SharingGroup, col(SharingGroup.id) == col(SharingGroupMember.group_id))
            .where(
                SharingGroupMember.agency_id == agency_id, col(SharingGroup.deleted_at).is_(None)
            )
        )
        keys = sa.func.array_prepend(
            sa.cast(sa.literal(agency_id), sa.Uuid()),
            sa.func.array(live_groups.scalar_subquery()),
        )
        return col(table.reader_keys).op("&&")(keys)
    named = sa.exists().where(
        col(AlertRecipientAgency.alert_id) == table.id,
        col(AlertRecipientAgency.agency_id) == agency_id,
    )
    via_group = sa.exists().where(
        col(AlertRecipientGroup.alert_id) == table.id,
        col(SharingGroupMember.group_id) == AlertRecipientGroup.group_id,
        col(SharingGroupMember.agency_id) == agency_id,
        col(SharingGroup.id) == AlertRecipientGroup.group_id,
        col(SharingGroup.deleted_at).is_(None),
    )
    return sa.or_(named, via_group)


def visible_filter(
    table: type[HandledRecord],
    agency_id: uuid.UUID,
    now: datetime | None = None,
    *,
    dialect: str,
) -> ColumnElement[bool]:
    """The SQL form of the rule: a WHERE clause over `table` (the alert table) for agency
    `agency_id`. Callers use the binding in app/alerts/visible.py."""
    now = now or utcnow()
    agency_active = sa.exists().where(
        col(Agency.id) == agency_id, col(Agency.status) == AgencyStatus.active
    )
    released = sa.and_(
        col(table.status).in_(RELEASED),
        sa.or_(col(table.embargo_until).is_(None), col(table.embargo_until) <= now),
        sa.or_(
            sa.and_(
                col(table.kind) == AlertKind.trace_request,
                col(table.addressed_to_agency_id) == agency_id,
            ),
            sa.and_(
                col(table.audience) == Audience.recipients,
                _named_or_group_member(table, agency_id, dialect),
            ),
            sa.and_(col(table.audience) == Audience.community, agency_active),
        ),
    )
    return sa.or_(col(table.originator_agency_id) == agency_id, released)


def reader_keys(
    recipient_agencies: list[uuid.UUID], recipient_groups: list[uuid.UUID]
) -> list[uuid.UUID]:
    """The `alert.reader_keys` value for an alert's named recipients."""
    return list(dict.fromkeys([*recipient_agencies, *recipient_groups]))


class View(StrEnum):
    """How much of a visible alert a principal is shown."""

    content = "content"
    reference = "reference"  # id, kind, tlp, status, version and a link: no content
    tombstone = "tombstone"  # identity, withdrawal time and reason


def reads_red(principal: Principal) -> bool:
    """Whether the principal may read TLP:RED content of alerts its agency may see.

    A user's role decides (every role reads what its agency may see); an API client only
    with the `alerts:read:red` scope its agency's administrator granted explicitly.
    """
    return principal.kind != ActorKind.client or principal.has_scope(Scope.alerts_read_red)


def view_of(alert: HandledRecord, principal: Principal) -> View:
    """THE content-level rule for a visible alert, used by every read path (list, get,
    search, STIX export, TAXII): a withdrawn alert is a tombstone for all but its
    originator; a red one is a reference for a principal that may not read red."""
    if alert.status == AlertStatus.withdrawn and alert.originator_agency_id != principal.agency_id:
        return View.tombstone
    if alert.tlp == Tlp.red and not reads_red(principal):
        return View.reference
    return View.content


def content_filter(
    table: type[HandledRecord], agency_id: uuid.UUID, *, principal: Principal | None = None
) -> ColumnElement[bool]:
    """The SQL form of `view_of(...) is View.content` over `table` (the alert table): only
    these rows may be matched on their content (searching a hidden field would reveal it).

    For agency `agency_id` (a withdrawn alert is a tombstone but to its originator), and,
    given the reading `principal`, also no red content for one that may not read red.
    """
    shown = sa.or_(
        col(table.originator_agency_id) == agency_id, col(table.status) != AlertStatus.withdrawn
    )
    if principal is None or reads_red(principal):
        return shown
    return sa.and_(shown, col(table.tlp) != Tlp.red)


def sees_content(alert: HandledRecord, principal: Principal) -> bool:
    """Whether the principal is shown a visible alert's content (not a tombstone or reference)."""
    return view_of(alert, principal) is View.content


def sees_recipient_lists(alert: HandledRecord, principal: Principal) -> bool:
    """Only the originator sees whom an alert was addressed to."""
    return alert.originator_agency_id == principal.agency_id
