"""What a reader is shown of an alert: one decision for every channel that renders one.

An alert reaches a reader in one of three forms: its *content*; a *reference* (id, kind,
TLP, status, version and link: enough to fetch it through the API, which applies the
reader's own rights again); or a *tombstone* (a withdrawn alert: identity, withdrawal
time and reason). Channels that send later (webhook deliveries, their retries and
replays) render here at send time from the alert's current state, so what was true when
an event was written is never sent once it is no longer true (DESIGN §6).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus, ApiClient, User
from app.authz.principal import ROLE_SCOPES, ActorKind, Principal, Scope
from app.sharing import membership, visibility
from app.sharing import service as sharing
from app.sharing.handling import AlertFacts, AlertStatus, HandledRecord, Tlp


class RenderedAlert(HandledRecord, Protocol):
    """What rendering reads of an alert: its handling columns and what a delivery carries."""

    version: int
    title: str
    summary: str
    country: str
    occurred_at: datetime | None
    tags: list[str]
    details: dict[str, Any]
    published_at: datetime | None
    withdrawn_at: datetime | None
    withdrawal_reason: str | None


class Form(StrEnum):
    content = "content"
    reference = "reference"
    tombstone = "tombstone"


def read_form(alert: RenderedAlert, reader: Principal) -> Form:
    """The API's form of a visible alert (visibility.view_of): its content, its tombstone
    once withdrawn, or a reference (red, to a client without `alerts:read:red`)."""
    return Form(visibility.view_of(alert, reader).value)


def delivery_form(alert: RenderedAlert, reader: Principal) -> Form:
    """The form a delivery carries to a reader whose agency may see the alert now.

    A withdrawn alert travels as a tombstone (the originator's own endpoint included);
    a `red` one as a reference, whatever the reader's scopes; content only to a reader
    holding `alerts:read` that the API would show the content.
    """
    if alert.status == AlertStatus.withdrawn:
        return Form.tombstone
    if alert.tlp == Tlp.red or not reader.has_scope(Scope.alerts_read):
        return Form.reference
    if read_form(alert, reader) is not Form.content:
        return Form.reference
    return Form.content


@dataclass(frozen=True)
class HistoryLine:
    """One line of an alert's history of versions, as one reader is shown it."""

    at: datetime
    action: str
    agency_id: uuid.UUID | None  # whose act it was
    actor_name: str | None  # the person, shown to their own agency only
    details: dict[str, Any]


HISTORY_ACTIONS = ("alert.create", "alert.update", "alert.publish", "alert.withdraw")


def history_shown(
    alert: RenderedAlert, reader: Principal, records: Iterable[Any]
) -> list[HistoryLine]:
    """An alert's history of versions (audit records of it) as `reader` may be shown it.

    The originator's agency sees every change with who made it and which fields moved.
    Any other reader sees only what happened since publication, as versions and status:
    not the drafts, not who, not which fields (a changed `handling` would tell that the
    audience was changed, and the creation record its first marking). A person is named
    only to their own agency: a record made by another agency (the forwarder of a trace
    request, which creates the copy) shows that agency, not its staff.
    """
    own = reader.agency_id == alert.originator_agency_id
    lines: list[HistoryLine] = []
    for record in records:
        if record.action not in HISTORY_ACTIONS:
            continue
        if own:
            name = record.actor_name if record.agency_id == reader.agency_id else None
            lines.append(
                HistoryLine(record.at, record.action, record.agency_id, name, dict(record.details))
            )
            continue
        if alert.published_at is None or record.at < alert.published_at:
            continue
        if record.action == "alert.create" and record.details.get("status") != "published":
            continue
        kept = {k: record.details[k] for k in ("version", "status") if k in record.details}
        lines.append(HistoryLine(record.at, record.action, record.agency_id, None, kept))
    return lines


def shown_in_delivery_log(
    table: type[HandledRecord],
    alert_id: Mapped[uuid.UUID | None],
    agency_id: uuid.UUID,
    *,
    dialect: str,
) -> ColumnElement[bool]:
    """Which rows of its delivery log an agency is shown: a WHERE clause over `alert_id`
    (a column naming a row of `table`, the alert table).

    Rows of no alert (pings, hits, notices) and of alerts the agency may see now, a
    tombstone included. A message waiting for an embargo to end, or cancelled because the
    agency may no longer see its alert, is left out: its row alone would tell that the
    alert exists, that it was addressed to the agency and when its embargo ends.
    """
    visible = select(table.id).where(visibility.visible_filter(table, agency_id, dialect=dialect))
    return sa.or_(alert_id.is_(None), alert_id.in_(visible))


def reference(alert: RenderedAlert, base_url: str) -> dict[str, Any]:
    """Enough to fetch the alert through the API, nothing of its content."""
    return {
        "id": str(alert.id),
        "kind": alert.kind,
        "tlp": alert.tlp,
        "status": alert.status,
        "version": alert.version,
        "url": f"{base_url}/api/v1/alerts/{alert.id}",
    }


def tombstone(alert: RenderedAlert, base_url: str) -> dict[str, Any]:
    """A withdrawn alert as the API shows its tombstone: identity, time and reason."""
    return {
        "id": str(alert.id),
        "kind": alert.kind,
        "status": alert.status,
        "version": alert.version,
        "url": f"{base_url}/api/v1/alerts/{alert.id}",
        "tombstone": True,
        "originator_agency_id": str(alert.originator_agency_id),
        "withdrawn_at": alert.withdrawn_at.isoformat() if alert.withdrawn_at else None,
        "withdrawal_reason": alert.withdrawal_reason,
    }


def content(alert: RenderedAlert, base_url: str) -> dict[str, Any]:
    """The alert's content as a delivery carries it."""
    return reference(alert, base_url) | {
        "title": alert.title,
        "summary": alert.summary,
        "country": alert.country,
        "occurred_at": alert.occurred_at.isoformat() if alert.occurred_at else None,
        "tags": alert.tags,
        "originator_agency_id": str(alert.originator_agency_id),
        "details": alert.details,
    }


def render(alert: RenderedAlert, form: Form, base_url: str) -> dict[str, Any]:
    """The alert in `form`."""
    if form is Form.content:
        return content(alert, base_url)
    if form is Form.tombstone:
        return tombstone(alert, base_url)
    return reference(alert, base_url)


# --- deliveries -------------------------------------------------------------------------


@dataclass(frozen=True)
class Reach:
    """What the sharing rule needs about one alert, loaded once for all its readers."""

    facts: AlertFacts
    live_group_members: Mapping[uuid.UUID, frozenset[uuid.UUID]]


async def reach_of(session: AsyncSession, alert: RenderedAlert) -> Reach:
    """The alert's sharing facts and the current members of its recipient groups."""
    facts = await sharing.facts_of(session, alert)
    return Reach(facts, await membership.live_group_members(session, facts.recipient_groups))


def may_see(reach: Reach, agency: Agency, at: datetime) -> bool:
    """The sharing rule (the API's own predicate), as of `at`, for one agency."""
    return may_see_agency(reach, agency.id, active=agency.status == AgencyStatus.active, at=at)


def may_see_agency(reach: Reach, agency_id: uuid.UUID, *, active: bool, at: datetime) -> bool:
    """`may_see` for an agency known by its id and whether it is active."""
    return visibility.can_see(
        reach.facts,
        agency_id,
        agency_active=active,
        live_group_members=reach.live_group_members,
        now=at,
    )


@dataclass(frozen=True)
class Verdict:
    """Send `body` now, or wait until `defer_until`, or never (`refused` says why)."""

    body: dict[str, Any] | None = None
    defer_until: datetime | None = None
    refused: str | None = None


def for_delivery(
    alert: RenderedAlert,
    reach: Reach,
    agency: Agency,
    reader: Principal,
    *,
    now: datetime,
    base_url: str,
) -> Verdict:
    """What a delivery about `alert` to `agency`'s endpoint may carry, decided now."""
    if may_see(reach, agency, now):
        return Verdict(body=render(alert, delivery_form(alert, reader), base_url))
    until = alert.embargo_until
    if until is not None and until > now and may_see(reach, agency, until):
        # Embargoed again (or longer) since the event: it is due when the embargo ends.
        return Verdict(defer_until=until)
    return Verdict(refused="access withdrawn before sending")


def subscriber(
    agency_id: uuid.UUID, manager: User | ApiClient | None, *, name: str = "subscription"
) -> Principal:
    """The reader a subscription stands for: its agency, with its manager's live rights.

    A subscription carries content only while the principal that manages it (who
    created it or last changed it) may itself read alerts: a client holding only
    `webhooks:manage` gets references, and so does a subscription whose manager has
    left, been deactivated or revoked.
    """
    if isinstance(manager, User) and manager.agency_id == agency_id:
        if manager.is_active and manager.deleted_at is None:
            role, scopes = manager.role, ROLE_SCOPES[manager.role]
            return Principal(ActorKind.user, manager.id, agency_id, role, scopes, name, "")
    if isinstance(manager, ApiClient) and manager.agency_id == agency_id:
        if manager.revoked_at is None:
            known = {s.value for s in Scope}
            scopes = frozenset(Scope(s) for s in manager.scopes.split() if s in known)
            return Principal(ActorKind.client, manager.id, agency_id, None, scopes, name, "")
    return Principal(ActorKind.client, uuid.UUID(int=0), agency_id, None, frozenset(), name, "")


async def managers(
    session: AsyncSession, wanted: Iterable[tuple[ActorKind | None, uuid.UUID | None]]
) -> dict[tuple[ActorKind, uuid.UUID], User | ApiClient]:
    """The users and API clients named as subscription managers, by (kind, id)."""
    pairs = list(wanted)
    users = {m for kind, m in pairs if kind == ActorKind.user and m is not None}
    clients = {m for kind, m in pairs if kind == ActorKind.client and m is not None}
    found: dict[tuple[ActorKind, uuid.UUID], User | ApiClient] = {}
    if users:
        for user in (await session.exec(select(User).where(col(User.id).in_(users)))).all():
            found[ActorKind.user, user.id] = user
    if clients:
        query = select(ApiClient).where(col(ApiClient.id).in_(clients))
        for client in (await session.exec(query)).all():
            found[ActorKind.client, client.id] = client
    return found
