"""Linking audit records into the hash chain: in order, each exactly once, none left out.

A record is inserted by the transaction it describes, without a place in the chain (`seq`,
`prev_hash`, `hash` are NULL), so no request holds a lock for it. Linking gives the
committed, unlinked records the next places in insertion order; it runs

- on PostgreSQL, in the background once the writing transaction has committed (its answer
  does not wait), in a short transaction of its own under an advisory lock (one linking run
  at a time across every process; one run in flight per process, which covers every commit
  made before it started, so the commits of a busy moment share one run);
- on SQLite, just before the writing transaction commits: it already holds the database's
  only writer slot (BEGIN IMMEDIATE), so it links in place;
- and in the worker's sweep, for anything a crashed process committed but did not link.

Each run links every unlinked record it can see, not only its own, under the lock and only
`WHERE seq IS NULL`; the database refuses to set `seq` twice (trigger) or to give two
records one `seq` (unique index).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit.models import AuditRecord
from app.core import db
from app.core.columns import table_of

log = logging.getLogger("tracewire.audit")

GENESIS = "0" * 64
HASHED_FIELDS = (
    "seq", "at", "actor_id", "actor_kind", "actor_name", "agency_id", "action",
    "object_type", "object_id", "outcome", "request_id", "client_ip", "details",
)  # fmt: skip
TABLE = table_of(AuditRecord)
# Every linking run holds this transaction-scoped lock on PostgreSQL, so two runs never read
# the same tail; it is released at their commit, a few milliseconds later.
_PG_CHAIN_LOCK = 7_245_102
# A run that cannot get the lock this fast leaves its records to the next run or the sweep
# (nothing is lost: they are committed); a request never waits on it for longer.
LOCK_TIMEOUT_MS = 1000
SWEEP_LOCK_TIMEOUT_MS = 10_000
BATCH = 1000

_UNLINKED = sa.select(TABLE).where(TABLE.c.seq.is_(None)).order_by(TABLE.c.id).limit(BATCH)
_LAST = TABLE.alias("last")
_TAIL = (
    sa.select(_LAST.c.seq.label("tail_seq"), _LAST.c.hash.label("tail_hash"))
    .where(_LAST.c.seq.is_not(None))
    .order_by(_LAST.c.seq.desc())
    .limit(1)
    .subquery("tail")
)
# The first batch of unlinked records and the chain's tail in one statement (every row
# carries the tail; none is read when nothing waits). It runs after the lock is granted,
# so its snapshot sees every link committed before.
_FIRST_UNLINKED = (
    sa.select(TABLE, _TAIL.c.tail_seq, _TAIL.c.tail_hash)
    .select_from(TABLE.outerjoin(_TAIL, sa.true()))
    .where(TABLE.c.seq.is_(None))
    .order_by(TABLE.c.id)
    .limit(BATCH)
)
_LINK = (
    sa.update(TABLE)
    .where(TABLE.c.id == sa.bindparam("_id"), TABLE.c.seq.is_(None))
    .values(seq=sa.bindparam("_seq"), prev_hash=sa.bindparam("_prev"), hash=sa.bindparam("_hash"))
)


def canonical(record: Mapping[str, Any] | AuditRecord) -> str:
    """The record's canonical JSON (sorted keys, no spaces, UTC times, string ids)."""
    values: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = record[name] if isinstance(record, Mapping) else getattr(record, name)
        if isinstance(value, datetime):
            value = value.isoformat(timespec="microseconds")
        elif isinstance(value, uuid.UUID):
            value = str(value)
        values[name] = value
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, record: Mapping[str, Any] | AuditRecord) -> str:
    """SHA-256 over the previous hash and this record's canonical JSON."""
    return hashlib.sha256(f"{prev_hash}\n{canonical(record)}".encode()).hexdigest()


def link(rows: Sequence[dict[str, Any]], tail: tuple[int, str]) -> tuple[int, str]:
    """Give each row, in order, the next `seq`, the previous hash and its own; the new tail."""
    seq, prev_hash = tail
    for row in rows:
        seq += 1
        row["seq"], row["prev_hash"] = seq, prev_hash
        row["hash"] = prev_hash = chain_hash(prev_hash, row)
    return seq, prev_hash


# PostgreSQL: one statement links a whole batch.
_LINK_PG = sa.text(
    "UPDATE audit_record AS r SET seq = v.seq, prev_hash = v.prev, hash = v.hash "
    "FROM unnest(CAST(:ids AS bigint[]), CAST(:seqs AS bigint[]), CAST(:prevs AS text[]), "
    "CAST(:hashes AS text[])) AS v(id, seq, prev, hash) WHERE r.id = v.id AND r.seq IS NULL"
)


def chain_pending(
    conn: Connection, *, lock_timeout_ms: int | None = LOCK_TIMEOUT_MS, durable: bool = True
) -> int:
    """Link every committed record not in the chain yet, in insertion order; how many.

    `durable=False` (a linking run of its own) does not wait for its commit to reach the disk:
    links lost in a crash leave their records unlinked, for the sweep to link again, and any
    later commit that waits (a signed head's) makes them durable first.
    """
    postgres = conn.dialect.name == "postgresql"
    if postgres:
        timeout = "0" if lock_timeout_ms is None else str(int(lock_timeout_ms))
        conn.execute(
            sa.text(
                "SELECT set_config('lock_timeout', :timeout, true), "
                "set_config('synchronous_commit', :sync, true), pg_advisory_xact_lock(:key)"
            ),
            {"timeout": timeout, "sync": "on" if durable else "off", "key": _PG_CHAIN_LOCK},
        )
    rows, tail = _first_unlinked(conn)
    linked = 0
    while rows:
        tail = link(rows, tail)
        _write_links(conn, rows, postgres=postgres)
        linked += len(rows)
        if len(rows) < BATCH:
            break
        rows = [dict(r._mapping) for r in conn.execute(_UNLINKED)]
    return linked


def _first_unlinked(conn: Connection) -> tuple[list[dict[str, Any]], tuple[int, str]]:
    """The first batch of unlinked records, and the chain's tail (seq, hash) they follow."""
    rows = [dict(r._mapping) for r in conn.execute(_FIRST_UNLINKED)]
    tail = (0, GENESIS)
    for row in rows:
        seq, hashed = row.pop("tail_seq"), row.pop("tail_hash")
        if seq is not None:
            tail = (seq, hashed)
    return rows, tail


def _write_links(conn: Connection, rows: list[dict[str, Any]], *, postgres: bool) -> None:
    """Store the places `link()` gave the rows (only where a row has none yet)."""
    if postgres:
        conn.execute(
            _LINK_PG,
            {
                "ids": [r["id"] for r in rows],
                "seqs": [r["seq"] for r in rows],
                "prevs": [r["prev_hash"] for r in rows],
                "hashes": [r["hash"] for r in rows],
            },
        )
    else:
        conn.execute(
            _LINK,
            [
                {"_id": r["id"], "_seq": r["seq"], "_prev": r["prev_hash"], "_hash": r["hash"]}
                for r in rows
            ],
        )


# How long a reader of the trail waits for the linking of what its process committed before
# it (a run waits at most LOCK_TIMEOUT_MS for the lock); past that it reads what is linked.
READ_WAIT_S = 2 * LOCK_TIMEOUT_MS / 1000


class _Linker:
    """One linking run at a time per engine and process, in the background; a run covers
    every commit made before it started, so commits that arrive during a run share the next."""

    def __init__(self) -> None:
        self.committed = 0  # commits that asked for a run
        self.covered = 0  # commits that a finished run started after
        self.task: asyncio.Task[None] | None = None
        self.waiters: list[tuple[int, asyncio.Future[None]]] = []  # (commit ticket, waiter)

    def after_commit(self, engine: AsyncEngine) -> int:
        """Have the commit just made linked; its ticket, for `wait_for`."""
        self.committed += 1
        if self.task is None or self.task.done():
            self.task = db.spawn(engine, self._run(engine))
        return self.committed

    async def wait_for(self, ticket: int, at_most_s: float | None) -> None:
        """Until a run has covered commit `ticket` (not every later one), the runs have
        given up (the sweep links it), or `at_most_s` seconds have passed."""
        if self.covered >= ticket or self.task is None or self.task.done():
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append((ticket, waiter))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), at_most_s)
        except TimeoutError:
            log.warning("read the audit trail before this process's last records were linked")
        finally:
            if (ticket, waiter) in self.waiters:
                self.waiters.remove((ticket, waiter))

    async def _run(self, engine: AsyncEngine) -> None:
        try:
            while self.covered < self.committed:
                target = self.committed
                try:
                    async with engine.begin() as conn:
                        await conn.run_sync(lambda sync: chain_pending(sync, durable=False))
                except Exception:  # committed records: the next run or the sweep links them
                    log.warning("audit records left unlinked for the sweep", exc_info=True)
                    return
                self.covered = target
                self._release(target)
        finally:
            self._release(None)  # nothing runs any more: no one waits for it

    def _release(self, upto: int | None) -> None:
        for ticket, waiter in self.waiters:
            if (upto is None or ticket <= upto) and not waiter.done():
                waiter.set_result(None)


_linkers: weakref.WeakKeyDictionary[Engine, tuple[asyncio.AbstractEventLoop, _Linker]] = (
    weakref.WeakKeyDictionary()
)


def _linker(engine: AsyncEngine, *, create: bool) -> _Linker | None:
    """This event loop's linker of `engine` (one per process and engine)."""
    loop = asyncio.get_running_loop()
    known = _linkers.get(engine.sync_engine)
    if known is None or known[0] is not loop:
        if not create:
            return None
        known = _linkers[engine.sync_engine] = (loop, _Linker())
    return known[1]


async def link_after_commit(session: AsyncSession) -> None:
    """Start linking what the session just committed (queued by the append hook on
    PostgreSQL), without waiting for it: the answer does not carry the records' places.
    Once the engine is being disposed of (a shutdown), the commit waits for its link, so a
    process that ends next leaves nothing to the sweep."""
    engine = session.bind
    if not isinstance(engine, AsyncEngine):
        return  # not one of ours; the sweep links them
    linker = _linker(engine, create=True)
    assert linker is not None  # created
    ticket = linker.after_commit(engine)
    if db.closing(engine):
        await linker.wait_for(ticket, None)


async def linked(session: AsyncSession) -> None:
    """Wait for the linking of what this process committed before now (a reader of the trail
    sees it in the chain), at most READ_WAIT_S; later commits are not waited for."""
    if isinstance(session.bind, AsyncEngine):
        linker = _linker(session.bind, create=False)
        if linker is not None:
            await linker.wait_for(linker.committed, READ_WAIT_S)


async def sweep(session: AsyncSession) -> int:
    """Link whatever was committed but not linked (a process died in between); how many."""
    conn = await session.connection()
    if (await conn.execute(sa.select(TABLE.c.id).where(TABLE.c.seq.is_(None)).limit(1))).first():
        return await conn.run_sync(
            lambda sync: chain_pending(sync, lock_timeout_ms=SWEEP_LOCK_TIMEOUT_MS)
        )
    return 0  # the usual case: nothing to do, and no lock taken for it


def row_fault(row: AuditRecord, expected: int, prev_hash: str) -> str | None:
    """Why a record breaks the chain on its own (gap, link, content), or None."""
    if row.seq != expected:
        return f"record {expected} is missing"
    if row.prev_hash != prev_hash:
        return "does not link to the record before it"
    if chain_hash(prev_hash, row) != row.hash:
        return "content does not match its hash"
    return None
