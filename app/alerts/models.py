"""Tables: alerts, their items and tags (whom an alert names: app/sharing/models.py)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from app.alerts.schemas import ItemCategory, SerialStatus, Unit
from app.authz.principal import ActorKind
from app.core.columns import EnumText
from app.core.types import UTCDateTime, UuidList, empty_dict, empty_list, new_id, utcnow
from app.sharing.handling import AlertKind, AlertStatus, Audience, Tlp


class Alert(SQLModel, table=True):
    """A structured alert; its visibility is decided by app/sharing only."""

    __tablename__ = "alert"
    __table_args__ = (
        # The list order (newest first) and its keyset cursor.
        sa.Index("ix_alert_sort", "sort_at", "id"),
        sa.Index("ix_alert_originator_sort", "originator_agency_id", "sort_at", "id"),
        sa.Index("ix_alert_addressee_sort", "addressed_to_agency_id", "sort_at", "id"),
        sa.Index("ix_alert_audience_sort", "audience", "sort_at", "id"),
        sa.Index("ix_alert_updated", "updated_at", "id"),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    kind: AlertKind = Field(sa_type=EnumText(AlertKind, 30))
    originator_agency_id: uuid.UUID = Field(foreign_key="agency.id", ondelete="RESTRICT")
    created_by: uuid.UUID  # a user or an API client of the originator
    created_by_kind: ActorKind = Field(sa_type=EnumText(ActorKind, 10))
    status: AlertStatus = Field(default=AlertStatus.draft, sa_type=EnumText(AlertStatus, 20))
    version: int = 1

    title: str = Field(max_length=300)
    summary: str = Field(default="", max_length=20000)
    country: str = Field(max_length=2)
    occurred_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    location: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    tags: list[str] = Field(default_factory=empty_list, sa_column=Column(JSON, nullable=False))
    details: dict[str, Any] = Field(
        default_factory=empty_dict, sa_column=Column(JSON, nullable=False)
    )

    tlp: Tlp = Field(sa_type=EnumText(Tlp, 20))
    audience: Audience = Field(sa_type=EnumText(Audience, 20))
    embargo_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    handling_codes: list[str] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
    # Trace requests: the requested agency, which may always read the request.
    addressed_to_agency_id: uuid.UUID | None = Field(
        default=None, foreign_key="agency.id", ondelete="RESTRICT"
    )

    # Who is named when audience = recipients: agency ids and group ids, kept by the alert
    # service with the recipient tables. On PostgreSQL the sharing filter tests it with one
    # array overlap per row instead of two sub-queries (see app/sharing/visibility.py).
    reader_keys: list[uuid.UUID] = Field(
        default_factory=empty_list, sa_column=Column(UuidList, nullable=False)
    )

    # Everything a text search looks at (title, summary, item fields), kept by the service.
    search_text: str = Field(default="", sa_type=sa.Text)

    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    sort_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    withdrawn_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    withdrawal_reason: str | None = Field(default=None, max_length=2000)


class AlertItem(SQLModel, table=True):
    """One weapon, part, round lot, UAS, IED component or precursor of an alert."""

    __tablename__ = "alert_item"
    __table_args__ = (sa.Index("ix_alert_item_serial_make", "serial_key", "make_key"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    alert_id: uuid.UUID = Field(foreign_key="alert.id", index=True, ondelete="CASCADE")
    position: int = 0
    category: ItemCategory = Field(sa_type=EnumText(ItemCategory, 30))
    make: str | None = Field(default=None, max_length=100)
    make_key: str | None = Field(default=None, max_length=255)
    model: str | None = Field(default=None, max_length=100)
    calibre: str | None = Field(default=None, max_length=50)
    type: str | None = Field(default=None, max_length=100)
    country_of_manufacture: str | None = Field(default=None, max_length=2)
    year: int | None = None
    serial_raw: str | None = Field(default=None, max_length=100)
    serial_status: SerialStatus = Field(
        default=SerialStatus.present, sa_type=EnumText(SerialStatus, 30)
    )
    serial_key: str | None = Field(default=None, max_length=255)
    markings: list[dict[str, Any]] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
    lot: str | None = Field(default=None, max_length=100)
    quantity: float = 1
    unit: Unit = Field(default=Unit.pieces, sa_type=EnumText(Unit, 20))


class AlertTag(SQLModel, table=True):
    """A tag of an alert, one row each, so that the tag filter is an index look-up."""

    __tablename__ = "alert_tag"

    alert_id: uuid.UUID = Field(foreign_key="alert.id", primary_key=True, ondelete="CASCADE")
    tag: str = Field(primary_key=True, max_length=60, index=True)
