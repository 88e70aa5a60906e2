"""Typed guard dependencies of the trace-request routes: the request, as one of its parties.

`TraceParty` loads a trace request through the loader the console calls too
(`query.get_trace`): 404 unless the alert is visible to the caller's agency and that
agency is one of the request's two parties.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from app.alerts.deps import AlertReader
from app.authz.deps import DeferredScope
from app.authz.principal import Principal, Scope
from app.core.db import SessionDep
from app.traces import query

# Taking a step: `traces:write` is checked with the step's side once the request is
# found (app/authz/parties.py), so a request of other agencies stays a 404.
TraceActor = Annotated[Principal, DeferredScope(Scope.traces_write)]


async def get_trace_party(
    alert_id: uuid.UUID, session: SessionDep, principal: AlertReader
) -> query.PartyTrace:
    """The trace request of the path, if the caller's agency is a party; 404 otherwise."""
    return await query.get_trace(session, principal, alert_id)


TraceParty = Annotated[query.PartyTrace, Depends(get_trace_party)]
