"""Table: the event log (webhook deliveries fan out from it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from app.core.columns import EnumText
from app.core.types import UTCDateTime, UuidList, empty_dict, empty_list, new_id, utcnow


class EventType(StrEnum):
    alert_published = "alert.published"
    alert_updated = "alert.updated"
    alert_withdrawn = "alert.withdrawn"
    trace_submitted = "trace.submitted"
    trace_acknowledged = "trace.acknowledged"
    trace_info_requested = "trace.info_requested"
    trace_info_provided = "trace.info_provided"
    trace_responded = "trace.responded"
    trace_closed = "trace.closed"
    trace_withdrawn = "trace.withdrawn"
    trace_forwarded = "trace.forwarded"
    trace_overdue = "trace.overdue"
    hit_created = "hit.created"
    ping = "ping"
    subscription_disabled = "subscription.disabled"


class Event(SQLModel, table=True):
    """Something that happened, for the agencies it concerns."""

    __tablename__ = "event"
    __table_args__ = (sa.Index("ix_event_created", "created_at", "id"),)

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    type: EventType = Field(sa_type=EnumText(EventType, 40), index=True)
    alert_id: uuid.UUID | None = Field(default=None, index=True)
    # For events meant for named parties only (trace workflow, hits); empty = the alert's
    # audience under the sharing rule.
    agency_ids: list[uuid.UUID] = Field(
        default_factory=empty_list, sa_column=Column(UuidList, nullable=False)
    )
    data: dict[str, Any] = Field(default_factory=empty_dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
