"""Request and answer bodies of the tracing workflow."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import Field, model_validator

from app.core.schemas import CountryCode, InputModel, OutputModel, text
from app.core.types import Instant
from app.traces.models import TraceOutcome, TraceState

Text4000 = text(4000)
Name = text(200)


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
    question: text(8000)


class TraceAnswer(InputModel):
    answer: text(8000)


class TraceWithdraw(InputModel):
    reason: text(2000)


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
    alert_id: uuid.UUID
    title: str
    state: TraceState
    version: int
    priority: str
    requester_agency_id: uuid.UUID
    addressee_agency_id: uuid.UUID
    direction: str = Field(description="`outgoing` if you asked, `incoming` if you are asked.")
    submitted_at: Instant
    ack_due: Instant
    response_due: Instant
    acknowledged_at: Instant | None
    responded_at: Instant | None
    closed_at: Instant | None
    overdue: bool
    ack_overdue_at: Instant | None
    response_overdue_at: Instant | None
    response: TraceResponseRead | None = None
    messages: list[TraceMessageRead] = Field(default_factory=list)
    transitions: list[TraceTransitionRead] = Field(default_factory=list)


class TracePage(OutputModel):
    items: list[TraceRead]
    next_cursor: str | None = None
