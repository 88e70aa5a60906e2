"""Append to the audit trail (in the caller's transaction), read it, verify it, sign its head."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, SessionTransaction
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import chain, heads
from app.audit.chain import GENESIS
from app.audit.heads import SignedHead
from app.audit.models import AuditHead, AuditRecord
from app.authz.principal import ActorKind, Principal
from app.core.db import AFTER_COMMIT
from app.core.logging import client_ip_var, request_id_var
from app.core.types import utcnow

_PENDING = "tracewire.audit.pending"
# Set once staged records were written by a caller's own statement (`take_unwritten`): the
# commit still links them.
_WRITTEN_EARLY = "tracewire.audit.written_early"


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
    """Append records in order; they are written when the transaction commits."""
    pending: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    for entry in entries:
        pending.append(
            {
                "at": utcnow(),
                "actor_id": principal.id if principal else None,
                "actor_kind": principal.kind
                if principal
                else (ActorKind.anonymous if entry.actor_name else ActorKind.worker),
                "actor_name": entry.actor_name or (principal.name if principal else None),
                "agency_id": entry.agency_id or (principal.agency_id if principal else None),
                "action": entry.action,
                "object_type": entry.object_type,
                "object_id": str(entry.object_id) if entry.object_id is not None else None,
                "outcome": entry.outcome,
                "request_id": request_id_var.get(),
                "client_ip": client_ip_var.get(),
                "details": entry.details or {},
            }
        )


# Records are written at the very end of the transaction they describe, in one statement,
# without a lock: on PostgreSQL they are linked in the background after the commit (a step
# queued for `Session.commit()` starts it). SQLite's transactions already hold its only
# writer slot, so records are linked in place there, and so they are on PostgreSQL when the
# commit is made some other way (`async with session.begin()`, rare: seeding), under the
# lock until it ends.
@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: its records wait for the transaction's own commit
    rows: list[dict[str, Any]] | None = session.info.pop(_PENDING, None)
    written_early = session.info.pop(_WRITTEN_EARLY, False)
    if not rows and not written_early:
        return
    conn = session.connection()
    if rows:
        conn.execute(sa.insert(chain.TABLE), rows)
    steps: list[Any] | None = session.info.get(AFTER_COMMIT)
    if conn.dialect.name == "sqlite" or steps is None:
        chain.chain_pending(conn, lock_timeout_ms=None)
    elif chain.link_after_commit not in steps:
        steps.append(chain.link_after_commit)


# Records staged in a transaction that ends without its commit (a rollback) go with it. Only
# the outermost transaction: a SAVEPOINT's rollback takes its own records only (`savepoint`).
@event.listens_for(Session, "after_transaction_end")
def _drop_pending(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)
        session.info.pop(_WRITTEN_EARLY, None)


def take_unwritten(session: AsyncSession) -> list[dict[str, Any]]:
    """The records staged so far, for the caller to write in a statement it sends anyway
    (rows of `chain.TABLE`, one round trip fewer); the commit links them as any other.
    Nothing inside a SAVEPOINT: its rollback would take records staged before it with it."""
    if session.sync_session.in_nested_transaction():
        return []
    rows: list[dict[str, Any]] = session.info.pop(_PENDING, None) or []
    if rows:
        session.info[_WRITTEN_EARLY] = True
    return rows


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A SAVEPOINT for one of many changes in a transaction (an import's report, a batch's
    alert): if it fails, its rows are rolled back and so are the audit records staged in it,
    which would otherwise be written at the commit as if it had happened."""
    staged: list[dict[str, Any]] = session.info.setdefault(_PENDING, [])
    mark = len(staged)
    try:
        async with session.begin_nested():
            yield
    except BaseException:
        del session.info.get(_PENDING, [])[mark:]
        raise


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
    """What `verify` found: intact, or the first broken record and why."""

    ok: bool
    checked: int
    first_broken_seq: int | None = None
    reason: str | None = None
    signed_head_seq: int | None = None  # the last head in the database it checked
    witnessed_seq: int | None = None  # the head kept outside that the chain still extends
    unchained: int = 0  # committed records not linked yet (the sweep links them)
    key_id: str | None = None  # the key the heads were checked with


class ChainBroken(Exception):
    """The chain does not verify; a head is never signed over it."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(
            f"audit chain broken at record {verdict.first_broken_seq}: {verdict.reason}"
        )
        self.verdict = verdict


async def verify(
    session: AsyncSession,
    key: Ed25519PublicKey | None = None,
    *,
    against: SignedHead | None = None,
    batch: int = 5000,
) -> Verdict:
    """Walk the whole chain: gap-free sequence, each hash and link, and every signed head.

    With `key` (from the settings, never from the database), each head stored in the database
    must carry its signature and still match its record, and none may lie beyond the chain's
    end. With `against` (a head kept outside), the chain must still reach and match it.
    """
    await chain.linked(session)
    if against is not None:
        if key is None:
            raise ValueError("checking a witnessed head needs the verification key")
        if not against.signed_by(key):
            return Verdict(
                False,
                0,
                against.seq,
                f"the witnessed head is not signed by the configured key {heads.key_id(key)}",
                key_id=heads.key_id(key),
            )
    return await _walk(session, key, against=against, batch=batch)


async def _walk(
    session: AsyncSession,
    key: Ed25519PublicKey | None,
    *,
    start: SignedHead | None = None,
    against: SignedHead | None = None,
    batch: int = 5000,
) -> Verdict:
    kid = heads.key_id(key) if key is not None else None
    checked, signed_seq = 0, None

    def broken(seq: int, reason: str) -> Verdict:
        return Verdict(False, checked, seq, reason, signed_seq, key_id=kid)

    prev_hash, expected = GENESIS, 1
    if start is not None:  # a head already trusted: check it still holds, then go on from it
        if not await _anchor_holds(session, start):
            return broken(start.seq, _REWRITTEN.format(which="the head signed last"))
        prev_hash, expected = start.hash, start.seq + 1
    while True:
        rows = (
            await session.exec(
                select(AuditRecord)
                .where(col(AuditRecord.seq) >= expected)
                .order_by(col(AuditRecord.seq))
                .limit(batch)
            )
        ).all()
        if not rows:
            break
        first, last = rows[0].seq, rows[-1].seq
        assert first is not None and last is not None  # the query says so
        signed = await _heads_between(session, first, last) if key else {}
        for row in rows:
            assert row.seq is not None and row.hash is not None  # the query says so
            fault = chain.row_fault(row, expected, prev_hash) or heads.head_fault(
                row, signed.get(row.seq), key, kid, against
            )
            if fault is not None:
                return broken(expected, fault)
            if row.seq in signed:  # empty without a key
                signed_seq = row.seq
            prev_hash, expected, checked = row.hash, row.seq + 1, checked + 1
    end = expected - 1
    cut = await _end_fault(session, end, key, kid, against)
    if cut is not None:
        return broken(*cut)
    unchained = (
        await session.exec(
            select(func.count()).select_from(AuditRecord).where(col(AuditRecord.seq).is_(None))
        )
    ).one()
    return Verdict(
        True,
        checked,
        signed_head_seq=signed_seq or (start.seq if start else None),
        witnessed_seq=against.seq if against else None,
        unchained=unchained,
        key_id=kid,
    )


async def _anchor_holds(session: AsyncSession, start: SignedHead) -> bool:
    """Whether the record a trusted head signed is still there with the same hash."""
    anchor = (
        await session.exec(select(AuditRecord).where(col(AuditRecord.seq) == start.seq))
    ).first()
    return anchor is not None and anchor.hash == start.hash


async def _end_fault(
    session: AsyncSession,
    end: int,
    key: Ed25519PublicKey | None,
    kid: str | None,
    against: SignedHead | None,
) -> tuple[int, str] | None:
    """Where and why the chain ends too early (a signed or witnessed head beyond it)."""
    if key is not None:
        beyond = (
            await session.exec(
                select(AuditHead).where(col(AuditHead.seq) > end).order_by(col(AuditHead.seq))
            )
        ).first()
        if beyond is not None:
            which = f"the head signed at record {beyond.seq}"
            if SignedHead.from_row(beyond).signed_by(key):
                return end + 1, _CUT.format(end=end, which=which)
            return (
                beyond.seq,
                f"a head beyond the chain's end is not signed by the configured key {kid}",
            )
    if against is not None and against.seq > end:
        return end + 1, _CUT.format(end=end, which=f"the witnessed head at record {against.seq}")
    return None


_REWRITTEN = heads.REWRITTEN
_CUT = "the chain was cut: it ends at record {end}, below {which}"


async def _heads_between(session: AsyncSession, low: int, high: int) -> dict[int, SignedHead]:
    rows = await session.exec(
        select(AuditHead).where(col(AuditHead.seq) >= low, col(AuditHead.seq) <= high)
    )
    return {row.seq: SignedHead.from_row(row) for row in rows}


async def sign_head(
    session: AsyncSession, key: Ed25519PrivateKey, *, extends: SignedHead | None = None
) -> SignedHead | None:
    """Sign the chain's last record, once the chain checks out from the last trusted head.

    The walk starts at `extends` (the head this process signed last) or else at the newest
    head in the database that this key signed, so a rewritten or cut chain is refused
    (ChainBroken) instead of being signed over. None when the chain is empty.
    """
    await chain.linked(session)
    public = key.public_key()
    start = extends or await _last_own_head(session, public)
    verdict = await _walk(session, public, start=start)
    if not verdict.ok:
        raise ChainBroken(verdict)
    tail = (
        await session.exec(
            select(AuditRecord.seq, AuditRecord.hash)
            .where(col(AuditRecord.seq).is_not(None))
            .order_by(col(AuditRecord.seq).desc())
            .limit(1)
        )
    ).first()
    if tail is None:
        return None
    seq, hash_ = tail
    assert seq is not None and hash_ is not None  # a linked record has both
    stored = await session.get(AuditHead, seq)
    if stored is not None and SignedHead.from_row(stored).signed_by(public):
        return SignedHead.from_row(stored)
    head = heads.sign(key, seq, hash_)
    insert = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )(AuditHead)
    await session.exec(insert.values(**head.to_row().model_dump()).on_conflict_do_nothing())
    return head


async def _last_own_head(session: AsyncSession, key: Ed25519PublicKey) -> SignedHead | None:
    """The newest head in the database that `key` signed (a foreign one is skipped here;
    `verify` reports it)."""
    rows = await session.exec(
        select(AuditHead)
        .where(AuditHead.key_id == heads.key_id(key))
        .order_by(col(AuditHead.seq).desc())
        .limit(100)
    )
    for row in rows:
        head = SignedHead.from_row(row)
        if head.signed_by(key):
            return head
    return None
