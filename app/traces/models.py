"""Tables: the workflow of a trace request, its response and its information exchange."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from app.alerts.schemas import Priority
from app.authz.principal import ActorKind
from app.core.columns import EnumText
from app.core.types import UTCDateTime, empty_dict, new_id, utcnow


class TraceState(StrEnum):
    submitted = "submitted"
    acknowledged = "acknowledged"
    info_requested = "info_requested"
    responded = "responded"
    closed = "closed"
    withdrawn = "withdrawn"
    # Handed by the requested agency to another agency of its country: the request ends
    # here and a new one, linked to it, goes to that agency (app/traces/forward.py).
    forwarded = "forwarded"


OPEN_STATES = (TraceState.submitted, TraceState.acknowledged, TraceState.info_requested)


class TraceOutcome(StrEnum):
    traced = "traced"
    partially_traced = "partially_traced"
    not_traced = "not_traced"
    restricted = "restricted"
    refused = "refused"


class MessageKind(StrEnum):
    """A message of the information exchange: the requested agency asks, the requester answers."""

    question = "question"
    answer = "answer"


class TraceRequest(SQLModel, table=True):
    """The workflow of one published trace-request alert (1:1 with the alert)."""

    __tablename__ = "trace_request"
    __table_args__ = (
        sa.Index("ix_trace_request_requester", "requester_agency_id", "submitted_at"),
        sa.Index("ix_trace_request_addressee", "addressee_agency_id", "submitted_at"),
        sa.Index("ix_trace_request_due", "state", "response_due"),
    )

    alert_id: uuid.UUID = Field(foreign_key="alert.id", primary_key=True, ondelete="CASCADE")
    requester_agency_id: uuid.UUID = Field(foreign_key="agency.id", ondelete="RESTRICT")
    addressee_agency_id: uuid.UUID = Field(foreign_key="agency.id", ondelete="RESTRICT")
    state: TraceState = Field(default=TraceState.submitted, sa_type=EnumText(TraceState, 20))
    version: int = 1
    priority: Priority = Field(default=Priority.routine, sa_type=EnumText(Priority, 10))
    submitted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    ack_due: datetime = Field(sa_type=UTCDateTime)
    response_due: datetime = Field(sa_type=UTCDateTime)
    acknowledged_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    responded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Set once by the worker when a deadline passes unmet (the flag is raised only once).
    ack_overdue_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    response_overdue_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # A forward links the request it ended to the one it started, both ways. Plain ids,
    # no foreign keys: alerts are withdrawn, never deleted, and SQLite adds a foreign key
    # only by copying the table, which would drop this one's ON DELETE CASCADE rows.
    forwarded_to_alert_id: uuid.UUID | None = None
    forwarded_from_alert_id: uuid.UUID | None = None


class TraceResponse(SQLModel, table=True):
    """The requested agency's answer; readable by the two parties only."""

    __tablename__ = "trace_response"

    alert_id: uuid.UUID = Field(
        foreign_key="trace_request.alert_id", primary_key=True, ondelete="CASCADE"
    )
    outcome: TraceOutcome = Field(sa_type=EnumText(TraceOutcome, 20))
    findings: dict[str, Any] = Field(
        default_factory=empty_dict, sa_column=Column(JSON, nullable=False)
    )
    reasons: str | None = Field(default=None, max_length=4000)
    use_restrictions: str | None = Field(default=None, max_length=4000)
    responded_by: uuid.UUID
    responded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TraceMessage(SQLModel, table=True):
    """A question from the requested agency or an answer from the requester."""

    __tablename__ = "trace_message"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    alert_id: uuid.UUID = Field(
        foreign_key="trace_request.alert_id", index=True, ondelete="CASCADE"
    )
    kind: MessageKind = Field(sa_type=EnumText(MessageKind, 10))
    body: str = Field(max_length=8000)
    agency_id: uuid.UUID
    author_id: uuid.UUID
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TraceTransition(SQLModel, table=True):
    """One step of the workflow: who moved it from which state to which, and when."""

    __tablename__ = "trace_transition"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    alert_id: uuid.UUID = Field(
        foreign_key="trace_request.alert_id", index=True, ondelete="CASCADE"
    )
    action: str = Field(max_length=30)
    from_state: TraceState | None = Field(default=None, sa_type=EnumText(TraceState, 20))
    to_state: TraceState = Field(sa_type=EnumText(TraceState, 20))
    version: int
    actor_id: uuid.UUID | None = None
    actor_kind: ActorKind = Field(sa_type=EnumText(ActorKind, 10))
    agency_id: uuid.UUID | None = None
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
