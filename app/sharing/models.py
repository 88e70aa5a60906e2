"""Tables: sharing groups, their members, each agency's sharing policy, and whom alerts name."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import JSON, Column, Field, SQLModel

from app.core.types import UTCDateTime, empty_dict, new_id, utcnow


class SharingGroup(SQLModel, table=True):
    """A named set of agencies an alert can be addressed to; owned by one agency."""

    __tablename__ = "sharing_group"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    owner_agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True, ondelete="RESTRICT")
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=2000)
    hide_members: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Deleted groups keep their row: alerts still name them, and nobody reads through them.
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SharingGroupMember(SQLModel, table=True):
    """Current membership: read at the time of every read (leaving removes access)."""

    __tablename__ = "sharing_group_member"

    group_id: uuid.UUID = Field(
        foreign_key="sharing_group.id", primary_key=True, ondelete="CASCADE"
    )
    agency_id: uuid.UUID = Field(
        foreign_key="agency.id", primary_key=True, index=True, ondelete="RESTRICT"
    )
    added_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class SharingPolicy(SQLModel, table=True):
    """An agency's per-kind defaults and ceilings (see app/sharing/policy.py)."""

    __tablename__ = "sharing_policy"

    agency_id: uuid.UUID = Field(foreign_key="agency.id", primary_key=True, ondelete="CASCADE")
    rules: dict[str, Any] = Field(
        default_factory=empty_dict, sa_column=Column(JSON, nullable=False)
    )
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_by: uuid.UUID | None = None
    version: int = 1  # bumps on every change (ETag / If-Match, app/core/concurrency.py)


# Whom an alert is shared with when its audience is `recipients`: the alert service keeps
# these rows (and `alert.reader_keys`) with its handling; the rule reads them.


class AlertRecipientAgency(SQLModel, table=True):
    """An agency named in an alert's `recipient_agencies`."""

    __tablename__ = "alert_recipient_agency"

    alert_id: uuid.UUID = Field(foreign_key="alert.id", primary_key=True, ondelete="CASCADE")
    agency_id: uuid.UUID = Field(
        foreign_key="agency.id", primary_key=True, index=True, ondelete="RESTRICT"
    )


class AlertRecipientGroup(SQLModel, table=True):
    """A sharing group named in an alert's `recipient_groups`."""

    __tablename__ = "alert_recipient_group"

    alert_id: uuid.UUID = Field(foreign_key="alert.id", primary_key=True, ondelete="CASCADE")
    group_id: uuid.UUID = Field(
        foreign_key="sharing_group.id", primary_key=True, index=True, ondelete="RESTRICT"
    )
