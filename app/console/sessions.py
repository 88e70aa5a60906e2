"""Console sessions: server-side rows behind an opaque cookie, with idle and absolute expiry."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, User
from app.auth import principals
from app.auth.context import AuthContext
from app.authz.principal import Principal
from app.console.models import ConsoleSession
from app.core.security import digest_secret, new_secret

COOKIE = "tw_console"
LOGIN_CSRF_COOKIE = "tw_console_login"
COOKIE_PATH = "/console"
TOKEN_PREFIX = "twc_"  # noqa: S105 - a prefix, not a secret


@dataclass(frozen=True)
class Live:
    """A live console session: the principal, the CSRF token and names for the header.

    Plain values, not rows: a page shown after a rollback must not reload them.
    """

    session_id: uuid.UUID
    principal: Principal
    csrf: str
    agency_name: str


async def start(session: AsyncSession, ctx: AuthContext, user: User) -> str:
    """Open a session for a user who just logged in; the cookie value (shown once)."""
    now = ctx.clock()
    token = new_secret(TOKEN_PREFIX)
    session.add(
        ConsoleSession(
            token_hash=digest_secret(token),
            user_id=user.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=now + timedelta(seconds=ctx.settings.console_session_lifetime_seconds),
            token_epoch=user.token_epoch,
        )
    )
    await session.flush()
    return token


async def resume(session: AsyncSession, ctx: AuthContext, token: str | None) -> Live | None:
    """The live session behind a cookie, touched; None if unknown, expired or no longer allowed.

    The user and the agency are read again on every request, like a bearer token's
    principal: a suspended agency, a deactivated user or a changed password is out at the
    next click.
    """
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = (
        await session.exec(
            select(ConsoleSession).where(ConsoleSession.token_hash == digest_secret(token))
        )
    ).first()
    if row is None:
        return None
    now = ctx.clock()
    idle = timedelta(seconds=ctx.settings.console_idle_timeout_seconds)
    user = await principals.live_user(session, row.user_id, token_epoch=row.token_epoch)
    if row.expires_at <= now or row.last_seen_at + idle <= now or user is None:
        await session.delete(row)
        await session.flush()
        return None
    row.last_seen_at = now
    session.add(row)
    await session.flush()
    agency = await session.get(Agency, user.agency_id)
    assert agency is not None  # live_user joined it
    principal = principals.user_principal(user, token_id=f"console:{row.id}", session_id=None)
    return Live(
        session_id=row.id, principal=principal, csrf=row.csrf_token, agency_name=agency.name
    )


async def end(session: AsyncSession, token: str | None) -> None:
    """Log out: delete the session row (an unknown cookie is not an error)."""
    if token:
        await session.exec(
            delete(ConsoleSession).where(col(ConsoleSession.token_hash) == digest_secret(token))
        )
        await session.flush()


def set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    """Set a console cookie: HttpOnly, SameSite=Strict, on /console, and Secure as the
    `console_cookie_secure` setting says (unset: when the browser came over https, directly
    or through a trusted proxy)."""
    setting = request.app.state.settings.console_cookie_secure
    secure = (
        bool(setting)
        if setting is not None
        else getattr(request.state, "client_scheme", request.url.scheme) == "https"
    )
    response.set_cookie(
        name, value, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure
    )
