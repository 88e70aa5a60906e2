"""Table: hits, two agencies' alerts that name the same serialised item."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.columns import EnumText
from app.core.types import UTCDateTime, new_id, utcnow


class HitTier(StrEnum):
    strong = "strong"  # serial + make + calibre
    probable = "probable"  # serial + make
    candidate = "candidate"  # serial only: a person must look


TIER_RANK = {HitTier.candidate: 0, HitTier.probable: 1, HitTier.strong: 2}


class HitStatus(StrEnum):
    new = "new"
    confirmed = "confirmed"
    dismissed = "dismissed"


class Hit(SQLModel, table=True):
    """A match between alert a and alert b (a's id sorts first), one per serial key."""

    __tablename__ = "hit"
    __table_args__ = (
        sa.UniqueConstraint("alert_a_id", "alert_b_id", "serial_key", name="uq_hit_pair_serial"),
        sa.Index("ix_hit_agency_a", "agency_a_id", "created_at"),
        sa.Index("ix_hit_agency_b", "agency_b_id", "created_at"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    alert_a_id: uuid.UUID = Field(foreign_key="alert.id", ondelete="CASCADE")
    agency_a_id: uuid.UUID = Field(foreign_key="agency.id", ondelete="RESTRICT")
    alert_b_id: uuid.UUID = Field(foreign_key="alert.id", ondelete="CASCADE")
    agency_b_id: uuid.UUID = Field(foreign_key="agency.id", ondelete="RESTRICT")
    serial_key: str = Field(max_length=255)
    tier: HitTier = Field(sa_type=EnumText(HitTier, 20))
    status_a: HitStatus = Field(default=HitStatus.new, sa_type=EnumText(HitStatus, 20))
    status_b: HitStatus = Field(default=HitStatus.new, sa_type=EnumText(HitStatus, 20))
    # When each side's owner disclosed the hit to the other side, whose view its record
    # kept blind (app/hits/disclosure.py); null: not disclosed.
    disclosed_by_a_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disclosed_by_b_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Each side's version (its ETag / If-Match, app/core/concurrency.py): it bumps on what
    # that side can see change (its decision, its disclosure, a tier it is shown), never on
    # the other side's decision or a tier it is not shown, which a shared counter would
    # tell it (app/hits/disclosure.py).
    version_a: int = 1
    version_b: int = 1
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class PendingMatch(SQLModel, table=True):
    """A published alert under embargo: matched by the worker once the embargo has passed."""

    __tablename__ = "hit_pending_match"

    alert_id: uuid.UUID = Field(foreign_key="alert.id", primary_key=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
