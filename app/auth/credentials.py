"""Checking a presented credential: a user's password, an API client's id and secret."""

from __future__ import annotations

from datetime import datetime

from fastapi import Request
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus, ApiClient, User
from app.agencies.schemas import PasswordChange
from app.audit import service as audit
from app.auth import mfa, principals
from app.auth.context import AuthContext, ErrorAfterCommit, OAuthError, kept_refusal
from app.auth.throttle import count_failure, get_throttle, refuse_while_blocked
from app.authz.principal import Principal
from app.core.errors import InvalidInput, Unauthorized
from app.core.security import digest_secret, new_secret, secrets_equal
from app.core.types import utcnow


async def authenticate_password(
    session: AsyncSession, ctx: AuthContext, *, username: str, password: str, channel: str
) -> User:
    """Check a password login (back-off, dummy verify, audit); the user, or ErrorAfterCommit.

    `channel` names where the login came from (`password` grant or `console`) in the audit.
    """
    throttle = await get_throttle(session, username)
    now = ctx.clock()
    await refuse_while_blocked(
        session, throttle, now, "auth.login", "throttled login", {"grant": channel}
    )
    row = (
        await session.exec(
            select(User, Agency)
            .join(Agency, col(Agency.id) == col(User.agency_id))
            .where(User.email == username.strip().lower(), col(User.deleted_at).is_(None))
        )
    ).first()
    user, agency = row if row else (None, None)
    ok = ctx.hashing.verify(user.password_hash if user else None, password)
    if not ok or user is None or agency is None or not principals.user_may_log_in(user, agency):
        # Recorded, then answered: the failure must survive the error answer. The typed
        # username is not kept for unknown accounts (it may be a mistyped password).
        await audit.record(
            session,
            None,
            "auth.login",
            object_type="user",
            object_id=user.id if user else None,
            agency_id=user.agency_id if user else None,
            actor_name=user.email if user else "unknown account",
            outcome="failure",
            details={"grant": channel},
        )
        count_failure(throttle, now, ctx.settings)
        session.add(throttle)
        await session.flush()
        raise ErrorAfterCommit(OAuthError("invalid_grant", "Invalid username or password."))
    if ctx.hashing.needs_rehash(user.password_hash):
        user.password_hash = ctx.hashing.hash(password)
        session.add(user)
    if mfa.due(ctx.settings, user, agency):
        # The password was right, but the login is not done: the back-off keeps counting
        # until the second factor, so a known password does not reset it for code guessing.
        return user
    await finish_login(session, user, channel=channel)
    return user


async def finish_login(
    session: AsyncSession, user: User, *, channel: str, factor: str | None = None
) -> None:
    """A login passed every factor: clear the account's back-off, note it, audit it.

    `factor` names the second factor used (`totp`, `recovery_code`), if any.
    """
    throttle = await get_throttle(session, user.email)
    await session.delete(throttle)
    user.last_login_at = utcnow()
    session.add(user)
    await session.flush()
    details: dict[str, object] = {"grant": channel}
    if factor:
        details["factor"] = factor
    await audit.record(
        session,
        None,
        "auth.login",
        object_type="user",
        object_id=user.id,
        agency_id=user.agency_id,
        actor_name=user.email,
        details=details,
    )


async def authenticate_client(
    session: AsyncSession, client_id: str, client_secret: str, *, now: datetime | None = None
) -> tuple[ApiClient, int]:
    """The active client with this id and secret (or, during a rotation's overlap, its
    previous secret), and the epoch of the secret that matched (a token issued with the
    previous secret carries the previous epoch, so it ends with the overlap); anything else
    is audited and refused."""
    invalid = OAuthError("invalid_client", "Client authentication failed.", status=401)
    parsed = principals.parse_uuid(client_id)
    row = None
    if parsed is not None:
        row = (
            await session.exec(
                select(ApiClient, Agency)
                .join(Agency, col(Agency.id) == col(ApiClient.agency_id))
                .where(ApiClient.id == parsed)
            )
        ).first()
    presented = digest_secret(client_secret)
    expected = row[0].secret_hash if row else digest_secret(new_secret(""))
    # Both compared every time, so the answer's timing does not tell which secret matched.
    matches = secrets_equal(expected, presented)
    matches_previous = secrets_equal(_previous_secret_hash(row[0] if row else None, now), presented)
    if (
        row is None
        or not (matches or matches_previous)
        or row[0].revoked_at is not None
        or row[1].status != AgencyStatus.active
    ):
        await audit.record(
            session,
            None,
            "auth.token",
            object_type="api_client",
            object_id=row[0].id if row else None,
            agency_id=row[0].agency_id if row else None,
            actor_name=row[0].name if row else "unknown client",
            outcome="failure",
            details={"grant": "client_credentials"},
        )
        raise ErrorAfterCommit(invalid)
    client = row[0]
    return client, client.token_epoch if matches else client.token_epoch - 1


def _previous_secret_hash(client: ApiClient | None, now: datetime | None) -> str:
    """The digest of the client's previous secret while its overlap runs, else one that
    matches nothing."""
    expires = client.previous_secret_expires_at if client else None
    if client is None or client.previous_secret_hash is None or expires is None:
        return _NO_SECRET
    return client.previous_secret_hash if (now or utcnow()) < expires else _NO_SECRET


_NO_SECRET = "-"  # noqa: S105 - never a SHA-256 hex digest, so it matches nothing


async def basic_client_principal(
    session: AsyncSession, ctx: AuthContext, *, client_id: str, client_secret: str
) -> Principal:
    """An API client authenticated per request with HTTP Basic (what TAXII clients send).

    The same secret check as the client-credentials grant, under the same failed-login
    back-off as password logins, keyed on the typed client id.
    """
    throttle = await get_throttle(session, f"client:{client_id}", lock=False)
    now = ctx.clock()
    await refuse_while_blocked(session, throttle, now, "auth.basic", "throttled client", {})
    try:
        client, _epoch = await authenticate_client(session, client_id, client_secret, now=now)
    except ErrorAfterCommit:
        # Counted on the row made if missing and locked: wrong secrets sent at once are
        # each counted, and none collides with another's first insert.
        throttle = await get_throttle(session, f"client:{client_id}")
        count_failure(throttle, now, ctx.settings)
        session.add(throttle)
        await session.flush()
        raise
    if throttle.failures:
        await session.delete(throttle)
    return principals.principal_of_client(client, "basic")  # no token: authenticated by HTTP Basic


async def change_own_password(
    session: AsyncSession, request: Request, principal: Principal, data: PasswordChange
) -> None:
    """A user's own password change (`POST /me/password`): the current password is checked
    under the same failed-login back-off as a login, keyed on the account; a success ends
    every session and token of the user, this one included."""
    ctx: AuthContext = request.app.state.auth
    minimum = ctx.hashing.min_length
    if len(data.new_password) < minimum:
        raise InvalidInput.on("new_password", f"must be at least {minimum} characters long")
    if data.new_password == data.current_password:
        raise InvalidInput.on("new_password", "must differ from the current password")
    # A refusal's audit record and back-off count are kept, then it is answered.
    async with kept_refusal(session):
        await _change_own_password(session, ctx, principal, data)


async def _change_own_password(
    session: AsyncSession, ctx: AuthContext, principal: Principal, data: PasswordChange
) -> None:
    user = await principals.live_user(session, principal.id)
    if user is None:  # the principal was live a moment ago; gone since: as for a bad token
        raise Unauthorized()
    throttle = await get_throttle(session, user.email)
    now = ctx.clock()
    await refuse_while_blocked(
        session, throttle, now, "user.change_password", "throttled password change", {}
    )
    if not ctx.hashing.verify(user.password_hash, data.current_password):
        await audit.record(
            session,
            principal,
            "user.change_password",
            object_type="user",
            object_id=user.id,
            outcome="failure",
        )
        count_failure(throttle, now, ctx.settings)
        session.add(throttle)
        await session.flush()
        raise ErrorAfterCommit(
            InvalidInput.on("current_password", "This is not your current password.")
        )
    await session.delete(throttle)
    user.password_hash = ctx.hashing.hash(data.new_password)
    user.token_epoch += 1
    user.updated_at = utcnow()
    session.add(user)
    await session.flush()
    await audit.record(
        session, principal, "user.change_password", object_type="user", object_id=user.id
    )
