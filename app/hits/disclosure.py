"""What each side of a hit learns of the other (DESIGN §5): the disclosure rule, twice.

A side that may see the other record sees the hit as it is (the other alert, the real
tier). A side that may not see it learns only who holds a matching record and how to
reach them, under one tier word for every match (so probing with chosen makes or
calibres tells it nothing). And when the other record is `red`, `amber+strict` or for
its originator alone, that side learns nothing at all (no hit listed, 404, no
`hit.created`) until the other record's owner discloses the hit.

`shown_filter` is the SQL form (hit lists and look-ups); `view_of` in
app/authz/disclosure.py the Python form (read models and notifications), over the facts
read here. The hit list, the hit look-up, the console and the `hit.created` fan-out all
go through them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from app.alerts import visible
from app.alerts.models import Alert
from app.authz.disclosure import HitView
from app.hits.models import Hit, HitTier
from app.sharing.handling import Audience, Tlp

BLIND_TLPS = frozenset({Tlp.red, Tlp.amber_strict})
# The one tier a side sees when it may not see the other record: the serial matched.
UNIFORM_TIER = HitTier.candidate


def keeps_hits_blind(tlp: str, audience: str) -> bool:
    """Whether a record keeps its hits from agencies that may not see it (until disclosed)."""
    return Tlp(tlp) in BLIND_TLPS or Audience(audience) is Audience.originator


def tier_shown(view: HitView, tier: HitTier) -> HitTier:
    """The tier a side is shown: the real one only when it may see the other record."""
    return tier if view is HitView.full else UNIFORM_TIER


def _blind_filter() -> ColumnElement[bool]:
    return sa.or_(
        col(Alert.tlp).in_(BLIND_TLPS),
        col(Alert.audience) == Audience.originator,
    )


def _known(
    agency_id: uuid.UUID,
    other_alert: Mapped[uuid.UUID],
    disclosed_at: Mapped[datetime | None],
    now: datetime | None,
    dialect: str,
) -> ColumnElement[bool]:
    hidden_other = sa.exists().where(
        col(Alert.id) == other_alert,
        _blind_filter(),
        sa.not_(visible.visible_filter(agency_id, now, dialect=dialect)),
    )
    return sa.or_(disclosed_at.is_not(None), sa.not_(hidden_other))


def shown_filter(
    agency_id: uuid.UUID, *, dialect: str, now: datetime | None = None
) -> ColumnElement[bool]:
    """SQL over `hit`: the hits on the agency's records that it may know of."""
    return sa.or_(
        sa.and_(
            col(Hit.agency_a_id) == agency_id,
            _known(agency_id, col(Hit.alert_b_id), col(Hit.disclosed_by_b_at), now, dialect),
        ),
        sa.and_(
            col(Hit.agency_b_id) == agency_id,
            _known(agency_id, col(Hit.alert_a_id), col(Hit.disclosed_by_a_at), now, dialect),
        ),
    )
