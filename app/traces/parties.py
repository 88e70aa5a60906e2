"""A trace request's two parties: the requester and the requested agency.

A trace request's workflow, response and information exchange belong to its two
parties only, whatever the alert's audience. Everyone else is answered 404.
"""

from __future__ import annotations

import uuid
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from app.authz.principal import Principal, Scope
from app.core.errors import Forbidden, NotFound
from app.traces.models import TraceRequest

TraceSide = Literal["requester", "addressee"]


def trace_party_filter(agency_id: uuid.UUID) -> ColumnElement[bool]:
    """Trace requests the agency asked or is asked."""
    return sa.or_(
        col(TraceRequest.requester_agency_id) == agency_id,
        col(TraceRequest.addressee_agency_id) == agency_id,
    )


def trace_side(trace: TraceRequest, principal: Principal) -> TraceSide:
    """Which party the principal's agency is; 404 for anyone else."""
    if trace.requester_agency_id == principal.agency_id:
        return "requester"
    if trace.addressee_agency_id == principal.agency_id:
        return "addressee"
    raise NotFound("No such trace request.")


def require_trace_actor(trace: TraceRequest, principal: Principal, side: TraceSide) -> None:
    """Only `side`'s focal points (or clients with `traces:write`) move the workflow."""
    actual = trace_side(trace, principal)
    if not principal.has_scope(Scope.traces_write):
        raise Forbidden("This needs the focal_point role or the `traces:write` scope.")
    if actual != side:
        who = "requested agency" if side == "addressee" else "requesting agency"
        raise Forbidden(f"Only the {who} may do this.")
