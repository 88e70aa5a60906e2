"""Tables: login sessions (refresh-token families), refresh tokens, revoked access tokens,
second-factor recovery codes and personal access tokens."""

from __future__ import annotations

import uuid
from datetime import datetime

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
