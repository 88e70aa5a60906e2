"""`/api/v1/me/mfa`: a user's own second factor; an administrator's reset of a user's; an
agency's rule that its users log in with one."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import Agency, User
from app.audit import service as audit
from app.auth import mfa
from app.auth.context import kept_refusal
from app.auth.deps import AuthContextDep
from app.auth.schemas import MfaPolicy, MfaStatus, OtpProof, RecoveryCodes, TotpEnrolment
from app.authz import rights
from app.authz.deps import CurrentPrincipal
from app.authz.principal import Principal
from app.core.db import SessionDep
from app.core.errors import Conflict, NotFound, problem_responses

router = APIRouter(prefix="/api/v1", tags=["auth"])
ERRORS = problem_responses(401, 403, 404, 409, 422)
BODY_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429)


async def _login_user(session: AsyncSession, principal: Principal) -> User:
    """The user behind a login (a password-grant token or a console session), or 403.

    API clients have no second factor, and a personal access token does not manage the
    factors that protect logins.
    """
    rights.require_in_person(principal)
    user = await session.get(User, principal.id)
    if user is None:
        raise NotFound("No such user.")
    return user


@router.get("/me/mfa", response_model=MfaStatus, responses=ERRORS)
async def read_mfa(
    session: SessionDep, ctx: AuthContextDep, principal: CurrentPrincipal
) -> MfaStatus:
    """Whether your second factor is set up and how many recovery codes are left."""
    user = await _login_user(session, principal)
    agency = await session.get(Agency, user.agency_id)
    assert agency is not None
    return MfaStatus(
        enrolled=mfa.enrolled(user),
        confirmed_at=user.totp_confirmed_at,
        recovery_codes_left=await mfa.recovery_codes_left(session, user),
        required=mfa.required(ctx.settings, agency),
    )


@router.post("/me/mfa/totp", response_model=TotpEnrolment, status_code=201, responses=ERRORS)
async def start_totp(
    session: SessionDep, ctx: AuthContextDep, principal: CurrentPrincipal, response: Response
) -> TotpEnrolment:
    """Start setting up an authenticator app: its secret, shown this once, and QR code."""
    user = await _login_user(session, principal)
    enrolment = await mfa.start_enrolment(session, ctx.settings, user)
    response.headers["Cache-Control"] = "no-store"
    return TotpEnrolment(
        secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri, qr_svg=enrolment.qr_svg
    )


@router.post("/me/mfa/totp/confirm", response_model=RecoveryCodes, responses=BODY_ERRORS)
async def confirm_totp(
    data: OtpProof,
    session: SessionDep,
    ctx: AuthContextDep,
    principal: CurrentPrincipal,
    response: Response,
) -> RecoveryCodes:
    """Finish setting up with the app's first code; your recovery codes, shown this once."""
    user = await _login_user(session, principal)
    codes = await mfa.confirm_enrolment(session, ctx, user, data.code, principal)
    response.headers["Cache-Control"] = "no-store"
    return RecoveryCodes(recovery_codes=codes)


@router.post("/me/mfa/recovery-codes", response_model=RecoveryCodes, responses=BODY_ERRORS)
async def renew_recovery_codes(
    data: OtpProof,
    session: SessionDep,
    ctx: AuthContextDep,
    principal: CurrentPrincipal,
    response: Response,
) -> RecoveryCodes:
    """Replace your recovery codes (the old ones stop), proven with a current code."""
    user = await _login_user(session, principal)
    async with kept_refusal(session):
        await mfa.verify(session, ctx, user, data.code, channel="api")
    codes = await mfa.new_recovery_codes(session, user)
    await audit.record(
        session, principal, "mfa.recovery_codes", object_type="user", object_id=user.id
    )
    response.headers["Cache-Control"] = "no-store"
    return RecoveryCodes(recovery_codes=codes)


@router.post("/me/mfa/remove", status_code=204, responses=BODY_ERRORS)
async def remove_mfa(
    data: OtpProof, session: SessionDep, ctx: AuthContextDep, principal: CurrentPrincipal
) -> Response:
    """Remove your second factor, proven with a current code; every session of yours ends.

    Refused while the platform or your agency requires one.
    """
    user = await _login_user(session, principal)
    agency = await session.get(Agency, user.agency_id)
    assert agency is not None
    if mfa.required(ctx.settings, agency):
        raise Conflict("A second factor is required for your account; it cannot be removed.")
    async with kept_refusal(session):
        await mfa.verify(session, ctx, user, data.code, channel="api")
    await mfa.remove(session, user, principal, "removed")
    return Response(status_code=204)


@router.post("/users/{user_id}/mfa-reset", status_code=204, tags=["users"], responses=ERRORS)
async def reset_mfa(
    user_id: uuid.UUID, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    """Remove a user's second factor (a lost phone); every session of theirs ends, and they
    set up a new one at their next login if one is required."""
    await mfa.reset(session, principal, user_id)
    return Response(status_code=204)


@router.put(
    "/agencies/{agency_id}/mfa-policy",
    response_model=MfaPolicy,
    tags=["agencies"],
    responses=BODY_ERRORS,
)
async def set_mfa_policy(
    agency_id: uuid.UUID, data: MfaPolicy, session: SessionDep, principal: CurrentPrincipal
) -> MfaPolicy:
    """Require (or stop requiring) a second factor of the agency's users (its administrators).

    A user without one is walked through setting it up at their next login and gets no
    token before.
    """
    agency = await mfa.set_rule(session, principal, agency_id, data.require_mfa)
    return MfaPolicy(require_mfa=agency.require_mfa)
