"""Request and answer bodies of the tracing workflow."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field, model_validator

from app.core.schemas import (
    CountryCode,
    InputModel,
    OutputModel,
    Text200,
    Text2000,
    Text4000,
    Text8000,
)
from app.core.types import Instant
from app.traces.models import TraceOutcome, TraceState

Name = Text200


class Transfer(InputModel):
    """One leg of the item's documented history (Firearms Protocol Art. 7 records)."""

    date: dt.date | None = None
    from_country: CountryCode | None = None
    to_country: CountryCode | None = None
    from_party: Name | None = None
    to_party: Name | None = None
    document: Name | None = Field(default=None, description="Licence, permit or contract ref.")


class Findings(InputModel):
    manufacturer: Name | None = None
    exporter: Name | None = None
    importer: Name | None = None
    transfers: list[Transfer] = Field(default_factory=list, max_length=50)
    last_legal_holder: Name | None = None
    assessed_diversion_point: Text4000 | None = None
    notes: Text4000 | None = None


class TraceRespond(InputModel):
    outcome: TraceOutcome
    findings: Findings = Field(default_factory=Findings)
    reasons: Text4000 | None = Field(
        default=None, description="Required for `restricted` and `refused`."
    )
    use_restrictions: Text4000 | None = None

    @model_validator(mode="after")
    def _reasons_when_withheld(self) -> TraceRespond:
        if self.outcome in (TraceOutcome.restricted, TraceOutcome.refused) and not self.reasons:
            raise ValueError(f"a `{self.outcome.value}` response needs `reasons`")
        return self


class TraceQuestion(InputModel):
    question: Text8000


class TraceAnswer(InputModel):
    answer: Text8000


class TraceWithdraw(InputModel):
    reason: Text2000


class TraceForward(InputModel):
    agency_id: uuid.UUID = Field(description="Another agency of your own country.")
    note: Text2000 | None = Field(
        default=None, description="Why it goes there (kept in the step's audit record and event)."
    )


class TraceResponseRead(OutputModel):
    outcome: TraceOutcome
    findings: dict[str, object]
    reasons: str | None
    use_restrictions: str | None
    responded_at: Instant


class TraceMessageRead(OutputModel):
    id: uuid.UUID
    kind: str = Field(description="`question` (from the requested agency) or `answer`.")
    body: str
    agency_id: uuid.UUID
    created_at: Instant


class TraceTransitionRead(OutputModel):
    action: str
    from_state: TraceState | None
    to_state: TraceState
    version: int
    agency_id: uuid.UUID | None
    at: Instant


class TraceRead(OutputModel):
    """A trace request's workflow; for a tombstone, only its identity and history."""

    alert_id: uuid.UUID
    tombstone: bool = Field(
        description="True when the request's content has been withdrawn from you: no title, "
        "priority, deadlines, messages or response."
    )
    title: str | None = Field(
        description="None for a tombstone, and for a TLP:RED request read by an API client "
        "without `alerts:read:red`."
    )
    state: TraceState
    version: int
    priority: str | None
    requester_agency_id: uuid.UUID
    addressee_agency_id: uuid.UUID
    direction: str = Field(description="`outgoing` if you asked, `incoming` if you are asked.")
    submitted_at: Instant
    ack_due: Instant | None
    response_due: Instant | None
    acknowledged_at: Instant | None
    responded_at: Instant | None
    closed_at: Instant | None
    overdue: bool
    ack_overdue_at: Instant | None
    response_overdue_at: Instant | None
    forwarded_to: uuid.UUID | None = Field(
        default=None, description="The request this one was forwarded as (state `forwarded`)."
    )
    forwarded_from: uuid.UUID | None = Field(
        default=None, description="The request the requested agency forwarded as this one."
    )
    response: TraceResponseRead | None = None
    messages: list[TraceMessageRead] = Field(default_factory=list)
    transitions: list[TraceTransitionRead] = Field(default_factory=list)


class TracePage(OutputModel):
    items: list[TraceRead]
    next_cursor: str | None = None
