"""A user's second factor: TOTP (RFC 6238) with one-time recovery codes.

Enrolment is two steps: a new secret is stored unconfirmed and shown (as an `otpauth://`
URI and its QR code), then the first code from the authenticator confirms it and the
recovery codes are shown, once. A code is accepted for the current 30-second step or the
one either side, and only once: the step of the last accepted code is kept, and no code
of that step or an earlier one passes again. Wrong codes count as failed logins on the
account's back-off (`app/auth/throttle.py`), like wrong passwords.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import pyotp
import segno
from sqlalchemy import or_, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, User
from app.audit import service as audit
from app.auth import passkeys
from app.auth.context import AuthContext, ErrorAfterCommit, OAuthError
from app.auth.models import RecoveryCode
from app.auth.throttle import count_failure, get_throttle, refuse_while_blocked
from app.authz import rights
from app.authz.principal import Principal
from app.core.config import Settings
from app.core.errors import Conflict, InvalidInput, NotFound
from app.core.security import digest_secret, secrets_equal
from app.core.types import utcnow

STEP_SECONDS = 30
DIGITS = 6
RECOVERY_CODES = 10
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i to misread


@dataclass(frozen=True)
class Enrolment:
    """A started enrolment: the secret, the URI an authenticator app reads, its QR code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


def required(settings: Settings, agency: Agency) -> bool:
    """Whether users of `agency` must log in with a second factor (the platform's rule or
    the agency's own)."""
    return settings.require_mfa or agency.require_mfa


def enrolled(user: User) -> bool:
    """Whether the user has a confirmed second factor."""
    return user.totp_secret is not None and user.totp_confirmed_at is not None


def due(settings: Settings, user: User, agency: Agency) -> bool:
    """Whether a login of `user` needs a second step: to give a code, or to enrol first."""
    return enrolled(user) or required(settings, agency)


async def start_enrolment(session: AsyncSession, settings: Settings, user: User) -> Enrolment:
    """A new, unconfirmed secret for the user (replacing an unconfirmed one); 409 when a
    confirmed second factor exists (it is reset first, by the user or an administrator)."""
    if enrolled(user):
        raise Conflict("A second factor is already set up; remove or reset it first.")
    user.totp_secret = pyotp.random_base32()
    user.totp_confirmed_at = None
    user.totp_last_step = None
    session.add(user)
    await session.flush()
    return enrolment_of(settings, user)


def enrolment_of(settings: Settings, user: User) -> Enrolment:
    """The URI and QR code of the user's unconfirmed secret (to show the page again)."""
    assert user.totp_secret is not None
    uri = pyotp.TOTP(user.totp_secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=user.email, issuer_name=settings.mfa_issuer
    )
    return Enrolment(user.totp_secret, uri, qr_svg(uri))


def qr_svg(text: str) -> str:
    """`text` as an inline SVG QR code (no external request, no image file)."""
    return segno.make(text, error="m").svg_inline(scale=4, title="Scan with your authenticator")


async def confirm_enrolment(
    session: AsyncSession, ctx: AuthContext, user: User, code: str, actor: Principal | None
) -> list[str]:
    """Confirm the unconfirmed secret with its first code; the new recovery codes (shown once)."""
    if user.totp_secret is None or enrolled(user):
        raise Conflict("There is no second factor waiting for confirmation; start again.")
    step = matching_step(user.totp_secret, code, ctx.clock())
    if step is None:
        raise InvalidInput.on("code", "is not the current code of this authenticator")
    user.totp_confirmed_at = ctx.clock()
    user.totp_last_step = step
    session.add(user)
    codes = await new_recovery_codes(session, user)
    await audit.record(
        session,
        actor,
        "mfa.enrol",
        object_type="user",
        object_id=user.id,
        agency_id=user.agency_id,
        actor_name=None if actor else user.email,
    )
    return codes


async def new_recovery_codes(session: AsyncSession, user: User) -> list[str]:
    """Replace the user's recovery codes with ten new ones; stored as digests, shown once."""
    await session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    for code in codes:
        session.add(RecoveryCode(user_id=user.id, code_hash=digest_secret(_normal(code))))
    await session.flush()
    return codes


def _recovery_code() -> str:
    text = "".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10))
    return f"{text[:5]}-{text[5:]}"


def _normal(code: str) -> str:
    return "".join(code.split()).replace("-", "").lower()


def matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step whose code `code` is (the current one or one either side), or None."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)
    current = int(now.timestamp()) // STEP_SECONDS
    for step in (current, current - 1, current + 1):
        if secrets_equal(totp.generate_otp(step), code):
            return step
    return None


async def verify(
    session: AsyncSession, ctx: AuthContext, user: User, code: str, *, channel: str
) -> str:
    """Check the second step of a login: a TOTP code not used before, or an unused recovery
    code. Returns which (`totp` or `recovery_code`). A wrong code is audited, counted on the
    account's back-off and refused (`ErrorAfterCommit`); while the back-off runs, 429."""
    throttle = await get_throttle(session, user.email)
    now = ctx.clock()
    await refuse_while_blocked(
        session, throttle, now, "auth.login", user.email, {"grant": channel, "factor": "second"}
    )
    method = await _accept(session, user, code, now)
    if method is None:
        await audit.record(
            session,
            None,
            "auth.login",
            object_type="user",
            object_id=user.id,
            agency_id=user.agency_id,
            actor_name=user.email,
            outcome="failure",
            details={"grant": channel, "factor": "second"},
        )
        count_failure(throttle, now, ctx.settings)
        session.add(throttle)
        await session.flush()
        raise ErrorAfterCommit(OAuthError("invalid_grant", "Invalid or already used code."))
    return method


async def _accept(session: AsyncSession, user: User, code: str, now: datetime) -> str | None:
    if not enrolled(user) or not code or len(code) > 40:
        return None
    assert user.totp_secret is not None
    step = matching_step(user.totp_secret, code, now)
    if step is not None:
        # One conditional UPDATE: of two logins racing with the same code, the second
        # waits for the first's row lock, then finds the step taken (a replay).
        taken = await session.exec(
            update(User)
            .where(
                col(User.id) == user.id,
                or_(col(User.totp_last_step).is_(None), col(User.totp_last_step) < step),
            )
            .values(totp_last_step=step)
        )
        if taken.rowcount != 1:
            return None  # replayed: this code, or a later one, was accepted before
        set_committed_value(user, "totp_last_step", step)
        return "totp"
    spent = await session.exec(
        update(RecoveryCode)
        .where(
            col(RecoveryCode.code_hash) == digest_secret(_normal(code)),
            col(RecoveryCode.user_id) == user.id,
            col(RecoveryCode.used_at).is_(None),
        )
        .values(used_at=now)
    )
    return "recovery_code" if spent.rowcount == 1 else None


async def recovery_codes_left(session: AsyncSession, user: User) -> int:
    """How many of the user's recovery codes are unused."""
    rows = await session.exec(
        select(RecoveryCode.id).where(
            RecoveryCode.user_id == user.id, col(RecoveryCode.used_at).is_(None)
        )
    )
    return len(rows.all())


async def remove(session: AsyncSession, user: User, actor: Principal | None, reason: str) -> None:
    """Remove the user's second factor and recovery codes; every session of the user ends.

    `reason` names it in the audit trail: `removed` by the user, `reset` by an administrator.
    """
    user.totp_secret = None
    user.totp_confirmed_at = None
    user.totp_last_step = None
    user.token_epoch += 1
    user.updated_at = utcnow()
    session.add(user)
    await session.exec(delete(RecoveryCode).where(col(RecoveryCode.user_id) == user.id))
    await session.flush()
    await audit.record(
        session,
        actor,
        f"mfa.{reason}",
        object_type="user",
        object_id=user.id,
        agency_id=user.agency_id,
        actor_name=None if actor else user.email,
    )


async def reset(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> User:
    """An administrator removes a user's second factor (a lost phone): the rights of managing
    that user; every session of the user ends."""
    rights.require_admin(principal)
    user = await session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("No such user.")
    rights.require_agency_manager(principal, user.agency_id, missing="No such user.")
    rights.require_role_grant(principal, user.role)
    await remove(session, user, principal, "reset")
    await passkeys.forget_all(session, user.id)  # a lost device: its passkey goes too
    return user


async def set_rule(
    session: AsyncSession, principal: Principal, agency_id: uuid.UUID, require: bool
) -> Agency:
    """The agency's administrators require (or stop requiring) a second factor of its users."""
    rights.require_agency_manager(principal, agency_id)
    agency = await session.get(Agency, agency_id)
    if agency is None:
        raise NotFound("No such agency.")
    if agency.require_mfa != require:
        agency.require_mfa = require
        agency.updated_at = utcnow()
        session.add(agency)
        await session.flush()
        await audit.record(
            session, principal, "agency.mfa_policy", object_type="agency", object_id=agency.id,
            agency_id=agency.id, details={"require_mfa": require},
        )  # fmt: skip
    return agency
