"""The `forward` step: the requested agency hands a request to another agency of its country.

A forward spawns a new trace request rather than re-addressing this one. The request
and everything exchanged on it stay between the two agencies that exchanged it (the
requested agency keeps its record, which ends `forwarded`); the new request is the
requester's again, addressed to the new agency alone, with its own deadlines, answer and
history, and each request links to the other (`forwarded_to`, `forwarded_from`).
"""

from __future__ import annotations

import uuid

from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus
from app.alerts import query as alert_query
from app.alerts import service as alerts
from app.authz import parties
from app.authz.principal import Principal
from app.core.errors import InvalidInput
from app.core.types import utcnow
from app.sharing import service as sharing
from app.traces import query, workflow
from app.traces.models import TraceRequest
from app.traces.schemas import TraceForward


async def forward(
    session: AsyncSession, principal: Principal, alert_id: uuid.UUID, data: TraceForward
) -> TraceRequest:
    """End an open request as `forwarded` and send it anew to `data.agency_id`."""
    trace, _ = await query.get_trace(session, principal, alert_id)
    parties.require_trace_actor(trace, principal, "addressee")
    # The alert first, then its workflow: the order every change of the two takes.
    alert = await alert_query.get_visible_alert(session, principal, alert_id, for_change=True)
    locked = await query.lock_trace(session, alert_id)
    assert locked is not None  # a published trace request has its workflow
    source = locked.state
    workflow.require_step(locked, "forward")
    target = await _target(session, locked, data.agency_id)
    spawned = await alerts.create_forwarded_copy(session, principal, alert, target.id)
    new_trace = await session.get(TraceRequest, spawned.id)
    assert new_trace is not None  # started by the copy's publication
    new_trace.forwarded_from_alert_id = locked.alert_id
    session.add(new_trace)
    now = utcnow()
    locked.closed_at = now
    locked.forwarded_to_alert_id = spawned.id
    await workflow.finish_step(
        session,
        principal,
        locked,
        "forward",
        source,
        now,
        details={"to_agency": str(target.id), "new_request": str(spawned.id), "note": data.note},
    )
    return locked


async def _target(session: AsyncSession, trace: TraceRequest, agency_id: uuid.UUID) -> Agency:
    """Another active agency of the requested agency's own country; 422 otherwise."""
    field = "agency_id"
    own = await session.get(Agency, trace.addressee_agency_id)
    target = await session.get(Agency, agency_id)
    assert own is not None
    if target is None:
        raise InvalidInput.on(field, f"no agency {agency_id}")
    if target.id in (trace.addressee_agency_id, trace.requester_agency_id):
        raise InvalidInput.on(field, "forward to an agency that is not already a party")
    if target.country != own.country:
        raise InvalidInput.on(field, f"a request is forwarded within {own.country} only")
    if target.status != AgencyStatus.active:
        raise InvalidInput.on(field, "the agency is suspended")
    await sharing.require_agencies(session, [target.id], field, indexed=False)
    return target
