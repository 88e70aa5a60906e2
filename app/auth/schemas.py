"""The token endpoint's form fields and answer (the console's login takes the same limits),
and the bodies of the second factor's endpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form
from pydantic import BaseModel, ConfigDict, Field

from app.core.types import Instant

UsernameField = Annotated[str | None, Form(max_length=254)]
PasswordField = Annotated[str | None, Form(max_length=1024)]


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105
    expires_in: int = Field(description="Lifetime of the access token, in seconds.")
    scope: str
    refresh_token: str | None = None


# --- second factor (app/auth/mfa_routes.py) ------------------------------------------------

OtpCode = Annotated[
    str,
    Field(
        min_length=6,
        max_length=40,
        description="The authenticator's current six-digit code, or a recovery code.",
    ),
]


class OtpProof(BaseModel):
    """A code that proves the caller holds the second factor right now."""

    model_config = ConfigDict(extra="forbid")
    code: OtpCode


class MfaStatus(BaseModel):
    enrolled: bool = Field(description="A confirmed second factor is set up.")
    confirmed_at: Instant | None
    recovery_codes_left: int
    required: bool = Field(description="The platform or the user's agency requires one.")


class TotpEnrolment(BaseModel):
    secret: str = Field(description="The base32 secret, for entering by hand; shown this once.")
    otpauth_uri: str
    qr_svg: str = Field(description="The URI as an inline SVG QR code.")


class RecoveryCodes(BaseModel):
    recovery_codes: list[str] = Field(
        description="Ten one-time codes, shown this once; each logs in once instead of a code."
    )


class MfaPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    require_mfa: bool
