"""Request and answer bodies for sharing groups and sharing policies."""

from __future__ import annotations

import uuid

from pydantic import Field, model_validator

from app.core.schemas import InputModel, OutputModel, Text200, Text2000OrEmpty
from app.core.types import Instant
from app.sharing.handling import AlertKind, Audience, Handling, Tlp


class SharingGroupCreate(InputModel):
    name: Text200
    description: Text2000OrEmpty = ""
    hide_members: bool = Field(default=False, description="Show the member list to the owner only.")
    owner_agency_id: uuid.UUID | None = Field(
        default=None, description="Platform administrators only; default: your agency."
    )
    members: list[uuid.UUID] = Field(default_factory=list, max_length=500)


class SharingGroupUpdate(InputModel):
    name: Text200 | None = None
    description: Text2000OrEmpty | None = None
    hide_members: bool | None = None


class SharingGroupRead(OutputModel):
    id: uuid.UUID
    owner_agency_id: uuid.UUID
    name: str
    description: str
    hide_members: bool
    created_at: Instant
    updated_at: Instant
    member_count: int
    members: list[uuid.UUID] | None = Field(
        default=None, description="Null when the owner hides the members from you."
    )


class SharingGroupPage(OutputModel):
    items: list[SharingGroupRead]
    next_cursor: str | None = None


class Ceiling(InputModel):
    """The widest handling a post of this kind may have."""

    widest_tlp: Tlp | None = Field(default=None, description="e.g. `amber`: no green or clear.")
    widest_audience: Audience | None = None
    allow_groups: bool = True
    addressee_only: bool = Field(
        default=False, description="Trace requests: never beyond the addressee."
    )


class KindPolicy(InputModel):
    default: Handling | None = Field(default=None, description="Applied when a post omits it.")
    ceiling: Ceiling | None = None


class SharingPolicyBody(InputModel):
    kinds: dict[AlertKind, KindPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _addressee_only_for_traces(self) -> SharingPolicyBody:
        for kind, policy in self.kinds.items():
            if policy.ceiling and policy.ceiling.addressee_only and kind != AlertKind.trace_request:
                raise ValueError("addressee_only applies to trace_request only")
        return self


class SharingPolicyRead(SharingPolicyBody):
    agency_id: uuid.UUID
    updated_at: Instant | None = None
    version: int = Field(
        default=0, description="Bumps on every change (0: never set); send it as `If-Match`."
    )
