"""Checking a presented credential: a user's password, an API client's id and secret."""

from __future__ import annotations

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus, ApiClient, User
from app.audit import service as audit
from app.auth import mfa, principals
from app.auth.context import AuthContext, ErrorAfterCommit, OAuthError
from app.auth.throttle import count_failure, get_throttle, refuse_while_blocked
from app.authz.principal import Principal
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
    session: AsyncSession, client_id: str, client_secret: str
) -> ApiClient:
    """The active client with this id and secret; anything else is audited and refused."""
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
    expected = row[0].secret_hash if row else digest_secret(new_secret(""))
    matches = secrets_equal(expected, digest_secret(client_secret))
    if (
        row is None
        or not matches
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
    return row[0]


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
        client = await authenticate_client(session, client_id, client_secret)
    except ErrorAfterCommit:
        count_failure(throttle, now, ctx.settings)
        session.add(throttle)
        await session.flush()
        raise
    if throttle.failures:
        await session.delete(throttle)
    return principals.principal_of_client(client, "basic")  # no token: authenticated by HTTP Basic
