"""Tables: agencies, their users and their API clients."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.authz.principal import Role
from app.core.columns import EnumText
from app.core.types import UTCDateTime, new_id, utcnow


class AgencyType(StrEnum):
    police = "police"
    customs = "customs"
    military = "military"
    licensing = "licensing"
    intelligence = "intelligence"
    ministry = "ministry"
    international = "international"


class AgencyStatus(StrEnum):
    active = "active"
    suspended = "suspended"


class Agency(SQLModel, table=True):
    """A national agency or international organisation taking part in the exchange."""

    __tablename__ = "agency"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    name: str = Field(max_length=200, sa_column_kwargs={"unique": True})
    country: str = Field(max_length=2, index=True)
    type: AgencyType = Field(sa_type=EnumText(AgencyType, 20))
    is_focal_point: bool = False
    # The platform operator's own agency: it is never a recipient or a group member
    # (DESIGN §2). Set by `tracewire create-admin` and the demo seed, never by the API.
    is_operator: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    status: AgencyStatus = Field(default=AgencyStatus.active, sa_type=EnumText(AgencyStatus, 20))
    contact_email: str | None = Field(default=None, max_length=254)
    # The agency's own rule: its users log in with a second factor, and one who has none
    # is walked through enrolment before any token (the platform's rule is a setting).
    require_mfa: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class User(SQLModel, table=True):
    """A person; belongs to exactly one agency and holds one role."""

    __tablename__ = "user_account"
    __table_args__ = (
        # Unique among live accounts; the address of a deleted account can be reused.
        sa.Index(
            "uq_user_account_email_live",
            "email",
            unique=True,
            sqlite_where=sa.text("deleted_at IS NULL"),
            postgresql_where=sa.text("deleted_at IS NULL"),
        ),
        # One account per identity at a provider (NULLs, accounts without one, are distinct).
        sa.Index("uq_user_account_oidc", "oidc_issuer", "oidc_subject", unique=True),
    )

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True, ondelete="RESTRICT")
    email: str = Field(max_length=254)  # stored lower-cased: unique case-insensitively
    full_name: str = Field(max_length=200)
    role: Role = Field(default=Role.reader, sa_type=EnumText(Role, 20))
    password_hash: str = Field(max_length=255)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Bumped whenever the user's credentials change (password set or reset): every
    # login, refresh token and console session records the epoch it was opened under
    # and stops working once the user's epoch has moved on.
    token_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # TOTP (RFC 6238): the shared secret (base32; the code generator needs it, like a
    # webhook's signing secret), when enrolment was confirmed with a first code, and the
    # time step of the last code accepted (a code is good once).
    totp_secret: str | None = Field(default=None, max_length=64)
    totp_confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    totp_last_step: int | None = Field(default=None, sa_type=sa.BigInteger)
    # Single sign-on: the provider's `iss` and `sub` this account is bound to, once it has
    # logged in through its agency's OpenID Connect provider.
    oidc_issuer: str | None = Field(default=None, max_length=500)
    oidc_subject: str | None = Field(default=None, max_length=255)


class ApiClient(SQLModel, table=True):
    """A partner system acting for one agency through OAuth2 client credentials."""

    __tablename__ = "api_client"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    agency_id: uuid.UUID = Field(foreign_key="agency.id", index=True, ondelete="RESTRICT")
    name: str = Field(max_length=200)
    scopes: str = Field(default="", max_length=200)  # space-separated, as in OAuth2
    secret_hash: str = Field(max_length=64)
    secret_hint: str = Field(max_length=12)  # the first characters, to tell secrets apart
    created_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    secret_rotated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Bumped by a secret rotation; access tokens carry the epoch they were issued under.
    token_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    # A rotation with an overlap: the secret before it keeps working until then.
    previous_secret_hash: str | None = Field(default=None, max_length=64)
    previous_secret_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SetPasswordToken(SQLModel, table=True):
    """A one-time link that lets a user set their own password (the invitation of an
    agency's first administrator); stored as a digest, single use, with an expiry."""

    __tablename__ = "set_password_token"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    purpose: str = Field(default="invitation", max_length=20)
    created_by: uuid.UUID | None = Field(default=None, foreign_key="user_account.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
