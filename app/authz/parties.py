"""The two parties of a trace request and of a hit: who they are, and who may act.

A trace request's workflow, response and information exchange belong to its two
parties only, whatever the alert's audience; a hit belongs to the two agencies whose
records matched. Everyone else is answered 404. These predicates read the agency ids a
row carries (the Protocols below), never a table: the domains load, these decide.
"""

from __future__ import annotations

import uuid
from typing import Literal, Protocol

from app.authz import scopes
from app.authz.principal import Principal, Scope
from app.core.errors import Forbidden, NotFound

TraceSide = Literal["requester", "addressee"]
HitSide = Literal["a", "b"]


class TraceParties(Protocol):
    """What the party rule reads of a trace request: the agencies that asked and are asked."""

    @property
    def requester_agency_id(self) -> uuid.UUID: ...

    @property
    def addressee_agency_id(self) -> uuid.UUID: ...


class HitParties(Protocol):
    """What the party rule reads of a hit: the agencies on its two sides."""

    @property
    def agency_a_id(self) -> uuid.UUID: ...

    @property
    def agency_b_id(self) -> uuid.UUID: ...


def trace_side(trace: TraceParties, principal: Principal) -> TraceSide:
    """Which party the principal's agency is; 404 for anyone else."""
    if trace.requester_agency_id == principal.agency_id:
        return "requester"
    if trace.addressee_agency_id == principal.agency_id:
        return "addressee"
    raise NotFound("No such trace request.")


def require_trace_actor(trace: TraceParties, principal: Principal, side: TraceSide) -> None:
    """Only `side`'s focal points (or clients with `traces:write`) move the workflow."""
    actual = trace_side(trace, principal)
    scopes.require_scope(principal, Scope.traces_write)
    if actual != side:
        who = "requested agency" if side == "addressee" else "requesting agency"
        raise Forbidden(f"Only the {who} may do this.")


def hit_side(hit: HitParties, principal: Principal) -> HitSide:
    """Which side of the hit the principal's agency is on; 404 for anyone else."""
    if hit.agency_a_id == principal.agency_id:
        return "a"
    if hit.agency_b_id == principal.agency_id:
        return "b"
    raise NotFound("No such hit.")


def require_hit_actor(hit: HitParties, principal: Principal) -> HitSide:
    """Confirming or dismissing a hit needs `alerts:write` on one of its sides."""
    side = hit_side(hit, principal)
    scopes.require_scope(principal, Scope.alerts_write)
    return side
