"""Failed-login back-off: per account (or typed client id), a doubling block after misses."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.audit import service as audit
from app.auth.context import ErrorAfterCommit, OAuthError
from app.auth.models import LoginThrottle
from app.core.config import Settings


async def get_throttle(session: AsyncSession, username: str) -> LoginThrottle:
    """The back-off row of a login name (a new, unsaved one when it has none)."""
    key = hashlib.sha256(username.strip().lower().encode()).hexdigest()
    return await session.get(LoginThrottle, key) or LoginThrottle(key=key)


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
