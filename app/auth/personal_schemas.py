"""Request and answer bodies of personal access tokens (`/api/v1/me/tokens`)."""

from __future__ import annotations

import uuid

from pydantic import Field, field_validator

from app.authz.principal import Scope
from app.core.schemas import InputModel, OutputModel, Text100
from app.core.types import Instant

MAX_LIFETIME_DAYS = 365


class PersonalTokenCreate(InputModel):
    name: Text100 = Field(description="What the token is for, to tell your tokens apart.")
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=len(Scope),
        description="Some of the scopes your role holds; the token can do nothing else.",
    )
    expires_in_days: int = Field(
        ge=1, le=MAX_LIFETIME_DAYS, strict=True, description="Lifetime: one day to one year."
    )


class PersonalTokenRead(OutputModel):
    id: uuid.UUID
    name: str
    scopes: list[Scope]
    token_hint: str = Field(description="The token's first characters, to recognise it.")
    created_at: Instant
    expires_at: Instant
    last_used_at: Instant | None = Field(
        description="When it was last used (updated at most about once a minute)."
    )

    @field_validator("scopes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return value.split() if isinstance(value, str) else value


class PersonalTokenWithSecret(PersonalTokenRead):
    token: str = Field(
        description="`twp_…`, used as `Authorization: Bearer <token>`; shown this once, "
        "only its digest is stored."
    )


class PersonalTokenPage(OutputModel):
    items: list[PersonalTokenRead]
    next_cursor: str | None = None
