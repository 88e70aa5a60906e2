"""Tables: the status resources of TAXII `add objects` requests."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import JSON, Column, Field, SQLModel

from app.core.columns import EnumText
from app.core.types import UTCDateTime, empty_list, new_id, utcnow


class TaxiiRequestStatus(StrEnum):
    """Whether every object of an `add objects` request has been processed (TAXII 2.1 §4.3.1)."""

    pending = "pending"
    complete = "complete"


class TaxiiStatus(SQLModel, table=True):
    """What became of the objects one agency posted to a collection (TAXII 2.1 §4.3.1)."""

    __tablename__ = "taxii_status"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True, ondelete="CASCADE")
    created_by: uuid.UUID
    collection_id: uuid.UUID
    status: TaxiiRequestStatus = Field(
        default=TaxiiRequestStatus.complete, sa_type=EnumText(TaxiiRequestStatus, 20)
    )
    request_timestamp: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    total_count: int = 0
    success_count: int = 0
    failure_count: int = 0
    pending_count: int = 0
    successes: list[dict[str, Any]] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
    failures: list[dict[str, Any]] = Field(
        default_factory=empty_list, sa_column=Column(JSON, nullable=False)
    )
