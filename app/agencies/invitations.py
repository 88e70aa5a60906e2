"""An agency's first administrator: invited by the operator, sets their own password.

The operator never chooses or learns a password of another agency. It may invite an
agency's *first* `agency_admin` only (while the agency has never had another user);
the invitation is a random single-use token, stored as a digest, with an expiry, shown
once. The invited user sets their own password with it (`POST /auth/set-password` or
the console page); from then on that agency's administrators manage its users.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies import service
from app.agencies.models import Agency, AgencyStatus, SetPasswordToken, User
from app.agencies.schemas import InvitationCreate, SetPassword
from app.audit import service as audit
from app.authz import rights
from app.authz.principal import Principal, Role
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.security import PasswordHashing, digest_secret, new_secret
from app.core.types import utcnow

TOKEN_PREFIX = "twi_"  # noqa: S105 - a prefix, not a secret
INVITATION = "invitation"
CONSOLE_PAGE = "/console/set-password"


def set_password_url(public_url: str) -> str:
    """The console page where an invited user enters the token and their password.

    The token is not put in the address: addresses end up in access logs and histories.
    """
    return f"{public_url.rstrip('/')}{CONSOLE_PAGE}"


async def invite_first_admin(
    session: AsyncSession,
    principal: Principal,
    agency_id: uuid.UUID,
    data: InvitationCreate,
    *,
    hashing: PasswordHashing,
    ttl_seconds: int,
) -> tuple[User, str, datetime]:
    """Create (or re-invite) an agency's first `agency_admin`; (user, token, expiry).

    Asking again before the invitation was used replaces it (the old token stops).
    """
    rights.require_platform_admin(principal)
    # Locked (PostgreSQL) so that two invitations at once cannot make two "first" admins.
    agency = (
        await session.exec(select(Agency).where(Agency.id == agency_id).with_for_update())
    ).first()
    if agency is None:
        raise NotFound("No such agency.")
    if agency.id == principal.agency_id or agency.is_operator:
        raise Conflict("The operator's own users are created by its administrators directly.")
    if agency.status != AgencyStatus.active:
        raise Conflict("A suspended agency cannot be given an administrator; reactivate it.")
    user = await _pending_first_admin(session, agency.id)
    now = utcnow()
    if user is None:
        await service.ensure_email_free(session, data.email)
        # Nobody knows this password: the account is unusable until the link is used.
        user = User(
            agency_id=agency.id,
            email=data.email,
            full_name=data.full_name,
            role=Role.agency_admin,
            password_hash=hashing.hash(new_secret("")),
        )
    else:
        if data.email != user.email:
            await service.ensure_email_free(session, data.email)
        user.email, user.full_name, user.updated_at = data.email, data.full_name, now
    session.add(user)
    await session.flush()
    token, expires_at = await issue_link(
        session, user, principal, purpose=INVITATION, prefix=TOKEN_PREFIX, ttl_seconds=ttl_seconds
    )
    await service.record_on_agency(
        session,
        principal,
        agency.id,
        "user.invite",
        object_type="user",
        object_id=user.id,
        details={"role": Role.agency_admin.value, "expires_at": expires_at.isoformat()},
    )
    return user, token, expires_at


async def issue_link(
    session: AsyncSession,
    user: User,
    principal: Principal,
    *,
    purpose: str,
    prefix: str,
    ttl_seconds: int,
) -> tuple[str, datetime]:
    """A new one-time set-password link for `user` (the token, shown once, and its expiry);
    every earlier unused link of the user stops."""
    now = utcnow()
    await session.exec(
        update(SetPasswordToken)
        .where(
            col(SetPasswordToken.user_id) == user.id,
            col(SetPasswordToken.used_at).is_(None),
            col(SetPasswordToken.revoked_at).is_(None),
        )
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    token = new_secret(prefix)
    expires_at = now + timedelta(seconds=ttl_seconds)
    session.add(
        SetPasswordToken(
            user_id=user.id,
            token_hash=digest_secret(token),
            purpose=purpose,
            created_by=principal.id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    await session.flush()
    return token, expires_at


async def _pending_first_admin(session: AsyncSession, agency_id: uuid.UUID) -> User | None:
    """The invited first administrator who has not set a password yet, if that is the only
    user the agency ever had; None for an agency without users; 409 otherwise."""
    users = (await session.exec(select(User).where(User.agency_id == agency_id).limit(2))).all()
    if not users:
        return None
    refused = Conflict(
        "This agency already has users; its administrators manage them (an operator may "
        "only invite an agency's first administrator)."
    )
    if len(users) > 1:
        raise refused
    user = users[0]
    tokens = (
        await session.exec(
            select(SetPasswordToken.used_at).where(SetPasswordToken.user_id == user.id)
        )
    ).all()
    if not tokens or any(used is not None for used in tokens) or user.deleted_at is not None:
        raise refused
    return user


async def set_password(
    session: AsyncSession, data: SetPassword, *, hashing: PasswordHashing
) -> User:
    """Use a set-password link: the user's own password, once; the token is spent."""
    invalid = InvalidInput.on(
        "token", "This link is not valid: it was used, replaced or has expired."
    )
    now = utcnow()
    row = (
        await session.exec(
            select(SetPasswordToken).where(SetPasswordToken.token_hash == digest_secret(data.token))
        )
    ).first()
    if row is None:
        raise invalid
    user = await session.get(User, row.user_id)
    if user is None or user.deleted_at is not None or not user.is_active:
        raise invalid
    if len(data.password) < hashing.min_length:
        raise InvalidInput.on("password", f"must be at least {hashing.min_length} characters long")
    # Spent atomically: of two concurrent uses of one token, only one finds it unused.
    spent = await session.exec(
        update(SetPasswordToken)
        .where(
            col(SetPasswordToken.id) == row.id,
            col(SetPasswordToken.used_at).is_(None),
            col(SetPasswordToken.revoked_at).is_(None),
            col(SetPasswordToken.expires_at) > now,
        )
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if spent.rowcount != 1:
        raise invalid
    user.password_hash = hashing.hash(data.password)
    user.token_epoch += 1
    user.updated_at = now
    session.add(user)
    await session.flush()
    await audit.record(
        session,
        None,
        "user.set_password",
        object_type="user",
        object_id=user.id,
        agency_id=user.agency_id,
        actor_name=user.email,
        details={"purpose": row.purpose},
    )
    return user
