"""The tracing workflow: submitted → acknowledged → responded → closed (+ info, withdrawal).

Each step is a row of `STEPS` (who takes it, from which states, into which, with which
event) and, for the plain steps, one small transition function doing what is particular
to it; `act` checks and dispatches, `finish_step` does what every step shares.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts import lifecycle
from app.alerts import query as alert_query
from app.alerts import service as alerts
from app.alerts.deadlines import requested_due
from app.alerts.models import Alert
from app.alerts.schemas import Priority
from app.audit import service as audit
from app.authz import parties
from app.authz.principal import ActorKind, Principal
from app.core import concurrency
from app.core.config import Settings
from app.core.db import settings_of
from app.core.errors import Conflict
from app.core.types import utcnow
from app.events import service as events
from app.events.models import EventType
from app.traces.models import (
    OPEN_STATES,
    MessageKind,
    TraceMessage,
    TraceRequest,
    TraceResponse,
    TraceState,
    TraceTransition,
)
from app.traces.query import get_trace, lock_trace
from app.traces.schemas import TraceRespond


@dataclass(frozen=True)
class StepCall:
    """One plain step being taken: by whom, on which (locked) workflow, when, with what."""

    session: AsyncSession
    principal: Principal
    trace: TraceRequest
    now: datetime
    text: str | None = None
    response: TraceRespond | None = None


def _first_answer(call: StepCall) -> None:
    """Any answer of the requested agency acknowledges the request, once."""
    if call.trace.acknowledged_at is None:
        call.trace.acknowledged_at = call.now


def _add_message(call: StepCall, kind: MessageKind) -> None:
    """A question or answer of the information exchange, by the acting agency."""
    call.session.add(
        TraceMessage(
            alert_id=call.trace.alert_id,
            kind=kind,
            body=call.text or "",
            agency_id=call.principal.agency_id,
            author_id=call.principal.id,
        )
    )


def _acknowledge(call: StepCall) -> None:
    """Requested agency: acknowledge receipt."""
    _first_answer(call)


def _request_info(call: StepCall) -> None:
    """Requested agency: ask the requester a question (which acknowledges too)."""
    _add_message(call, MessageKind.question)
    _first_answer(call)


def _respond(call: StepCall) -> None:
    """Requested agency: record the answer (which acknowledges too)."""
    _first_answer(call)
    assert call.response is not None  # the route requires a body for this step
    call.session.add(
        TraceResponse(
            alert_id=call.trace.alert_id,
            outcome=call.response.outcome,
            findings=call.response.findings.model_dump(mode="json", exclude_none=True),
            reasons=call.response.reasons,
            use_restrictions=call.response.use_restrictions,
            responded_by=call.principal.id,
            responded_at=call.now,
        )
    )
    call.trace.responded_at = call.now


def _provide_info(call: StepCall) -> None:
    """Requester: answer the requested agency's question."""
    _add_message(call, MessageKind.answer)


def _close(call: StepCall) -> None:
    """Requester: close a responded request."""
    call.trace.closed_at = call.now


@dataclass(frozen=True)
class Step:
    """A workflow step: who takes it, from which states, into which, with which event."""

    side: parties.TraceSide
    sources: tuple[TraceState, ...]
    target: TraceState
    event: EventType
    # None for the steps that change the alert too and go through their own paths
    # (`withdraw` below, via the alert service; `app.traces.forward`).
    apply: Callable[[StepCall], None] | None = None


STEPS: dict[str, Step] = {
    "acknowledge": Step(
        "addressee",
        (TraceState.submitted,),
        TraceState.acknowledged,
        EventType.trace_acknowledged,
        _acknowledge,
    ),
    "request_info": Step(
        "addressee",
        (TraceState.submitted, TraceState.acknowledged),
        TraceState.info_requested,
        EventType.trace_info_requested,
        _request_info,
    ),
    "respond": Step(
        "addressee", OPEN_STATES, TraceState.responded, EventType.trace_responded, _respond
    ),
    "provide_info": Step(
        "requester",
        (TraceState.info_requested,),
        TraceState.acknowledged,
        EventType.trace_info_provided,
        _provide_info,
    ),
    "close": Step(
        "requester", (TraceState.responded,), TraceState.closed, EventType.trace_closed, _close
    ),
    "withdraw": Step("requester", OPEN_STATES, TraceState.withdrawn, EventType.trace_withdrawn),
    "forward": Step("addressee", OPEN_STATES, TraceState.forwarded, EventType.trace_forwarded),
}


def default_deadlines(
    priority: Priority, start: datetime, s: Settings
) -> tuple[datetime, datetime]:
    """(ack_due, response_due) from the settings: routine 5/30 days, urgent 1/3 by default."""
    if priority == Priority.urgent:
        return start + timedelta(days=s.trace_urgent_ack_days), start + timedelta(
            days=s.trace_urgent_response_days
        )
    return start + timedelta(days=s.trace_routine_ack_days), start + timedelta(
        days=s.trace_routine_response_days
    )


async def submit(session: AsyncSession, principal: Principal, alert: Alert) -> TraceRequest:
    """Start the workflow when a trace-request alert is published."""
    details = alert.details
    now = utcnow()
    priority = Priority(details.get("priority", Priority.routine))
    ack_due, response_due = default_deadlines(priority, now, settings_of(session))
    ack_due = requested_due(details, "ack_due") or ack_due
    response_due = requested_due(details, "response_due") or response_due
    assert alert.addressed_to_agency_id is not None  # required by the schema
    trace = TraceRequest(
        alert_id=alert.id,
        requester_agency_id=alert.originator_agency_id,
        addressee_agency_id=alert.addressed_to_agency_id,
        priority=priority,
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


def require_step(trace: TraceRequest, action: str) -> Step:
    """The step, if the request is in one of its source states; 409 otherwise."""
    step = STEPS[action]
    if trace.state not in step.sources:
        allowed = ", ".join(s.value for s in step.sources)
        raise Conflict(
            f"Cannot {action.replace('_', ' ')} a {trace.state} request (only {allowed})."
        )
    return step


async def act(
    session: AsyncSession,
    principal: Principal,
    alert_id: uuid.UUID,
    action: str,
    *,
    text: str | None = None,
    response: TraceRespond | None = None,
) -> TraceRequest:
    """Move the workflow one step; a step from the wrong state is refused with 409.

    Withdrawing and forwarding change the alert as well and go through their own paths
    (`withdraw_trace_request` below, `app.traces.forward`).
    """
    step = STEPS.get(action)
    if step is None or step.apply is None:
        raise ValueError(f"{action} is not a plain workflow step")
    trace, _alert = await get_trace(session, principal, alert_id, for_change=True)
    parties.require_trace_actor(trace, principal, step.side)
    require_step(trace, action)
    now = utcnow()
    source = trace.state
    step.apply(StepCall(session, principal, trace, now, text=text, response=response))
    await finish_step(session, principal, trace, action, source, now)
    return trace


async def finish_step(
    session: AsyncSession,
    principal: Principal,
    trace: TraceRequest,
    action: str,
    source: TraceState,
    now: datetime,
    *,
    details: dict[str, object] | None = None,
) -> None:
    """Enter the step's target state: version, history, audit record and event."""
    step = STEPS[action]
    trace.state = step.target
    concurrency.bump(trace, now)
    session.add(trace)
    await session.flush()
    await _log(session, trace, principal, action, source)
    await audit.record(
        session,
        principal,
        f"trace.{action}",
        object_type="trace_request",
        object_id=trace.alert_id,
        details={"from": source, "to": trace.state, **(details or {})},
    )
    await events.record(
        session,
        step.event,
        alert_id=trace.alert_id,
        agency_ids=[trace.requester_agency_id, trace.addressee_agency_id],
        data={"state": trace.state, "from": source, **(details or {})},
    )


async def withdraw_trace_request(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, reason: str
) -> Alert:
    """The requester's `withdraw` step: the alert's one withdraw path, taken as a step."""
    trace, _ = await get_trace(session, principal, alert_id)
    parties.require_trace_actor(trace, principal, "requester")
    alert = await alert_query.get_visible_alert(session, principal, alert_id, for_change=True)
    return await alerts.withdraw_locked(session, principal, alert, reason)


async def withdraw(
    session: AsyncSession, principal: Principal, trace: TraceRequest, now: datetime
) -> None:
    """End a locked, open workflow with its alert's withdrawal (the alert service's path)."""
    source = trace.state
    require_step(trace, "withdraw")
    trace.closed_at = now
    await finish_step(session, principal, trace, "withdraw", source, now)


async def lock_for_withdrawal(
    session: AsyncSession, alert: Alert
) -> lifecycle.FinishWithdrawal | None:
    """Lock the workflow of a (locked) alert being withdrawn, refusing (409) when it is no
    longer the requester's to withdraw; what to call once the alert is withdrawn."""
    trace = await lock_trace(session, alert.id)
    if trace is None:
        return None
    require_step(trace, "withdraw")

    async def finish(session: AsyncSession, principal: Principal, now: datetime) -> None:
        await withdraw(session, principal, trace, now)

    return finish


async def _log(
    session: AsyncSession,
    trace: TraceRequest,
    principal: Principal | None,
    action: str,
    source: TraceState | None,
) -> None:
    session.add(
        TraceTransition(
            alert_id=trace.alert_id,
            action=action,
            from_state=source,
            to_state=trace.state,
            version=trace.version,
            actor_id=principal.id if principal else None,
            actor_kind=principal.kind if principal else ActorKind.worker,
            agency_id=principal.agency_id if principal else None,
        )
    )
    await session.flush()
