"""The read model of a trace request: what each party sees of the workflow."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts.models import Alert
from app.authz import parties
from app.authz.principal import Principal
from app.sharing import visibility
from app.traces.models import TraceMessage, TraceRequest, TraceResponse, TraceTransition
from app.traces.query import is_overdue
from app.traces.schemas import (
    TraceMessageRead,
    TraceRead,
    TraceResponseRead,
    TraceTransitionRead,
)


async def read_model(
    session: AsyncSession, principal: Principal, trace: TraceRequest, alert: Alert, *, full: bool
) -> TraceRead:
    """The workflow as its party sees it; `full` adds response, messages and history.

    The one read model of a trace request (get, list, console): where the sharing rule
    leaves the party only the alert's tombstone (`sees_content`: a withdrawn request, read
    by the requested agency), it leaves only the workflow's identity and history too.
    """
    side = parties.trace_side(trace, principal)
    view = visibility.view_of(alert, principal)
    content = view is visibility.View.content
    read = TraceRead(
        alert_id=trace.alert_id,
        tombstone=view is visibility.View.tombstone,
        title=alert.title if content else None,
        state=trace.state,
        version=trace.version,
        priority=trace.priority if content else None,
        requester_agency_id=trace.requester_agency_id,
        addressee_agency_id=trace.addressee_agency_id,
        direction="outgoing" if side == "requester" else "incoming",
        submitted_at=trace.submitted_at,
        ack_due=trace.ack_due if content else None,
        response_due=trace.response_due if content else None,
        acknowledged_at=trace.acknowledged_at,
        responded_at=trace.responded_at,
        closed_at=trace.closed_at,
        overdue=is_overdue(trace),
        ack_overdue_at=trace.ack_overdue_at,
        response_overdue_at=trace.response_overdue_at,
        forwarded_to=trace.forwarded_to_alert_id,
        forwarded_from=trace.forwarded_from_alert_id,
    )
    if not full:
        return read
    if content:
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
