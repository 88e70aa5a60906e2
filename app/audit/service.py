"""Append to the audit chain (in the caller's transaction), read it, and verify it."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.models import AuditHead, AuditRecord
from app.core.logging import client_ip_var, request_id_var
from app.core.principal import Principal
from app.core.types import utcnow

GENESIS = "0" * 64
# Every appender takes this transaction-scoped lock on PostgreSQL, so two writers can
# never both read the same tail and fork the chain; it is released at commit.
_PG_AUDIT_LOCK = 7_245_102
HASHED_FIELDS = (
    "seq", "at", "actor_id", "actor_kind", "actor_name", "agency_id", "action",
    "object_type", "object_id", "outcome", "request_id", "client_ip", "details",
)  # fmt: skip


def canonical(record: AuditRecord) -> str:
    """The record's canonical JSON (sorted keys, no spaces, UTC times, string ids)."""
    values: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = getattr(record, name)
        if isinstance(value, datetime):
            value = value.isoformat(timespec="microseconds")
        elif isinstance(value, uuid.UUID):
            value = str(value)
        values[name] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, record: AuditRecord) -> str:
    """SHA-256 over the previous hash and this record's canonical JSON."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(record)}".encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One record to append: what happened, to what, and how it ended."""

    action: str
    object_type: str | None = None
    object_id: object = None
    outcome: str = "success"
    details: dict[str, Any] | None = None
    agency_id: uuid.UUID | None = None
    actor_name: str | None = None


async def record(
    session: AsyncSession,
    principal: Principal | None,
    action: str,
    *,
    object_type: str | None = None,
    object_id: object = None,
    outcome: str = "success",
    details: dict[str, Any] | None = None,
    agency_id: uuid.UUID | None = None,
    actor_name: str | None = None,
) -> None:
    """Append one record; it commits or rolls back with the action it describes."""
    entry = Entry(action, object_type, object_id, outcome, details, agency_id, actor_name)
    await record_many(session, principal, [entry])


async def record_many(
    session: AsyncSession, principal: Principal | None, entries: Sequence[Entry]
) -> None:
    """Append records in order; they join the chain when the transaction commits."""
    pending: list[AuditRecord] = session.info.setdefault(_PENDING, [])
    for entry in entries:
        pending.append(
            AuditRecord(
                at=utcnow(),
                actor_id=principal.id if principal else None,
                actor_kind=principal.kind
                if principal
                else ("anonymous" if entry.actor_name else "worker"),
                actor_name=entry.actor_name or (principal.name if principal else None),
                agency_id=entry.agency_id or (principal.agency_id if principal else None),
                action=entry.action,
                object_type=entry.object_type,
                object_id=str(entry.object_id) if entry.object_id is not None else None,
                outcome=entry.outcome,
                request_id=request_id_var.get(),
                client_ip=client_ip_var.get(),
                details=entry.details or {},
                prev_hash="",
                hash="",
            )
        )


# The chain is extended at the very end of the transaction that the records describe,
# so the chain lock is held only for the tail read, the insert and the commit. Taken at
# the first `record()` instead, it was held across the rest of the request, and every
# writer of every process queued behind it (bench/RESULTS.md, ingest).
_PENDING = "tracewire.audit.pending"


@event.listens_for(Session, "before_commit")
def _append_pending(session: Session) -> None:
    pending: list[AuditRecord] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_AUDIT_LOCK)))
    tail = session.execute(
        sa.select(AuditRecord.seq, AuditRecord.hash).order_by(sa.desc(AuditRecord.seq)).limit(1)
    ).first()
    seq, prev_hash = (tail[0], tail[1]) if tail else (0, GENESIS)
    for row in pending:
        seq += 1
        row.seq = seq
        row.prev_hash = prev_hash
        row.hash = chain_hash(prev_hash, row)
        prev_hash = row.hash
        session.add(row)
    session.flush()


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


async def record_reads(
    session: AsyncSession, principal: Principal, alert_ids: Sequence[uuid.UUID], action: str
) -> None:
    """A read of alert content (get, search page, export): one record naming what was read."""
    if not alert_ids:
        return
    await record(
        session,
        principal,
        action,
        object_type="alert",
        object_id=alert_ids[0] if len(alert_ids) == 1 else None,
        details={"alert_ids": [str(a) for a in alert_ids]} if len(alert_ids) > 1 else {},
    )


@dataclass
class Verdict:
    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None
    signed_head_seq: int | None = None


async def verify(session: AsyncSession, *, batch: int = 5000) -> Verdict:
    """Walk the whole chain: gap-free sequence, each hash, each link, and the signed head."""
    prev_hash, expected_seq, checked = GENESIS, 1, 0
    last_hashes: dict[int, str] = {}
    while True:
        rows = (
            await session.exec(
                select(AuditRecord)
                .where(col(AuditRecord.seq) >= expected_seq)
                .order_by(col(AuditRecord.seq))
                .limit(batch)
            )
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return Verdict(False, checked, expected_seq, f"record {expected_seq} is missing")
            if row.prev_hash != prev_hash:
                return Verdict(False, checked, row.seq, "does not link to the record before it")
            if chain_hash(prev_hash, row) != row.hash:
                return Verdict(False, checked, row.seq, "content does not match its hash")
            prev_hash, expected_seq, checked = row.hash, row.seq + 1, checked + 1
            last_hashes[row.seq] = row.hash
    head = (
        await session.exec(select(AuditHead).order_by(col(AuditHead.seq).desc()).limit(1))
    ).first()
    if head is None:
        return Verdict(True, checked)
    if not _signature_ok(head):
        return Verdict(False, checked, head.seq, "the signed head's signature is invalid")
    if head.seq >= expected_seq:
        return Verdict(
            False, checked, expected_seq, f"the chain was cut below signed record {head.seq}"
        )
    stored = await session.get(AuditRecord, head.seq)
    if stored is None or stored.hash != head.hash:
        return Verdict(False, checked, head.seq, "the chain no longer extends the signed head")
    return Verdict(True, checked, signed_head_seq=head.seq)


def _head_message(seq: int, hash_: str) -> bytes:
    return f"tracewire-audit-head:{seq}:{hash_}".encode()


def _signature_ok(head: AuditHead) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(head.public_key))
        key.verify(base64.b64decode(head.signature), _head_message(head.seq, head.hash))
    except (InvalidSignature, ValueError):
        return False
    return True


async def sign_head(session: AsyncSession, private_key: Ed25519PrivateKey) -> AuditHead | None:
    """Sign the current head, so that cutting the chain's tail is detected (a worker job)."""
    tail = (
        await session.exec(select(AuditRecord).order_by(col(AuditRecord.seq).desc()).limit(1))
    ).first()
    if tail is None or await session.get(AuditHead, tail.seq) is not None:
        return None
    from cryptography.hazmat.primitives import serialization

    public = private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    head = AuditHead(
        seq=tail.seq,
        hash=tail.hash,
        signature=base64.b64encode(private_key.sign(_head_message(tail.seq, tail.hash))).decode(),
        public_key=base64.b64encode(public).decode(),
    )
    session.add(head)
    await session.flush()
    return head


def load_signing_key(seed_b64: str) -> Ed25519PrivateKey:
    """The Ed25519 key from its base64 32-byte seed (TRACEWIRE_AUDIT_SIGNING_KEY)."""
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(seed_b64))


async def list_records(
    session: AsyncSession,
    *,
    agency_id: uuid.UUID | None,
    actor_id: uuid.UUID | None,
    action: str | None,
    object_type: str | None,
    object_id: str | None,
    since: datetime | None,
    until: datetime | None,
    before_seq: int | None,
    limit: int,
) -> list[AuditRecord]:
    """Records newest first, filtered; keyset on `seq`."""
    query = select(AuditRecord)
    for column, value in (
        (AuditRecord.agency_id, agency_id),
        (AuditRecord.actor_id, actor_id),
        (AuditRecord.action, action),
        (AuditRecord.object_type, object_type),
        (AuditRecord.object_id, object_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if since:
        query = query.where(col(AuditRecord.at) >= since)
    if until:
        query = query.where(col(AuditRecord.at) < until)
    if before_seq:
        query = query.where(col(AuditRecord.seq) < before_seq)
    query = query.order_by(col(AuditRecord.seq).desc()).limit(limit)
    return list((await session.exec(query)).all())
