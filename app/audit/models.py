"""Tables: audit records (a hash chain with gap-free sequence numbers) and signed heads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Column, Field, SQLModel

from app.authz.principal import ActorKind
from app.core.columns import EnumText
from app.core.types import UTCDateTime, empty_dict, utcnow

UNCHAINED = sa.text("seq IS NULL")


class AuditRecord(SQLModel, table=True):
    """One action: who, which agency, what, on which object, with what outcome, when.

    A record is written with the action it describes, without a place in the chain, and
    linked right after that transaction commits: `seq`, `prev_hash` and `hash` are then set
    once (the database refuses every other change, and every deletion).
    """

    __tablename__ = "audit_record"
    __table_args__ = (
        sa.Index("ix_audit_record_seq", "seq", unique=True),
        sa.Index("ix_audit_agency_seq", "agency_id", "seq"),
        sa.Index("ix_audit_actor_seq", "actor_id", "seq"),
        sa.Index("ix_audit_object", "object_type", "object_id"),
        sa.Index("ix_audit_at", "at"),
        # What the chaining step and the sweep look for: normally a few rows at most.
        sa.Index("ix_audit_unchained", "id", postgresql_where=UNCHAINED, sqlite_where=UNCHAINED),
    )

    # Insertion order (from the database, in the writing transaction; rollbacks leave gaps).
    id: int | None = Field(
        default=None,
        sa_column=Column(
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
    )
    # Place in the chain: gap-free from 1, in the order records were linked.
    seq: int | None = Field(default=None, sa_column=Column(sa.BigInteger, nullable=True))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    actor_id: uuid.UUID | None = None
    actor_kind: ActorKind = Field(sa_type=EnumText(ActorKind, 10))
    actor_name: str | None = Field(default=None, max_length=254)
    agency_id: uuid.UUID | None = None
    action: str = Field(max_length=60, index=True)
    object_type: str | None = Field(default=None, max_length=40)
    object_id: str | None = Field(default=None, max_length=64)
    outcome: str = Field(default="success", max_length=20)
    request_id: str | None = Field(default=None, max_length=128)
    client_ip: str | None = Field(default=None, max_length=64)
    details: dict[str, Any] = Field(
        default_factory=empty_dict, sa_column=Column(JSON, nullable=False)
    )
    prev_hash: str | None = Field(default=None, max_length=64)
    hash: str | None = Field(default=None, max_length=64)


class AuditHead(SQLModel, table=True):
    """A signed statement of the chain's head: later records must extend it.

    Only the key id is kept: the signature is checked with the key from the settings,
    never with anything read from the database.
    """

    __tablename__ = "audit_head"

    seq: int = Field(sa_column=Column(sa.BigInteger, primary_key=True, autoincrement=False))
    hash: str = Field(max_length=64)
    signed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    key_id: str = Field(max_length=32)
    signature: str = Field(max_length=200)
