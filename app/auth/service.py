"""OAuth2 grants, refresh-token rotation, revocation, and resolving a token to a principal."""

from __future__ import annotations

import base64
import binascii
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus, ApiClient, User
from app.audit import service as audit
from app.auth.models import AuthSession, LoginThrottle, RefreshToken, RevokedToken
from app.core.config import Settings
from app.core.errors import AppError, Unauthorized
from app.core.principal import ROLE_SCOPES, Principal, Role, Scope
from app.core.security import PasswordHashing, digest_secret, new_secret, secrets_equal
from app.core.tokens import InvalidToken, KeyRing
from app.core.types import utcnow

REFRESH_PREFIX = "twr_"


class OAuthError(AppError):
    """An RFC 6749 §5.2 error, rendered as a problem with the OAuth2 `error` code."""

    status, slug, title = 400, "oauth-error", "Token request refused"

    def __init__(
        self, error: str, description: str, *, status: int = 400, retry_after: int | None = None
    ) -> None:
        headers = {"WWW-Authenticate": 'Basic realm="tracewire"'} if status == 401 else {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        super().__init__(
            description, headers=headers, extra={"error": error, "error_description": description}
        )
        self.status = status


@dataclass(frozen=True)
class TokenGrant:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None


@dataclass(frozen=True)
class AuthContext:
    """What the auth service needs from the app: settings, keys and password hashing."""

    settings: Settings
    keys: KeyRing
    hashing: PasswordHashing
    clock: Callable[[], datetime] = utcnow  # replaced in tests to control time


# --- grants -----------------------------------------------------------------------------


async def password_grant(
    session: AsyncSession, ctx: AuthContext, *, username: str, password: str
) -> TokenGrant:
    """Log a user in; the same answer and about the same time whether or not they exist."""
    user = await authenticate_password(
        session, ctx, username=username, password=password, channel="password"
    )
    now = utcnow()
    login = AuthSession(
        user_id=user.id,
        expires_at=now + timedelta(seconds=ctx.settings.refresh_token_ttl_seconds),
        token_epoch=user.token_epoch,
    )
    session.add(login)
    await session.flush()
    return await _user_grant(session, ctx, user, login)


async def authenticate_password(
    session: AsyncSession, ctx: AuthContext, *, username: str, password: str, channel: str
) -> User:
    """Check a password login (back-off, dummy verify, audit); the user, or ErrorAfterCommit.

    `channel` names where the login came from (`password` grant or `console`) in the audit.
    """
    throttle = await _throttle(session, username)
    now = ctx.clock()
    await _refuse_while_blocked(
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
    if not ok or user is None or agency is None or not _user_may_log_in(user, agency):
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
        _count_failure(throttle, now, ctx.settings)
        session.add(throttle)
        await session.flush()
        raise ErrorAfterCommit(OAuthError("invalid_grant", "Invalid username or password."))
    if throttle.failures:
        await session.delete(throttle)
    if ctx.hashing.needs_rehash(user.password_hash):
        user.password_hash = ctx.hashing.hash(password)
    user.last_login_at = utcnow()
    session.add(user)
    await session.flush()
    await audit.record(
        session,
        None,
        "auth.login",
        object_type="user",
        object_id=user.id,
        agency_id=user.agency_id,
        actor_name=user.email,
        details={"grant": channel},
    )
    return user


async def client_credentials_grant(
    session: AsyncSession,
    ctx: AuthContext,
    *,
    client_id: str,
    client_secret: str,
    scope: str | None = None,
) -> TokenGrant:
    """Give an API client an access token (no refresh token, per RFC 6749 §4.4.3).

    `scope` narrows the token to some of the client's scopes (RFC 6749 §3.3); asking for
    one the client does not hold is `invalid_scope`, never a wider token.
    """
    client = await _authenticate_client(session, client_id, client_secret)
    scopes = _granted_scopes(client, scope)
    client.last_used_at = utcnow()
    session.add(client)
    await audit.record(
        session,
        None,
        "auth.token",
        object_type="api_client",
        object_id=client.id,
        agency_id=client.agency_id,
        actor_name=client.name,
        details={"grant": "client_credentials", "scope": scopes},
    )
    token = ctx.keys.sign(
        {
            "sub": str(client.id),
            "typ": "client",
            "agency": str(client.agency_id),
            "scope": scopes,
            "ep": client.token_epoch,
        },
        ttl=timedelta(seconds=ctx.settings.access_token_ttl_seconds),
    )
    return TokenGrant(token, ctx.settings.access_token_ttl_seconds, scopes)


def _granted_scopes(client: ApiClient, requested: str | None) -> str:
    """The scopes of a new client token: all the client holds, or the subset it asked for."""
    held = set(client.scopes.split())
    if requested is None or not requested.strip():
        return " ".join(sorted(held))
    wanted = set(requested.split())
    if not wanted <= held:
        # Named without the client's own list, so the answer reveals nothing new.
        raise OAuthError(
            "invalid_scope", "The requested scope is unknown or not granted to this client."
        )
    return " ".join(sorted(wanted))


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """(client id, secret) from `Authorization: Basic …`, or None when it is not that."""
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return (unquote(client_id), unquote(secret)) if sep else None


async def basic_client_principal(
    session: AsyncSession, ctx: AuthContext, *, client_id: str, client_secret: str
) -> Principal:
    """An API client authenticated per request with HTTP Basic (what TAXII clients send).

    The same secret check as the client-credentials grant, under the same failed-login
    back-off as password logins, keyed on the typed client id.
    """
    throttle = await _throttle(session, f"client:{client_id}")
    now = ctx.clock()
    await _refuse_while_blocked(session, throttle, now, "auth.basic", "throttled client", {})
    try:
        client = await _authenticate_client(session, client_id, client_secret)
    except ErrorAfterCommit:
        _count_failure(throttle, now, ctx.settings)
        session.add(throttle)
        await session.flush()
        raise
    if throttle.failures:
        await session.delete(throttle)
    return _principal_of_client(client, "basic")  # no token: authenticated by HTTP Basic


async def refresh_grant(
    session: AsyncSession, ctx: AuthContext, *, refresh_token: str
) -> TokenGrant:
    """Swap a refresh token for a new pair; replaying a used one ends the whole login."""
    invalid = OAuthError("invalid_grant", "Invalid or expired refresh token.")
    stored = (
        await session.exec(
            select(RefreshToken).where(RefreshToken.token_hash == digest_secret(refresh_token))
        )
    ).first()
    if stored is None:
        raise invalid
    login = await session.get(AuthSession, stored.session_id)
    now = utcnow()
    if login is None or login.revoked_at is not None:
        raise invalid
    if stored.used_at is not None:
        # A rotated token came back: someone holds a copy. End the family.
        login.revoked_at = now
        login.revoked_reason = "refresh_token_reuse"
        session.add(login)
        await session.flush()
        await audit.record(
            session,
            None,
            "auth.refresh_reuse",
            object_type="user",
            object_id=login.user_id,
            outcome="failure",
            actor_name="refresh token holder",
        )
        raise ErrorAfterCommit(invalid)
    if stored.expires_at <= now or login.expires_at <= now:
        raise invalid
    row = (
        await session.exec(
            select(User, Agency)
            .join(Agency, col(Agency.id) == col(User.agency_id))
            .where(User.id == login.user_id)
        )
    ).first()
    if row is None or not _user_may_log_in(*row) or not _epoch_current(login.token_epoch, row[0]):
        raise invalid
    stored.used_at = now
    session.add(stored)
    await session.flush()
    return await _user_grant(session, ctx, row[0], login)


class ErrorAfterCommit(Exception):
    """An error to answer only after committing what was done (the family revocation)."""

    def __init__(self, error: AppError) -> None:
        super().__init__(str(error))
        self.error = error


async def revoke(session: AsyncSession, ctx: AuthContext, *, token: str) -> None:
    """RFC 7009: end a refresh token's login, or an access token (and its login)."""
    now = utcnow()
    if token.startswith(REFRESH_PREFIX):
        stored = (
            await session.exec(
                select(RefreshToken).where(RefreshToken.token_hash == digest_secret(token))
            )
        ).first()
        if stored is not None:
            await _end_login(session, stored.session_id, "revoked")
        return
    try:
        claims = ctx.keys.verify(token)
    except InvalidToken:
        return  # RFC 7009 §2.2: an invalid token is not an error
    jti = str(claims["jti"])
    if await session.get(RevokedToken, jti) is None:
        expires = now + timedelta(seconds=max(0, int(claims["exp"]) - int(now.timestamp())))
        session.add(RevokedToken(jti=jti, expires_at=expires))
    if claims.get("sid"):
        await _end_login(session, _uuid(claims["sid"]), "revoked")
    await session.flush()


async def _end_login(session: AsyncSession, session_id: uuid.UUID | None, reason: str) -> None:
    login = await session.get(AuthSession, session_id) if session_id else None
    if login is not None and login.revoked_at is None:
        login.revoked_at = utcnow()
        login.revoked_reason = reason
        session.add(login)
        await session.flush()


async def _user_grant(
    session: AsyncSession, ctx: AuthContext, user: User, login: AuthSession
) -> TokenGrant:
    role = Role(user.role)
    scopes = " ".join(sorted(s.value for s in ROLE_SCOPES[role]))
    access = ctx.keys.sign(
        {
            "sub": str(user.id),
            "typ": "user",
            "agency": str(user.agency_id),
            "role": role.value,
            "scope": scopes,
            "sid": str(login.id),
        },
        ttl=timedelta(seconds=ctx.settings.access_token_ttl_seconds),
    )
    refresh = new_secret(REFRESH_PREFIX)
    session.add(
        RefreshToken(
            session_id=login.id,
            token_hash=digest_secret(refresh),
            expires_at=login.expires_at,
        )
    )
    await session.flush()
    return TokenGrant(access, ctx.settings.access_token_ttl_seconds, scopes, refresh)


async def _authenticate_client(
    session: AsyncSession, client_id: str, client_secret: str
) -> ApiClient:
    invalid = OAuthError("invalid_client", "Client authentication failed.", status=401)
    parsed = _uuid(client_id)
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
    if row is None or not matches or row[0].revoked_at is not None or row[1].status != "active":
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


async def _refuse_while_blocked(
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


async def _throttle(session: AsyncSession, username: str) -> LoginThrottle:
    key = hashlib.sha256(username.strip().lower().encode()).hexdigest()
    return await session.get(LoginThrottle, key) or LoginThrottle(key=key)


def _count_failure(throttle: LoginThrottle, now: datetime, settings: Settings) -> None:
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


def _user_may_log_in(user: User, agency: Agency) -> bool:
    return user.is_active and user.deleted_at is None and agency.status == AgencyStatus.active


def _epoch_current(opened_under: int, user: User) -> bool:
    """Whether a session opened under epoch `opened_under` predates no credential change.

    The one check behind "a password change ends every session at once": access and
    refresh tokens (through their login) and console sessions carry the user's
    `token_epoch` from when they were opened; API client tokens carry the client's.
    """
    return opened_under == user.token_epoch


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


# --- resolving a bearer token -----------------------------------------------------------


async def principal_from_token(session: AsyncSession, keys: KeyRing, token: str) -> Principal:
    """The live principal behind an access token, or 401 for anything amiss."""
    try:
        claims = keys.verify(token)
    except InvalidToken as exc:
        raise Unauthorized() from exc
    subject = _uuid(claims.get("sub"))
    jti = str(claims["jti"])
    if subject is None or await session.get(RevokedToken, jti) is not None:
        raise Unauthorized()
    if claims.get("typ") == "user":
        return await _user_principal(session, subject, claims, jti)
    if claims.get("typ") == "client":
        return await _client_principal(session, subject, claims, jti)
    raise Unauthorized()


async def _user_principal(
    session: AsyncSession, user_id: uuid.UUID, claims: dict[str, object], jti: str
) -> Principal:
    sid = _uuid(claims.get("sid"))
    if sid is None:
        raise Unauthorized()
    row = (
        await session.exec(
            select(User, Agency, AuthSession)
            .join(Agency, col(Agency.id) == col(User.agency_id))
            .join(AuthSession, col(AuthSession.user_id) == col(User.id))
            .where(User.id == user_id, AuthSession.id == sid)
        )
    ).first()
    if row is None:
        raise Unauthorized()
    user, agency, login = row
    if (
        not _user_may_log_in(user, agency)
        or login.revoked_at is not None
        or not _epoch_current(login.token_epoch, user)
    ):
        raise Unauthorized()
    return user_principal(user, token_id=jti, session_id=login.id)


def user_principal(user: User, *, token_id: str, session_id: uuid.UUID | None) -> Principal:
    """The principal of a live user; role and scopes come from the database row."""
    # Not from the token or cookie: a demotion bites at once.
    role = Role(user.role)
    return Principal(
        kind="user",
        id=user.id,
        agency_id=user.agency_id,
        role=role,
        scopes=ROLE_SCOPES[role],
        name=user.email,
        token_id=token_id,
        session_id=session_id,
    )


async def live_user(
    session: AsyncSession, user_id: uuid.UUID, *, token_epoch: int | None = None
) -> User | None:
    """The user if they and their agency may still act (active, not deleted, not suspended)
    and, given the `token_epoch` a session was opened under, their credentials are unchanged."""
    row = (
        await session.exec(
            select(User, Agency)
            .join(Agency, col(Agency.id) == col(User.agency_id))
            .where(User.id == user_id)
        )
    ).first()
    if row is None or not _user_may_log_in(*row):
        return None
    if token_epoch is not None and not _epoch_current(token_epoch, row[0]):
        return None
    return row[0]


async def _client_principal(
    session: AsyncSession, client_id: uuid.UUID, claims: dict[str, object], jti: str
) -> Principal:
    row = (
        await session.exec(
            select(ApiClient, Agency)
            .join(Agency, col(Agency.id) == col(ApiClient.agency_id))
            .where(ApiClient.id == client_id)
        )
    ).first()
    if row is None:
        raise Unauthorized()
    client, agency = row
    granted = claims.get("scope")
    if (
        client.revoked_at is not None
        or agency.status != AgencyStatus.active
        or claims.get("ep", 0) != client.token_epoch  # issued before a secret rotation
        or not isinstance(granted, str)
    ):
        raise Unauthorized()
    return _principal_of_client(client, jti, granted=set(granted.split()))


def _principal_of_client(
    client: ApiClient, token_id: str, *, granted: set[str] | None = None
) -> Principal:
    """The client's principal: the scopes it holds now, narrowed to those its token carries."""
    held = set(client.scopes.split())
    return Principal(
        kind="client",
        id=client.id,
        agency_id=client.agency_id,
        role=None,
        scopes=frozenset(Scope(s) for s in (held if granted is None else held & granted)),
        name=client.name,
        token_id=token_id,
    )
