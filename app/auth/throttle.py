"""Failed-login back-off: per account (or typed client id), a doubling block after misses."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import service as audit
from app.auth.context import ErrorAfterCommit, OAuthError
from app.auth.models import LoginThrottle
from app.core.config import Settings
from app.core.types import utcnow


async def get_throttle(session: AsyncSession, username: str, *, lock: bool = True) -> LoginThrottle:
    """The back-off row of a login name, locked until the transaction ends.

    Made if missing (INSERT … ON CONFLICT DO NOTHING), then read FOR UPDATE: parallel
    attempts on one name take turns, so each sees the failures before it and none is lost
    (else guesses sent at once would all pass a check made before any was counted). On
    SQLite the INSERT takes the database's write lock, which serialises them the same way.
    A person logs in one attempt at a time, so the turns cost nothing.

    `lock=False` (HTTP Basic API clients, which authenticate every request and may send
    many at once, with 256-bit secrets no one guesses): the row as it is, or a new unsaved
    one, without a turn.
    """
    key = hashlib.sha256(username.strip().lower().encode()).hexdigest()
    if not lock:
        return await session.get(LoginThrottle, key) or LoginThrottle(key=key)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.exec(
        insert(LoginThrottle)
        .values(key=key, failures=0, window_started_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
    )
    row = (
        await session.exec(
            select(LoginThrottle)
            .where(LoginThrottle.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).one()
    return row


async def refuse_while_blocked(
    session: AsyncSession,
    throttle: LoginThrottle,
    now: datetime,
    action: str,
    actor_name: str,
    details: dict[str, object],
) -> None:
    """While an account's back-off runs: audit the attempt and answer 429 with Retry-After."""
    if throttle.blocked_until is None or throttle.blocked_until <= now:
        return
    wait = max(1, int((throttle.blocked_until - now).total_seconds()) + 1)
    await audit.record(
        session,
        None,
        action,
        outcome="throttled",
        actor_name=actor_name,
        details=details | {"retry_after": wait},
    )
    raise ErrorAfterCommit(
        OAuthError(
            "slow_down", "Too many failed attempts; try again later.", status=429, retry_after=wait
        )
    )


def count_failure(throttle: LoginThrottle, now: datetime, settings: Settings) -> None:
    """Count a failure; past the allowance, block for a doubling delay (capped)."""
    window = timedelta(seconds=settings.login_backoff_max_seconds)
    if throttle.failures and throttle.window_started_at < now - window:
        throttle.failures = 0
    if not throttle.failures:
        throttle.window_started_at = now
    throttle.failures += 1
    over = throttle.failures - settings.login_max_failures
    if over >= 0:
        delay = min(
            settings.login_backoff_base_seconds * 2**over, settings.login_backoff_max_seconds
        )
        throttle.blocked_until = now + timedelta(seconds=delay)
