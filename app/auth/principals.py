"""Resolving a bearer token to a live principal; who may still log in; token epochs."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, AgencyStatus, ApiClient, User
from app.auth import mfa, personal
from app.auth.models import AuthSession, RevokedToken
from app.authz.principal import ROLE_SCOPES, ActorKind, Principal, Scope, narrowed
from app.core.errors import Unauthorized
from app.core.tokens import InvalidToken, KeyRing
from app.core.types import utcnow


async def principal_from_token(
    session: AsyncSession,
    keys: KeyRing,
    token: str,
    *,
    now: datetime | None = None,
    platform_requires_mfa: bool = False,
) -> Principal:
    """The live principal behind an access token, or 401 for anything amiss.

    A personal access token (`twp_…`) is told apart by its prefix before any JWT parsing;
    `now` (the auth context's clock) decides whether it has expired.
    """
    if personal.looks_personal(token):
        return await _personal_principal(
            session, token, now=now or utcnow(), platform_requires_mfa=platform_requires_mfa
        )
    try:
        claims = keys.verify(token)
    except InvalidToken as exc:
        raise Unauthorized() from exc
    subject = parse_uuid(claims.get("sub"))
    jti = str(claims["jti"])
    if subject is None:
        raise Unauthorized()
    if claims.get("typ") == "user":
        return await _user_principal(session, subject, claims, jti)
    if claims.get("typ") == "client":
        return await _client_principal(session, subject, claims, jti)
    raise Unauthorized()


async def _user_principal(
    session: AsyncSession, user_id: uuid.UUID, claims: dict[str, object], jti: str
) -> Principal:
    sid = parse_uuid(claims.get("sid"))
    if sid is None:
        raise Unauthorized()
    row = (
        await session.exec(_USER_LOOKUP, params={"user_id": user_id, "sid": sid, "jti": jti})
    ).first()
    if row is None:
        raise Unauthorized()
    user, agency, login = row
    if (
        not user_may_log_in(user, agency)
        or login.revoked_at is not None
        or not epoch_current(login.token_epoch, user)
    ):
        raise Unauthorized()
    return user_principal(user, token_id=jti, session_id=login.id)


async def _personal_principal(
    session: AsyncSession, token: str, *, now: datetime, platform_requires_mfa: bool
) -> Principal:
    """The user behind a personal access token, narrowed to its scopes; 401 unless the
    token is known, live and unexpired, and its user may act with the credentials and a
    role that holds every scope it was created with."""
    found = await personal.find(session, token, now=now)
    if found is None:
        raise Unauthorized()
    pat, user, agency = found
    if (
        not user_may_log_in(user, agency)
        or not epoch_current(pat.token_epoch, user)  # password changed or reset since
        or not personal.within_role(pat, user)  # demoted since
        # A rule requiring a second factor stops the tokens of a user who has none.
        or ((platform_requires_mfa or agency.require_mfa) and not mfa.enrolled(user))
    ):
        raise Unauthorized()
    await personal.touch(session, pat, now=now)
    scopes = personal.scopes_of(pat) or frozenset()
    token_id = f"pat:{pat.id}"
    return narrowed(
        user_principal(user, token_id=token_id, session_id=None),
        scopes,
        personal_token_id=pat.id,
        token_id=token_id,
    )


# The one look-up per request, built once (its parameters bound at each execution): the
# principal's rows, and that no revocation of the token's `jti` is on record.
_NOT_REVOKED = ~sa.exists().where(col(RevokedToken.jti) == sa.bindparam("jti"))
_USER_LOOKUP = (
    select(User, Agency, AuthSession)
    .join(Agency, col(Agency.id) == col(User.agency_id))
    .join(AuthSession, col(AuthSession.user_id) == col(User.id))
    .where(
        col(User.id) == sa.bindparam("user_id"),
        col(AuthSession.id) == sa.bindparam("sid"),
        _NOT_REVOKED,
    )
)
_CLIENT_LOOKUP = (
    select(ApiClient, Agency)
    .join(Agency, col(Agency.id) == col(ApiClient.agency_id))
    .where(col(ApiClient.id) == sa.bindparam("client_id"), _NOT_REVOKED)
)


def user_principal(user: User, *, token_id: str, session_id: uuid.UUID | None) -> Principal:
    """The principal of a live user; role and scopes come from the database row."""
    # Not from the token or cookie: a demotion bites at once.
    return Principal(
        kind=ActorKind.user,
        id=user.id,
        agency_id=user.agency_id,
        role=user.role,
        scopes=ROLE_SCOPES[user.role],
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
    if row is None or not user_may_log_in(*row):
        return None
    if token_epoch is not None and not epoch_current(token_epoch, row[0]):
        return None
    return row[0]


async def _client_principal(
    session: AsyncSession, client_id: uuid.UUID, claims: dict[str, object], jti: str
) -> Principal:
    row = (await session.exec(_CLIENT_LOOKUP, params={"client_id": client_id, "jti": jti})).first()
    if row is None:
        raise Unauthorized()
    client, agency = row
    granted = claims.get("scope")
    if (
        client.revoked_at is not None
        or agency.status != AgencyStatus.active
        or not client_epoch_current(claims.get("ep", 0), client, utcnow())
        or not isinstance(granted, str)
    ):
        raise Unauthorized()
    return principal_of_client(client, jti, granted=set(granted.split()))


def client_epoch_current(issued_under: object, client: ApiClient, now: datetime) -> bool:
    """Whether a client token issued under epoch `issued_under` still stands: issued since
    the last secret rotation, or just before it while that rotation's overlap runs."""
    if issued_under == client.token_epoch:
        return True
    expires = client.previous_secret_expires_at
    return (
        issued_under == client.token_epoch - 1
        and client.previous_secret_hash is not None
        and expires is not None
        and now < expires
    )


def principal_of_client(
    client: ApiClient, token_id: str, *, granted: set[str] | None = None
) -> Principal:
    """The client's principal: the scopes it holds now, narrowed to those its token carries."""
    held = set(client.scopes.split())
    return Principal(
        kind=ActorKind.client,
        id=client.id,
        agency_id=client.agency_id,
        role=None,
        scopes=frozenset(Scope(s) for s in (held if granted is None else held & granted)),
        name=client.name,
        token_id=token_id,
    )


def user_may_log_in(user: User, agency: Agency) -> bool:
    """Whether a user may log in or keep acting: active, not deleted, agency not suspended."""
    return user.is_active and user.deleted_at is None and agency.status == AgencyStatus.active


def epoch_current(opened_under: int, user: User) -> bool:
    """Whether a session opened under epoch `opened_under` predates no credential change.

    The one check behind "a password change ends every session at once": access and
    refresh tokens (through their login) and console sessions carry the user's
    `token_epoch` from when they were opened; API client tokens carry the client's.
    """
    return opened_under == user.token_epoch


def parse_uuid(value: object) -> uuid.UUID | None:
    """The UUID a claim or typed id spells, or None when it spells none."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None
