"""Personal access tokens: a user's named, scoped, expiring tokens for scripts.

A token acts as its user narrowed to the token's scopes (`app.authz.principal.narrowed`),
while its user may log in, still holds every scope of the token and keeps the
credentials (`token_epoch`) it was created under. Only a user acting in person creates,
lists or revokes them (`rights.require_in_person`). The token is shown once; only its
SHA-256 digest is stored, as for API client secrets.

`app.auth.principals` resolves a presented token: this module finds it and says whether
the token itself (not its user) is still good; that module checks the user, so the rules
of who may still act stay in one place.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, User
from app.audit import service as audit
from app.auth import mfa
from app.auth.models import PersonalAccessToken
from app.auth.personal_schemas import PersonalTokenCreate
from app.authz import rights
from app.authz.principal import ROLE_SCOPES, Principal, Scope
from app.core.errors import Forbidden, InvalidInput, NotFound
from app.core.pagination import keyset_page
from app.core.security import digest_secret, new_secret

PREFIX = "twp_"
HINT_LENGTH = 8  # the prefix and four characters, as for API client secrets
MAX_LENGTH = 200  # a token is 47 characters; anything much longer is not one of ours
# `last_used_at` is a hint for the owner ("is this script still running?"), not an audit
# record: written at most once a minute, so a busy script does not write on every request.
TOUCH_INTERVAL = timedelta(minutes=1)

# The one look-up per request, built once: the token by digest, its user and agency.
_LOOKUP = (
    select(PersonalAccessToken, User, Agency)
    .join(User, col(User.id) == col(PersonalAccessToken.user_id))
    .join(Agency, col(Agency.id) == col(User.agency_id))
    .where(col(PersonalAccessToken.token_hash) == sa.bindparam("token_hash"))
)


def looks_personal(token: str) -> bool:
    """Whether a bearer token is a personal access token (rather than a JWT)."""
    return token.startswith(PREFIX)


async def find(
    session: AsyncSession, token: str, *, now: datetime
) -> tuple[PersonalAccessToken, User, Agency] | None:
    """The token's row with its user and agency, if the token is known, not revoked and not
    expired at `now`; None otherwise. Whether its user may still act is not checked here."""
    if len(token) > MAX_LENGTH:
        return None
    row = (await session.exec(_LOOKUP, params={"token_hash": digest_secret(token)})).first()
    if row is None:
        return None
    pat = row[0]
    if pat.revoked_at is not None or now >= pat.expires_at:
        return None
    return row


def scopes_of(pat: PersonalAccessToken) -> frozenset[Scope] | None:
    """The token's scopes, or None if one of them is no longer a scope at all."""
    try:
        return frozenset(Scope(s) for s in pat.scopes.split())
    except ValueError:
        return None


def within_role(pat: PersonalAccessToken, user: User) -> bool:
    """Whether the user's current role still holds every scope of the token (a demoted
    user's token stops working rather than silently losing part of what it did)."""
    held = scopes_of(pat)
    return held is not None and bool(held) and held <= ROLE_SCOPES[user.role]


async def touch(session: AsyncSession, pat: PersonalAccessToken, *, now: datetime) -> None:
    """Note that the token was used, unless that was noted less than a minute ago."""
    if pat.last_used_at is not None and now - pat.last_used_at < TOUCH_INTERVAL:
        return
    await session.exec(
        sa.update(PersonalAccessToken)
        .where(col(PersonalAccessToken.id) == pat.id)
        .values(last_used_at=now)
    )


async def create_token(
    session: AsyncSession,
    principal: Principal,
    data: PersonalTokenCreate,
    *,
    now: datetime,
    platform_requires_mfa: bool = False,
) -> tuple[PersonalAccessToken, str]:
    """A new token of the signed-in user; the token itself is returned this once.

    Refused (403) while a rule requires a second factor the user has not set up: a token
    would outlive the login that a password alone opened.
    """
    rights.require_in_person(principal)
    wanted = set(data.scopes)
    beyond = sorted(s.value for s in wanted - principal.scopes)
    if beyond:
        raise InvalidInput.on(
            "scopes",
            f"Your role does not hold {', '.join(beyond)}: a token can only carry scopes "
            f"you hold ({', '.join(sorted(principal.scopes))}).",
            "scope_not_held",
        )
    user = await session.get(User, principal.id)
    if user is None:  # the principal was resolved from this row in this transaction
        raise NotFound("No such user.")
    agency = await session.get(Agency, user.agency_id)
    required = platform_requires_mfa or (agency is not None and agency.require_mfa)
    if required and not mfa.enrolled(user):
        raise Forbidden("Your agency requires a second factor: set one up before making tokens.")
    secret = new_secret(PREFIX)
    pat = PersonalAccessToken(
        user_id=user.id,
        name=data.name,
        token_hash=digest_secret(secret),
        token_hint=secret[:HINT_LENGTH],
        scopes=" ".join(sorted(s.value for s in wanted)),
        token_epoch=user.token_epoch,
        created_at=now,
        expires_at=now + timedelta(days=data.expires_in_days),
    )
    session.add(pat)
    await session.flush()
    await audit.record(
        session,
        principal,
        "personal_token.create",
        object_type="personal_token",
        object_id=pat.id,
        details={
            "name": pat.name,
            "scopes": pat.scopes.split(),
            "expires_at": pat.expires_at.isoformat(),
        },
    )
    return pat, secret


async def list_tokens(
    session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
) -> tuple[Sequence[PersonalAccessToken], str | None]:
    """The signed-in user's tokens that were not revoked (expired ones too), newest first."""
    rights.require_in_person(principal)
    query = select(PersonalAccessToken).where(
        col(PersonalAccessToken.user_id) == principal.id,
        col(PersonalAccessToken.revoked_at).is_(None),
    )
    return await keyset_page(
        session, query, PersonalAccessToken, limit=limit, cursor=cursor, newest_first=True
    )


async def revoke_token(
    session: AsyncSession, principal: Principal, token_id: uuid.UUID, *, now: datetime
) -> None:
    """Revoke one of the signed-in user's tokens; anyone else's (or a revoked one) is 404."""
    rights.require_in_person(principal)
    pat = await session.get(PersonalAccessToken, token_id, with_for_update=True)
    if pat is None or pat.user_id != principal.id or pat.revoked_at is not None:
        raise NotFound("No such token.")
    pat.revoked_at = now
    session.add(pat)
    await session.flush()
    await audit.record(
        session,
        principal,
        "personal_token.revoke",
        object_type="personal_token",
        object_id=pat.id,
        details={"name": pat.name},
    )


async def revoke_presented(session: AsyncSession, token: str, *, now: datetime) -> None:
    """RFC 7009 for a personal access token: whoever holds it may end it (an unknown or
    spent one is not an error)."""
    found = await find(session, token, now=now)
    if found is None:
        return
    pat, user, _agency = found
    pat.revoked_at = now
    session.add(pat)
    await session.flush()
    await audit.record(
        session, None, "personal_token.revoke", object_type="personal_token", object_id=pat.id,
        agency_id=user.agency_id, actor_name="token holder", details={"name": pat.name},
    )  # fmt: skip
