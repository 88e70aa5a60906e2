"""What one side of a hit learns of the other (DESIGN §5): the rule's Python form.

From what the hits package found (may the side see the other record, and its content?
does that record keep its hits blind? did its owner disclose the hit?) to how much the
side is told; and who may disclose. The SQL form, and the facts read from the tables,
stay in app/hits/disclosure.py.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Protocol

from app.authz.principal import ActorKind, Principal, Role
from app.core.errors import Forbidden


class HitView(StrEnum):
    """How much one side of a hit learns of the other side."""

    full = "full"  # the other alert and the real tier
    contact = "contact"  # agency, country, contact; the uniform tier
    hidden = "hidden"  # nothing: the hit does not exist for this side


class Disclosures(Protocol):
    """What the rule reads of a hit: when each side's owner disclosed it (None: never)."""

    @property
    def disclosed_by_a_at(self) -> datetime | None: ...

    @property
    def disclosed_by_b_at(self) -> datetime | None: ...


def view_of(
    *, sees_other: bool, sees_other_content: bool, other_blind: bool, disclosed: bool
) -> HitView:
    """One side's view of a hit: from whether it may see the other record (and its content),
    whether that record keeps its hits blind, and whether its owner disclosed the hit."""
    if sees_other:
        return HitView.full if sees_other_content else HitView.contact
    if other_blind and not disclosed:
        return HitView.hidden
    return HitView.contact


def disclosed_to(hit: Disclosures, side: str) -> bool:
    """Whether the other side's owner disclosed the hit to `side` (`a` or `b`)."""
    return (hit.disclosed_by_b_at if side == "a" else hit.disclosed_by_a_at) is not None


def require_discloser(principal: Principal) -> None:
    """Disclosing a blind hit is a decision of the owner's focal point or administrator."""
    if principal.kind != ActorKind.user or principal.role not in (
        Role.focal_point,
        Role.agency_admin,
    ):
        raise Forbidden("Only a focal point or an agency administrator may disclose a hit.")
