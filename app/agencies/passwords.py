"""Passwords after an account exists: an administrator's reset link, the user's own change.

No administrator chooses or learns another person's password. An administrator who may
manage a user (the rights of `service.managed_user`) issues a one-time set-password link
(`SetPasswordToken`, purpose `reset`), shown once; the user completes it through
`POST /auth/set-password` or the console page, like an invitation. Issuing it ends every
session of the user and makes the old password stop, so a suspected compromise is shut
at once; completing it ends every session again.

A user changes their own password with the current one. That check is a credential check
under the failed-login back-off, which lives in the auth package above this one: it
registers the implementation here (`register_own_password_change`), and an app without
one fails closed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime

from fastapi import Request
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies import invitations, service
from app.agencies.models import User
from app.agencies.schemas import PasswordChange
from app.authz import rights
from app.authz.principal import ActorKind, Principal
from app.core.errors import Conflict, Forbidden
from app.core.security import PasswordHashing, new_secret
from app.core.types import utcnow

RESET = "reset"
TOKEN_PREFIX = "twn_"  # noqa: S105 - a prefix, not a secret (a new password)


async def issue_password_reset(
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    *,
    hashing: PasswordHashing,
    ttl_seconds: int,
) -> tuple[User, str, datetime]:
    """A one-time set-password link for a user the principal manages; (user, token, expiry).

    The user's sessions end and their password stops at once; earlier unused links of the
    user (resets, a pending invitation) are revoked.
    """
    user = await service.managed_user(session, principal, user_id)
    if not user.is_active:
        raise Conflict("This account is deactivated; reactivate it first.")
    now = utcnow()
    # Nobody knows this password: until the link is used, nobody logs in as the user.
    user.password_hash = hashing.hash(new_secret(""))
    user.token_epoch += 1
    user.updated_at = now
    session.add(user)
    token, expires_at = await invitations.issue_link(
        session, user, principal, purpose=RESET, prefix=TOKEN_PREFIX, ttl_seconds=ttl_seconds
    )
    if not _forget_other_credentials:
        raise RuntimeError("No credential reset installed: the auth package registers it.")
    # Whatever else logs in without the password (a passkey planted with it) goes too.
    await _forget_other_credentials[0](session, user.id)
    await service.record_on_agency(
        session,
        principal,
        user.agency_id,
        "user.password_reset",
        object_type="user",
        object_id=user.id,
        details={"expires_at": expires_at.isoformat()},
    )
    return user, token, expires_at


def require_person(principal: Principal) -> None:
    """Only a user acting through a login changes their password: an API client rotates its
    secret, and a personal access token does not manage its user's credentials (403)."""
    if principal.kind != ActorKind.user:
        raise Forbidden("Only a user has a password; an API client's secret is rotated.")
    rights.require_in_person(principal)


# Checks the current password (under the back-off), sets the new one, ends sessions.
OwnPasswordChange = Callable[[AsyncSession, Request, Principal, PasswordChange], Awaitable[None]]


_own_password_change: list[OwnPasswordChange] = []
_forget_other_credentials: list[Callable[[AsyncSession, uuid.UUID], Awaitable[None]]] = []


def register_credential_reset(forget: Callable[[AsyncSession, uuid.UUID], Awaitable[None]]) -> None:
    """Install what a password reset also removes of the user's credentials (the auth
    package's passkeys); a reset with none installed fails closed."""
    _forget_other_credentials[:] = [forget]


def register_own_password_change(change: OwnPasswordChange) -> None:
    """Install the implementation of a user's own password change (the auth package's)."""
    _own_password_change[:] = [change]


async def change_own_password(
    session: AsyncSession, request: Request, principal: Principal, data: PasswordChange
) -> None:
    """A user's own password change: users only; the registered check does the rest."""
    require_person(principal)
    if not _own_password_change:
        raise RuntimeError("No password change installed: the auth package registers it.")
    await _own_password_change[0](session, request, principal, data)
