"""Table: console (browser) sessions, referenced by an opaque cookie."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlmodel import Field, SQLModel

from app.core.types import UTCDateTime, new_id, utcnow


class ConsoleSession(SQLModel, table=True):
    """One browser login to the console; the cookie holds a secret whose digest is here."""

    __tablename__ = "console_session"

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    token_hash: str = Field(max_length=64, sa_column_kwargs={"unique": True})
    user_id: uuid.UUID = Field(foreign_key="user_account.id", index=True, ondelete="CASCADE")
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    # The user's `token_epoch` at login: a password change ends the session at once.
    token_epoch: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
