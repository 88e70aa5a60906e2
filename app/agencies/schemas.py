"""Request and answer bodies for agencies, users and API clients."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import EmailStr, Field, StringConstraints, field_validator

from app.agencies.models import AgencyStatus, AgencyType
from app.authz.principal import Role, Scope
from app.core.schemas import AgencyCountryCode, InputModel, OutputModel, Text200
from app.core.types import Instant

Name = Text200
Password = Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class AgencyCreate(InputModel):
    name: Name
    country: AgencyCountryCode
    type: AgencyType
    is_focal_point: bool = False
    contact_email: EmailStr | None = None


class AgencyUpdate(InputModel):
    name: Name | None = None
    country: AgencyCountryCode | None = None
    type: AgencyType | None = None
    is_focal_point: bool | None = None
    contact_email: EmailStr | None = None
    status: AgencyStatus | None = Field(
        default=None, description="`suspended` refuses the agency's users and clients (401)."
    )


class AgencyRead(OutputModel):
    id: uuid.UUID
    name: str
    country: str
    type: AgencyType
    is_focal_point: bool
    is_operator: bool = Field(
        description="The platform operator's own agency: never a recipient or group member."
    )
    status: AgencyStatus
    contact_email: str | None
    created_at: Instant
    updated_at: Instant


class AgencyPage(OutputModel):
    items: list[AgencyRead]
    next_cursor: str | None = None


class UserCreate(InputModel):
    email: EmailStr
    full_name: Name
    role: Role = Role.reader
    password: Password

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class UserUpdate(InputModel):
    """No `password`: an administrator never chooses one (a reset link lets the user)."""

    full_name: Name | None = None
    role: Role | None = Field(
        default=None, description="A change ends every session and token of the user at once."
    )
    is_active: bool | None = None


class UserRead(OutputModel):
    id: uuid.UUID
    agency_id: uuid.UUID
    email: str
    full_name: str
    role: Role
    is_active: bool
    created_at: Instant
    updated_at: Instant
    last_login_at: Instant | None


class InvitationCreate(InputModel):
    email: EmailStr
    full_name: Name

    @field_validator("email")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


class InvitationRead(OutputModel):
    user: UserRead = Field(description="The invited `agency_admin`; no password until accepted.")
    token: str = Field(description="Single use; shown once, only its digest is stored.")
    set_password_url: str = Field(
        description="The console page where the invited user enters the token and a password."
    )
    expires_at: Instant


class PasswordResetRead(OutputModel):
    user: UserRead
    token: str = Field(description="Single use; shown once, only its digest is stored.")
    set_password_url: str = Field(
        description="The console page where the user enters the token and a new password."
    )
    expires_at: Instant


class PasswordChange(InputModel):
    current_password: Password
    new_password: Password


class SetPassword(InputModel):
    token: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    password: Password


class UserPage(OutputModel):
    items: list[UserRead]
    next_cursor: str | None = None


class ApiClientCreate(InputModel):
    name: Name
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.alerts_read], max_length=10)


class ApiClientRead(OutputModel):
    id: uuid.UUID = Field(description="Also the OAuth2 `client_id`.")
    agency_id: uuid.UUID
    name: str
    scopes: list[Scope]
    secret_hint: str
    created_at: Instant
    secret_rotated_at: Instant
    last_used_at: Instant | None

    @field_validator("scopes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return value.split() if isinstance(value, str) else value


class ApiClientWithSecret(ApiClientRead):
    client_secret: str = Field(description="Shown once; only its digest is stored.")


class ApiClientRotated(ApiClientWithSecret):
    previous_secret_expires_at: Instant | None = Field(
        description="Until then the previous secret, and the access tokens issued before "
        "the rotation, keep working; null when they stopped at once."
    )


MAX_OVERLAP_SECONDS = 7 * 86400


class SecretRotation(InputModel):
    overlap_seconds: int = Field(
        default=0,
        ge=0,
        le=MAX_OVERLAP_SECONDS,
        description="How long the previous secret keeps working (0: it stops at once).",
    )


class ApiClientPage(OutputModel):
    items: list[ApiClientRead]
    next_cursor: str | None = None


class MeRead(OutputModel):
    kind: str = Field(description="`user` or `client`.")
    id: uuid.UUID
    name: str
    role: Role | None
    scopes: list[Scope]
    agency: AgencyRead
