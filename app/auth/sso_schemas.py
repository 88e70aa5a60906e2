"""Bodies of `/api/v1/agencies/{agency_id}/identity-provider`: an agency's OpenID Connect
provider, as its administrators set it and as it is read back (never with the secret)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from app.core.types import Instant

_LABEL_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def _domain(value: str) -> str:
    text = value.strip().lower().rstrip(".")
    labels = text.split(".")
    if (
        len(text) > 253
        or len(labels) < 2
        or any(
            not label
            or len(label) > 63
            or label[0] == "-"
            or label[-1] == "-"
            or not set(label) <= _LABEL_CHARS
            for label in labels
        )
        or labels[-1].isdigit()
    ):
        raise ValueError("must be a domain name such as police.example.org (no @, no scheme)")
    return text


EmailDomain = Annotated[str, Field(min_length=3, max_length=253), AfterValidator(_domain)]


class IdentityProviderUpdate(BaseModel):
    """An agency's OpenID Connect provider; its users log in through it."""

    # A validation error must never print what was given: it may be the secret.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    issuer: str = Field(
        min_length=8,
        max_length=500,
        description="The provider's issuer URL, exactly as its ID tokens' `iss` (https).",
    )
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: SecretStr | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description="Required when no provider is set yet; left out, the stored one is kept.",
    )
    email_claim: str = Field(
        default="email", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$"
    )
    email_domains: list[EmailDomain] = Field(
        min_length=1,
        max_length=50,
        description="Domains the agency owns; a login with an address in none is refused.",
    )
    create_users: bool = Field(
        default=False, description="Create an account with role `reader` at a first login."
    )
    enabled: bool = True


class IdentityProviderRead(BaseModel):
    """An agency's provider as read back: everything but the client secret."""

    agency_id: uuid.UUID
    issuer: str
    client_id: str
    email_claim: str
    email_domains: list[str]
    create_users: bool
    enabled: bool
    redirect_uri: str = Field(description="Register this callback URL at the provider.")
    created_at: Instant
    updated_at: Instant
