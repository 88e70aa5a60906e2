"""A hit's two parties: the agencies whose records matched.

A hit belongs to those two agencies only; everyone else is answered 404.
"""

from __future__ import annotations

import uuid
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from app.authz.principal import Principal, Scope
from app.core.errors import Forbidden, NotFound
from app.hits.models import Hit


def hit_party_filter(agency_id: uuid.UUID) -> ColumnElement[bool]:
    """Hits on one of the agency's records."""
    return sa.or_(col(Hit.agency_a_id) == agency_id, col(Hit.agency_b_id) == agency_id)


def hit_side(hit: Hit, principal: Principal) -> Literal["a", "b"]:
    """Which side of the hit the principal's agency is on; 404 for anyone else."""
    if hit.agency_a_id == principal.agency_id:
        return "a"
    if hit.agency_b_id == principal.agency_id:
        return "b"
    raise NotFound("No such hit.")


def require_hit_actor(hit: Hit, principal: Principal) -> Literal["a", "b"]:
    """Confirming or dismissing a hit needs `alerts:write` on one of its sides."""
    side = hit_side(hit, principal)
    if not principal.has_scope(Scope.alerts_write):
        raise Forbidden("This needs the focal_point role or the `alerts:write` scope.")
    return side
