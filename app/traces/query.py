"""Finding trace requests: one by its alert (locked for a step or not), pages of them, overdue."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import NamedTuple

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import visible
from app.alerts.models import Alert
from app.authz import rules
from app.authz.principal import Principal
from app.core import concurrency
from app.core.errors import NotFound
from app.core.pagination import Keyset
from app.core.types import utcnow
from app.events import service as events
from app.events.models import EventType
from app.traces.models import OPEN_STATES, TraceRequest, TraceState


class PartyTrace(NamedTuple):
    """A trace request its caller is a party to, and its (visible) alert."""

    trace: TraceRequest
    alert: Alert


def trace_party_filter(agency_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """Trace requests the agency asked or is asked (its two parties: app/authz/parties.py)."""
    return sa.or_(
        col(TraceRequest.requester_agency_id) == agency_id,
        col(TraceRequest.addressee_agency_id) == agency_id,
    )


async def get_trace(
    session: AsyncSession,
    principal: Principal,
    alert_id: uuid.UUID,
    *,
    for_change: bool = False,
) -> PartyTrace:
    """A trace request the principal's agency is a party to (and may see), or 404.

    `for_change` locks the workflow row (app/core/concurrency.py) so that the step's
    state check and its change are one atomic move.
    """
    rules.require_alert_reader(principal)
    dialect = session.get_bind().dialect.name
    query = (
        select(TraceRequest, Alert)
        .join(Alert, col(Alert.id) == col(TraceRequest.alert_id))
        .where(
            TraceRequest.alert_id == alert_id,
            visible.visible_filter(principal.agency_id, dialect=dialect),
            trace_party_filter(principal.agency_id),
        )
    )
    if for_change:
        query = concurrency.for_change(query, TraceRequest)
    row = (await session.exec(query)).first()
    if row is None:
        raise NotFound("No such trace request.")
    return PartyTrace(row[0], row[1])


async def lock_trace(session: AsyncSession, alert_id: uuid.UUID) -> TraceRequest | None:
    """The workflow of an alert the caller has already locked and authorised, locked too."""
    query = concurrency.for_change(select(TraceRequest).where(TraceRequest.alert_id == alert_id))
    return (await session.exec(query)).first()


def _overdue_clause() -> sa.ColumnElement[bool]:
    return sa.or_(
        sa.and_(
            col(TraceRequest.ack_overdue_at).is_not(None),
            col(TraceRequest.acknowledged_at).is_(None),
        ),
        sa.and_(
            col(TraceRequest.response_overdue_at).is_not(None),
            col(TraceRequest.responded_at).is_(None),
        ),
    )


def is_overdue(trace: TraceRequest) -> bool:
    """A flagged deadline still unmet, on a request still open."""
    if trace.state not in OPEN_STATES:
        return False
    return (trace.ack_overdue_at is not None and trace.acknowledged_at is None) or (
        trace.response_overdue_at is not None and trace.responded_at is None
    )


# The list's order, newest first; its rows are (request, alert), keyed by the request.
TRACE_ORDER = Keyset(
    (TraceRequest.submitted_at, TraceRequest.alert_id), newest_first=True, keyed=itemgetter(0)
)


async def list_traces(
    session: AsyncSession,
    principal: Principal,
    *,
    direction: str | None,
    state: TraceState | None,
    overdue: bool | None,
    limit: int,
    cursor: str | None,
) -> tuple[Sequence[tuple[TraceRequest, Alert]], str | None]:
    """Trace requests the principal's agency asked (outgoing) or is asked (incoming)."""
    rules.require_alert_reader(principal)
    dialect = session.get_bind().dialect.name
    query = (
        select(TraceRequest, Alert)
        .join(Alert, col(Alert.id) == col(TraceRequest.alert_id))
        .where(
            visible.visible_filter(principal.agency_id, dialect=dialect),
            trace_party_filter(principal.agency_id),
        )
    )
    if direction == "incoming":
        query = query.where(TraceRequest.addressee_agency_id == principal.agency_id)
    elif direction == "outgoing":
        query = query.where(TraceRequest.requester_agency_id == principal.agency_id)
    if state:
        query = query.where(TraceRequest.state == state)
    if overdue is not None:
        flagged = sa.and_(
            col(TraceRequest.state).in_(OPEN_STATES),
            _overdue_clause(),
        )
        query = query.where(flagged if overdue else sa.not_(flagged))
    return await TRACE_ORDER.fetch(session, query, limit=limit, cursor=cursor)


async def flag_overdue(session: AsyncSession, now: datetime | None = None) -> int:
    """Raise each passed, unmet deadline once and record `trace.overdue` (a worker job)."""
    now = now or utcnow()
    flagged = 0
    ack_late = select(TraceRequest).where(
        col(TraceRequest.state) == TraceState.submitted,
        col(TraceRequest.ack_due) < now,
        col(TraceRequest.ack_overdue_at).is_(None),
    )
    response_late = select(TraceRequest).where(
        col(TraceRequest.state).in_(OPEN_STATES),
        col(TraceRequest.response_due) < now,
        col(TraceRequest.response_overdue_at).is_(None),
    )
    for which, query in (("ack", ack_late), ("response", response_late)):
        for trace in (await session.exec(query.with_for_update(skip_locked=True))).all():
            setattr(trace, f"{which}_overdue_at", now)
            trace.updated_at = now
            session.add(trace)
            await events.record(
                session,
                EventType.trace_overdue,
                alert_id=trace.alert_id,
                agency_ids=[trace.requester_agency_id, trace.addressee_agency_id],
                data={"deadline": which, "due": getattr(trace, f"{which}_due").isoformat()},
            )
            flagged += 1
    await session.flush()
    return flagged
