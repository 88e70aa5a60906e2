"""The background worker: periodic jobs, run by `tracewire worker` or inside `serve`.

Jobs are plain async functions taking a session; each run commits once. Later issues
add their jobs here (trace deadlines, webhook deliveries). Today: housekeeping of the
auth tables, so revoked and expired token records do not pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, delete
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import heads as audit_heads
from app.audit import jobs as audit_jobs
from app.auth.models import AuthSession, RevokedToken
from app.core.config import Settings
from app.core.db import Database
from app.core.idempotency import purge_idempotency_records
from app.core.types import utcnow
from app.hits import matching as hits
from app.traces import query as traces

log = logging.getLogger("tracewire.worker")

Job = Callable[[AsyncSession], Awaitable[int]]


async def purge_expired_auth(session: AsyncSession) -> int:
    """Delete revocation records of expired tokens and logins over a day past their end."""
    now = utcnow()
    revoked = await session.exec(delete(RevokedToken).where(col(RevokedToken.expires_at) < now))
    stale = await session.exec(
        delete(AuthSession).where(col(AuthSession.expires_at) < now - timedelta(days=1))
    )
    return (revoked.rowcount or 0) + (stale.rowcount or 0)


@dataclass(frozen=True)
class Schedule:
    name: str
    job: Job
    every_seconds: float


async def flag_overdue_traces(session: AsyncSession) -> int:
    """Raise passed trace-request deadlines (once each) and record `trace.overdue`."""
    return await traces.flag_overdue(session)


async def match_released_alerts(session: AsyncSession) -> int:
    """Match the alerts whose embargo has passed since they were published, once each."""
    return await hits.match_released(session)


def schedules(settings: Settings) -> tuple[Schedule, ...]:
    """The default jobs, plus signing the audit head (everywhere but a verify-only host)."""
    key = audit_heads.signing_key(settings)
    if key is None:
        return DEFAULT_SCHEDULES
    signer = audit_jobs.head_signer(key)
    return (
        *DEFAULT_SCHEDULES,
        Schedule("sign_audit_head", signer, settings.audit_sign_every_seconds),
    )


DEFAULT_SCHEDULES = (
    Schedule("flag_overdue_traces", flag_overdue_traces, 60.0),
    Schedule("match_released_alerts", match_released_alerts, 15.0),
    Schedule("purge_expired_auth", purge_expired_auth, 3600.0),
    Schedule("purge_idempotency_records", purge_idempotency_records, 3600.0),
    Schedule("link_audit_records", audit_jobs.link_leftovers, 5.0),
)


class Worker:
    """Runs each scheduled job at its interval until stopped."""

    def __init__(self, db: Database, schedules: tuple[Schedule, ...] = DEFAULT_SCHEDULES) -> None:
        self.db = db
        self.schedules = schedules
        self._stop = asyncio.Event()

    async def run_once(self, schedule: Schedule) -> int:
        """Run one job in its own transaction; errors are logged, never fatal."""
        try:
            async with self.db.session() as session:
                count = await schedule.job(session)
                await session.commit()
        except Exception:
            log.exception("job failed", extra={"job": schedule.name})
            return 0
        if count:
            log.info("job done", extra={"job": schedule.name, "count": count})
        return count

    async def _loop(self, schedule: Schedule) -> None:
        while not self._stop.is_set():
            await self.run_once(schedule)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=schedule.every_seconds)

    async def run(self) -> None:
        """Run every schedule until `stop()`."""
        log.info("worker started", extra={"jobs": [s.name for s in self.schedules]})
        await asyncio.gather(*(self._loop(s) for s in self.schedules))
        log.info("worker stopped")

    def stop(self) -> None:
        """Ask every loop to finish after its current run."""
        self._stop.set()
