"""The console login's second step: a code from the authenticator (or a recovery code), or,
for a user whose agency requires a second factor and who has none, setting one up first.

Between the password and the second step the browser holds a short-lived signed
"pending" cookie naming the user, the credentials (`token_epoch`) it was given under and,
during enrolment, a fingerprint of the secret generated for this login (so a secret
someone else started is never shown). No console session exists before the second step.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel.ext.asyncio.session import AsyncSession

from app.agencies.models import User
from app.auth import credentials, mfa, principals
from app.auth.context import AuthContext, OAuthError, kept_refusal
from app.auth.deps import AuthContextDep
from app.console import sessions
from app.console.deps import render
from app.core.db import SessionDep
from app.core.errors import AppError
from app.core.security import secrets_equal
from app.core.tokens import InvalidToken

router = APIRouter(prefix="/console", include_in_schema=False)
PENDING_COOKIE = "tw_console_mfa"
PENDING_TTL = timedelta(minutes=5)
PAGE = "/console/login/second-factor"


@dataclass(frozen=True)
class Pending:
    user: User
    secret_print: str | None  # set while enrolling: the secret this login generated
    next: str


def _print(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


async def begin(session: AsyncSession, ctx: AuthContext, user: User, next_url: str) -> str:
    """After a right password, when a second step is due: the pending cookie's value.

    A user without a second factor gets a new secret here, bound to this login.
    """
    claims: dict[str, object] = {"sub": str(user.id), "typ": "mfa_pending", "next": next_url}
    if not mfa.enrolled(user):
        enrolment = await mfa.start_enrolment(session, ctx.settings, user)
        claims["tf"] = _print(enrolment.secret)
    claims["ep"] = user.token_epoch
    return ctx.keys.sign(claims, ttl=PENDING_TTL, now=ctx.clock())


async def _pending(session: AsyncSession, ctx: AuthContext, request: Request) -> Pending | None:
    token = request.cookies.get(PENDING_COOKIE)
    if not token or len(token) > 4096:
        return None
    try:
        claims = ctx.keys.verify(token, now=ctx.clock())
    except InvalidToken:
        return None
    user_id = principals.parse_uuid(claims.get("sub"))
    epoch = claims.get("ep")
    if claims.get("typ") != "mfa_pending" or user_id is None or not isinstance(epoch, int):
        return None
    user = await principals.live_user(session, user_id, token_epoch=epoch)
    if user is None:
        return None
    secret_print = claims.get("tf")
    if secret_print is not None and (
        mfa.enrolled(user)
        or user.totp_secret is None
        or not secrets_equal(str(secret_print), _print(user.totp_secret))
    ):
        return None  # enrolment finished or restarted elsewhere: log in again
    return Pending(user, str(secret_print) if secret_print else None, str(claims.get("next")))


def _page(
    request: Request,
    pending: Pending,
    ctx: AuthContext,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    csrf = secrets.token_urlsafe(32)
    context: dict[str, object] = {"login_csrf": csrf, "error": error, "enrolling": False}
    if pending.secret_print is not None:
        enrolment = mfa.enrolment_of(ctx.settings, pending.user)
        context |= {
            "enrolling": True,
            "secret": enrolment.secret,
            "otpauth_uri": enrolment.otpauth_uri,
            "qr_svg": enrolment.qr_svg,
        }
    response = render(request, "login_second_factor.html", context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    sessions.set_cookie(request, response, sessions.LOGIN_CSRF_COOKIE, csrf)
    return response


def _restart() -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(PENDING_COOKIE, path=sessions.COOKIE_PATH)
    return response


@router.get("/login/second-factor")
async def second_factor_form(
    request: Request, session: SessionDep, ctx: AuthContextDep
) -> Response:
    """The code page (or the set-up page) of a login whose password was right."""
    pending = await _pending(session, ctx, request)
    if pending is None:
        return _restart()
    return _page(request, pending, ctx)


@router.post("/login/second-factor")
async def second_factor(request: Request, session: SessionDep, ctx: AuthContextDep) -> Response:
    """Check the code; then the console session opens (and, after set-up, the recovery codes
    are shown once)."""
    pending = await _pending(session, ctx, request)
    if pending is None:
        return _restart()
    form = await request.form()
    sent, expected = form.get("login_csrf"), request.cookies.get(sessions.LOGIN_CSRF_COOKIE)
    if not isinstance(sent, str) or not expected or not secrets_equal(sent, expected):
        return _page(
            request, pending, ctx, error="This form expired; please try again.", status_code=403
        )
    code = str(form.get("code") or "").strip()
    user = pending.user
    recovery_codes: list[str] = []
    try:
        if pending.secret_print is not None:
            recovery_codes = await mfa.confirm_enrolment(session, ctx, user, code, None)
            factor = "totp"
        else:
            async with kept_refusal(session):
                factor = await mfa.verify(session, ctx, user, code, channel="console")
    except OAuthError as exc:
        throttled = exc.status == 429
        message = (
            "Too many failed attempts for this account; wait a few minutes and try again."
            if throttled
            else "That code is wrong or was already used."
        )
        return _page(request, pending, ctx, error=message, status_code=429 if throttled else 401)
    except AppError:
        await session.rollback()
        return _page(
            request, pending, ctx, error="That is not the app's current code.", status_code=422
        )
    await credentials.finish_login(session, user, channel="console", factor=factor)
    token = await sessions.start(session, ctx, user)
    if recovery_codes:
        response: Response = render(
            request, "recovery_codes.html", {"codes": recovery_codes, "next": pending.next}
        )
        response.headers["Cache-Control"] = "no-store"
    else:
        response = RedirectResponse(pending.next, status_code=303)
    sessions.set_cookie(request, response, sessions.COOKIE, token)
    response.delete_cookie(PENDING_COOKIE, path=sessions.COOKIE_PATH)
    response.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path=sessions.COOKIE_PATH)
    return response
