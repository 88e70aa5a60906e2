"""OAuth2 grants (password, client credentials, refresh-token rotation) and revocation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, ApiClient, User
from app.audit import service as audit
from app.auth import credentials, mfa, personal, principals
from app.auth.context import AuthContext, ErrorAfterCommit, OAuthError
from app.auth.models import AuthSession, RefreshToken, RevokedToken
from app.authz.principal import ROLE_SCOPES
from app.core.security import digest_secret, new_secret
from app.core.tokens import InvalidToken
from app.core.types import utcnow

REFRESH_PREFIX = "twr_"


@dataclass(frozen=True)
class TokenGrant:
    """What a grant hands back: the access token, its lifetime and scope, maybe a refresh token."""

    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None


async def password_grant(
    session: AsyncSession,
    ctx: AuthContext,
    *,
    username: str,
    password: str,
    otp: str | None = None,
) -> TokenGrant:
    """Log a user in; the same answer and about the same time whether or not they exist.

    A user with a second factor gives its code (or a recovery code) as `otp`; a user whose
    agency requires one and who has none gets no token until they enrol (in the console).
    """
    user = await credentials.authenticate_password(
        session, ctx, username=username, password=password, channel="password"
    )
    agency = await session.get(Agency, user.agency_id)
    assert agency is not None  # authenticate_password joined it
    if mfa.due(ctx.settings, user, agency):
        if not mfa.enrolled(user):
            raise OAuthError(
                "mfa_enrollment_required",
                "Your agency requires a second factor: log in to the console to set one up.",
            )
        if not otp:
            raise OAuthError(
                "mfa_required", "This account logs in with a one-time code: send it as `otp`."
            )
        factor = await mfa.verify(session, ctx, user, otp, channel="password")
        await credentials.finish_login(session, user, channel="password", factor=factor)
    now = utcnow()
    login = AuthSession(
        user_id=user.id,
        expires_at=now + timedelta(seconds=ctx.settings.refresh_token_ttl_seconds),
        token_epoch=user.token_epoch,
    )
    session.add(login)
    await session.flush()
    return await _user_grant(session, ctx, user, login)


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
    client, epoch = await credentials.authenticate_client(session, client_id, client_secret)
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
            "ep": epoch,
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
    if (
        row is None
        or not principals.user_may_log_in(*row)
        or not principals.epoch_current(login.token_epoch, row[0])
    ):
        raise invalid
    if mfa.required(ctx.settings, row[1]) and not mfa.enrolled(row[0]):
        # A login from before the rule renews no token: the user sets up a factor first.
        raise OAuthError(
            "mfa_enrollment_required",
            "Your agency requires a second factor: log in to the console to set one up.",
        )
    stored.used_at = now
    session.add(stored)
    await session.flush()
    return await _user_grant(session, ctx, row[0], login)


async def revoke(session: AsyncSession, ctx: AuthContext, *, token: str) -> None:
    """RFC 7009: end a refresh token's login, a personal access token, or an access token
    (and its login)."""
    now = utcnow()
    if personal.looks_personal(token):
        await personal.revoke_presented(session, token, now=ctx.clock())
        return
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
        await _end_login(session, principals.parse_uuid(claims["sid"]), "revoked")
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
    role = user.role
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
