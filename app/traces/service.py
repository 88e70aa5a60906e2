"""The tracing workflow: submitted → acknowledged → responded → closed (+ info, withdrawal)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts.models import Alert, AlertStatus
from app.audit import service as audit
from app.core.config import get_settings
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.pagination import decode_cursor, encode_cursor
from app.core.principal import Principal
from app.core.types import parse_utc, utcnow
from app.events import service as events
from app.events.models import EventType
from app.sharing import parties, rules, visibility
from app.traces.models import (
    OPEN_STATES,
    TraceMessage,
    TraceRequest,
    TraceResponse,
    TraceState,
    TraceTransition,
)
from app.traces.schemas import (
    TraceMessageRead,
    TraceRead,
    TraceRespond,
    TraceResponseRead,
    TraceTransitionRead,
)


@dataclass(frozen=True)
class Step:
    side: parties.TraceSide
    sources: tuple[TraceState, ...]
    target: TraceState
    event: EventType


STEPS: dict[str, Step] = {
    "acknowledge": Step(
        "addressee", (TraceState.submitted,), TraceState.acknowledged, EventType.trace_acknowledged
    ),
    "request_info": Step(
        "addressee",
        (TraceState.submitted, TraceState.acknowledged),
        TraceState.info_requested,
        EventType.trace_info_requested,
    ),
    "respond": Step("addressee", OPEN_STATES, TraceState.responded, EventType.trace_responded),
    "provide_info": Step(
        "requester",
        (TraceState.info_requested,),
        TraceState.acknowledged,
        EventType.trace_info_provided,
    ),
    "close": Step("requester", (TraceState.responded,), TraceState.closed, EventType.trace_closed),
    "withdraw": Step("requester", OPEN_STATES, TraceState.withdrawn, EventType.trace_withdrawn),
}


def default_deadlines(priority: str, start: datetime) -> tuple[datetime, datetime]:
    """(ack_due, response_due) from the settings: routine 5/30 days, urgent 1/3 by default."""
    s = get_settings()
    if priority == "urgent":
        return start + timedelta(days=s.trace_urgent_ack_days), start + timedelta(
            days=s.trace_urgent_response_days
        )
    return start + timedelta(days=s.trace_routine_ack_days), start + timedelta(
        days=s.trace_routine_response_days
    )


def _due(details: dict[str, object], name: str) -> datetime | None:
    """A requested deadline of stored details, in UTC; 422 naming it when unreadable (a
    draft stored before deadlines were bounded may hold one UTC cannot)."""
    value = details.get(name)
    if not value:
        return None
    try:
        return parse_utc(str(value))
    except ValueError as exc:
        raise InvalidInput.on(f"body.details.{name}", str(exc)) from exc


def check_requested_deadlines(details: dict[str, object], now: datetime) -> None:
    """A request may set its own due dates, but never in the past (422 naming the field)."""
    ack, response = _due(details, "ack_due"), _due(details, "response_due")
    for name, value in (("ack_due", ack), ("response_due", response)):
        if value and value < now:
            raise InvalidInput.on(f"body.details.{name}", "must not be earlier than now")
    if ack and response and response < ack:
        raise InvalidInput.on("body.details.response_due", "must not be earlier than ack_due")


async def submit(session: AsyncSession, principal: Principal, alert: Alert) -> TraceRequest:
    """Start the workflow when a trace-request alert is published."""
    details = alert.details
    now = utcnow()
    ack_due, response_due = default_deadlines(str(details.get("priority", "routine")), now)
    ack_due = _due(details, "ack_due") or ack_due
    response_due = _due(details, "response_due") or response_due
    assert alert.addressed_to_agency_id is not None  # required by the schema
    trace = TraceRequest(
        alert_id=alert.id,
        requester_agency_id=alert.originator_agency_id,
        addressee_agency_id=alert.addressed_to_agency_id,
        priority=str(details.get("priority", "routine")),
        submitted_at=now,
        ack_due=ack_due,
        response_due=response_due,
        updated_at=now,
    )
    session.add(trace)
    await session.flush()
    await _log(session, trace, principal, "submit", None)
    await events.record(
        session,
        EventType.trace_submitted,
        alert_id=alert.id,
        agency_ids=[trace.requester_agency_id, trace.addressee_agency_id],
        data={"state": trace.state, "ack_due": ack_due.isoformat()},
    )
    return trace


async def get_trace(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID
) -> tuple[TraceRequest, Alert]:
    """A trace request the principal's agency is a party to (and may see), or 404."""
    rules.require_alert_reader(principal)
    dialect = session.bind.dialect.name
    query = (
        select(TraceRequest, Alert)
        .join(Alert, col(Alert.id) == col(TraceRequest.alert_id))
        .where(
            TraceRequest.alert_id == alert_id,
            visibility.visible_filter(principal.agency_id, dialect=dialect),
            parties.trace_party_filter(principal.agency_id),
        )
    )
    row = (await session.exec(query)).first()
    if row is None:
        raise NotFound("No such trace request.")
    return row[0], row[1]


async def act(
    session: AsyncSession,
    principal: Principal,
    alert_id: uuid.UUID,
    action: str,
    *,
    text: str | None = None,
    response: TraceRespond | None = None,
) -> TraceRequest:
    """Move the workflow one step; a step from the wrong state is refused with 409."""
    step = STEPS[action]
    trace, alert = await get_trace(session, principal, alert_id)
    parties.require_trace_actor(trace, principal, step.side)
    if trace.state not in step.sources:
        allowed = ", ".join(s.value for s in step.sources)
        raise Conflict(
            f"Cannot {action.replace('_', ' ')} a {trace.state} request (only {allowed})."
        )
    now = utcnow()
    source = trace.state
    if action in ("request_info", "provide_info"):
        kind = "question" if action == "request_info" else "answer"
        session.add(
            TraceMessage(
                alert_id=trace.alert_id,
                kind=kind,
                body=text or "",
                agency_id=principal.agency_id,
                author_id=principal.id,
            )
        )
    if action in ("acknowledge", "request_info", "respond") and trace.acknowledged_at is None:
        trace.acknowledged_at = now
    if action == "respond":
        assert response is not None
        session.add(
            TraceResponse(
                alert_id=trace.alert_id,
                outcome=response.outcome.value,
                findings=response.findings.model_dump(mode="json", exclude_none=True),
                reasons=response.reasons,
                use_restrictions=response.use_restrictions,
                responded_by=principal.id,
                responded_at=now,
            )
        )
        trace.responded_at = now
    if action == "close":
        trace.closed_at = now
    if action == "withdraw":
        trace.closed_at = now
        if alert.status == AlertStatus.published:
            alert.status = AlertStatus.withdrawn
            alert.withdrawn_at = now
            alert.withdrawal_reason = text
            alert.version += 1
            alert.updated_at = now
            session.add(alert)
    trace.state = step.target
    trace.version += 1
    trace.updated_at = now
    session.add(trace)
    await session.flush()
    await _log(session, trace, principal, action, source)
    await audit.record(
        session,
        principal,
        f"trace.{action}",
        object_type="trace_request",
        object_id=trace.alert_id,
        details={"from": source, "to": trace.state},
    )
    await events.record(
        session,
        step.event,
        alert_id=trace.alert_id,
        agency_ids=[trace.requester_agency_id, trace.addressee_agency_id],
        data={"state": trace.state, "from": source},
    )
    return trace


async def on_alert_withdrawn(session: AsyncSession, principal: Principal, alert: Alert) -> None:
    """Withdrawing a trace-request alert also ends its open workflow."""
    trace = await session.get(TraceRequest, alert.id)
    if trace is None or trace.state not in OPEN_STATES:
        return
    source = trace.state
    trace.state = TraceState.withdrawn
    trace.closed_at = utcnow()
    trace.version += 1
    session.add(trace)
    await session.flush()
    await _log(session, trace, principal, "withdraw", source)


async def _log(
    session: AsyncSession,
    trace: TraceRequest,
    principal: Principal | None,
    action: str,
    source: str | None,
) -> None:
    session.add(
        TraceTransition(
            alert_id=trace.alert_id,
            action=action,
            from_state=source,
            to_state=trace.state,
            version=trace.version,
            actor_id=principal.id if principal else None,
            actor_kind=principal.kind if principal else "worker",
            agency_id=principal.agency_id if principal else None,
        )
    )
    await session.flush()


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
    dialect = session.bind.dialect.name
    query = (
        select(TraceRequest, Alert)
        .join(Alert, col(Alert.id) == col(TraceRequest.alert_id))
        .where(
            visibility.visible_filter(principal.agency_id, dialect=dialect),
            parties.trace_party_filter(principal.agency_id),
        )
    )
    if direction == "incoming":
        query = query.where(TraceRequest.addressee_agency_id == principal.agency_id)
    elif direction == "outgoing":
        query = query.where(TraceRequest.requester_agency_id == principal.agency_id)
    if state:
        query = query.where(TraceRequest.state == state.value)
    if overdue is not None:
        flagged = sa.and_(
            col(TraceRequest.state).in_([s.value for s in OPEN_STATES]),
            _overdue_clause(),
        )
        query = query.where(flagged if overdue else sa.not_(flagged))
    if cursor:
        at, row_id = decode_cursor(cursor)
        query = query.where(
            sa.tuple_(TraceRequest.submitted_at, TraceRequest.alert_id) < sa.tuple_(at, row_id)
        )
    query = query.order_by(
        col(TraceRequest.submitted_at).desc(), col(TraceRequest.alert_id).desc()
    ).limit(limit + 1)
    rows = (await session.exec(query)).all()
    if len(rows) > limit:
        last = rows[limit - 1][0]
        return rows[:limit], encode_cursor(last.submitted_at, last.alert_id)
    return rows, None


async def read_model(
    session: AsyncSession, principal: Principal, trace: TraceRequest, alert: Alert, *, full: bool
) -> TraceRead:
    """The workflow as its party sees it; `full` adds response, messages and history."""
    side = parties.trace_side(trace, principal)
    read = TraceRead(
        alert_id=trace.alert_id,
        title=alert.title,
        state=trace.state,
        version=trace.version,
        priority=trace.priority,
        requester_agency_id=trace.requester_agency_id,
        addressee_agency_id=trace.addressee_agency_id,
        direction="outgoing" if side == "requester" else "incoming",
        submitted_at=trace.submitted_at,
        ack_due=trace.ack_due,
        response_due=trace.response_due,
        acknowledged_at=trace.acknowledged_at,
        responded_at=trace.responded_at,
        closed_at=trace.closed_at,
        overdue=is_overdue(trace),
        ack_overdue_at=trace.ack_overdue_at,
        response_overdue_at=trace.response_overdue_at,
    )
    if not full:
        return read
    response = await session.get(TraceResponse, trace.alert_id)
    if response is not None:
        read.response = TraceResponseRead.model_validate(response)
    messages = await session.exec(
        select(TraceMessage)
        .where(TraceMessage.alert_id == trace.alert_id)
        .order_by(col(TraceMessage.created_at), col(TraceMessage.id))
    )
    read.messages = [TraceMessageRead.model_validate(m) for m in messages.all()]
    steps = await session.exec(
        select(TraceTransition)
        .where(TraceTransition.alert_id == trace.alert_id)
        .order_by(col(TraceTransition.version))
    )
    read.transitions = [TraceTransitionRead.model_validate(t) for t in steps.all()]
    return read


async def flag_overdue(session: AsyncSession, now: datetime | None = None) -> int:
    """Raise each passed, unmet deadline once and record `trace.overdue` (a worker job)."""
    now = now or utcnow()
    flagged = 0
    open_states = [s.value for s in OPEN_STATES]
    ack_late = select(TraceRequest).where(
        col(TraceRequest.state) == TraceState.submitted.value,
        col(TraceRequest.ack_due) < now,
        col(TraceRequest.ack_overdue_at).is_(None),
    )
    response_late = select(TraceRequest).where(
        col(TraceRequest.state).in_(open_states),
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
