"""Tables: login sessions (refresh-token families), refresh tokens, revoked access tokens,
second-factor recovery codes, personal access tokens, passkeys and agencies' identity
providers."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class AuthSession(SQLModel, table=True):
    """One login: the family of refresh tokens that descend from it.

    Access tokens carry its id (`sid`), so revoking the family ends them too.
    """

    __tablename__ = "auth_session"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_reason: str | None = Field(default=None, max_length=40)
    # The user's `token_epoch` at login: the family ends when the user's epoch moves on.
    token_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class RefreshToken(SQLModel, table=True):
    """A refresh token, stored as a digest; used once, then replaced by its successor."""

    __tablename__ = "refresh_token"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    session_id: uuid.UUID = Field(foreign_key="auth_session.id", index=True, ondelete="CASCADE")
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RevokedToken(SQLModel, table=True):
    """An access token revoked before its expiry (RFC 7009); kept until it would expire."""

    __tablename__ = "revoked_token"

    jti: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(sa_type=UTCDateTime, index=True)


class LoginThrottle(SQLModel, table=True):
    """Failed password logins per typed username (hashed), known account or not.

    Keyed by what was typed, so the back-off is the same for existing and unknown
    accounts and does not reveal which exist.
    """

    __tablename__ = "login_throttle"

    key: str = Field(primary_key=True, max_length=64)
    failures: int = 0
    window_started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    blocked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)


class RecoveryCode(SQLModel, table=True):
    """A one-time recovery code of a user's second factor, stored as a digest."""

    __tablename__ = "mfa_recovery_code"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    code_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PersonalAccessToken(SQLModel, table=True):
    """A user's named token for scripts: some of the user's scopes, an expiry, a digest.

    It acts as the user, narrowed to its scopes, while the user may log in, still holds
    those scopes and keeps the credentials (`token_epoch`) it was created under.
    """

    __tablename__ = "personal_access_token"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=100)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    token_hint: str = Field(max_length=12)
    scopes: str = Field(max_length=200)  # space-separated, as in OAuth2
    token_epoch: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebAuthnCredential(SQLModel, table=True):
    """A passkey (WebAuthn credential) of a user: its id and public key, never a secret."""

    __tablename__ = "webauthn_credential"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    credential_id: str = Field(max_length=1400, sa_column_kwargs={"unique": True})  # base64url
    public_key: str = Field(max_length=2000)  # COSE key, base64url
    sign_count: int = Field(default=0, sa_type=sa.BigInteger)
    transports: str = Field(default="", max_length=200)  # space-separated
    name: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class IdentityProvider(SQLModel, table=True):
    """An agency's own OpenID Connect provider: its users log in through it.

    The client secret is kept as given: the token request sends it (like a webhook's
    signing secret, it cannot be a digest).
    """

    __tablename__ = "identity_provider"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    agency_id: uuid.UUID = Field(
        foreign_key="agency.id", ondelete="CASCADE", sa_column_kwargs={"unique": True}
    )
    issuer: str = Field(max_length=500)
    client_id: str = Field(max_length=200)
    client_secret: str = Field(max_length=500)
    email_claim: str = Field(default="email", max_length=100)
    # Addresses the agency owns (space-separated domains): a login whose e-mail is in none
    # of them is refused, so one agency's provider cannot sign in another agency's users.
    email_domains: str = Field(max_length=1000)
    create_users: bool = False  # accounts made on first login, with role `reader`
    enabled: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
