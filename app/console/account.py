"""The console's own-account page: your second factor (set up, renew, remove) and your
passkeys (listed and removed here; added through app/console/passkeys.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.agencies.models import Agency, User
from app.audit import service as audit
from app.auth import mfa, passkeys
from app.auth.context import OAuthError, kept_refusal
from app.auth.deps import AuthContextDep
from app.console import sessions
from app.console.deps import LiveDep, PostDep, render
from app.core.db import SessionDep
from app.core.errors import AppError

router = APIRouter(prefix="/console/account", include_in_schema=False)


async def _page(
    request: Request,
    session: SessionDep,
    ctx: AuthContextDep,
    live: sessions.Live,
    *,
    extra: dict[str, Any] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    user = await session.get(User, live.principal.id)
    agency = await session.get(Agency, live.principal.agency_id)
    assert user is not None and agency is not None  # the live session read them
    context: dict[str, Any] = {
        "enrolled": mfa.enrolled(user),
        "required": mfa.required(ctx.settings, agency),
        "left": await mfa.recovery_codes_left(session, user) if mfa.enrolled(user) else 0,
        "passkeys": await passkeys.list_passkeys(session, user),
        "error": error,
    } | (extra or {})
    response = render(request, "account_security.html", context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _code(form: Any) -> str:
    return str(form.get("code") or "").strip()


async def _unproven(
    request: Request, session: SessionDep, ctx: AuthContextDep, live: sessions.Live, user: User
) -> HTMLResponse | None:
    """None when the form's code is the user's current one (it is spent); else the page with
    the refusal (counted on the account's back-off)."""
    try:
        async with kept_refusal(session):
            await mfa.verify(session, ctx, user, _code(await request.form()), channel="console")
    except OAuthError as exc:
        return await _page(
            request, session, ctx, live, error="That code is wrong or was already used.",
            status_code=exc.status if exc.status == 429 else 401,
        )  # fmt: skip
    return None


@router.get("/security")
async def security(
    request: Request, session: SessionDep, ctx: AuthContextDep, live: LiveDep
) -> HTMLResponse:
    """Your second factor: whether it is set up, and what you can do with it."""
    return await _page(request, session, ctx, live)


@router.post("/security/start")
async def start(
    request: Request, session: SessionDep, ctx: AuthContextDep, live: PostDep
) -> HTMLResponse:
    """Generate a secret and show its QR code; the next form confirms it with a code."""
    user = await session.get(User, live.principal.id)
    assert user is not None
    try:
        enrolment = await mfa.start_enrolment(session, ctx.settings, user)
    except AppError as exc:
        return await _page(request, session, ctx, live, error=exc.detail, status_code=409)
    return await _page(request, session, ctx, live, extra={"enrolment": enrolment})


@router.post("/security/confirm")
async def confirm(
    request: Request, session: SessionDep, ctx: AuthContextDep, live: PostDep
) -> HTMLResponse:
    """Confirm the new authenticator with its first code; the recovery codes, shown once."""
    user = await session.get(User, live.principal.id)
    assert user is not None
    try:
        codes = await mfa.confirm_enrolment(
            session, ctx, user, _code(await request.form()), live.principal
        )
    except AppError:
        await session.rollback()
        return await _page(
            request, session, ctx, live, status_code=422,
            error="That is not the app's current code, or the set-up was restarted elsewhere: "
            "start again.",
        )  # fmt: skip
    return await _page(request, session, ctx, live, extra={"codes": codes})


@router.post("/security/recovery-codes")
async def renew(
    request: Request, session: SessionDep, ctx: AuthContextDep, live: PostDep
) -> HTMLResponse:
    """New recovery codes (the old ones stop), proven with a current code."""
    user = await session.get(User, live.principal.id)
    assert user is not None
    refused = await _unproven(request, session, ctx, live, user)
    if refused is not None:
        return refused
    codes = await mfa.new_recovery_codes(session, user)
    await audit.record(
        session, live.principal, "mfa.recovery_codes", object_type="user", object_id=user.id
    )
    return await _page(request, session, ctx, live, extra={"codes": codes})


@router.post("/security/remove")
async def remove(
    request: Request, session: SessionDep, ctx: AuthContextDep, live: PostDep
) -> Response:
    """Remove your second factor, proven with a current code; every session ends, this one too."""
    user = await session.get(User, live.principal.id)
    agency = await session.get(Agency, live.principal.agency_id)
    assert user is not None and agency is not None
    if mfa.required(ctx.settings, agency):
        return await _page(
            request, session, ctx, live, status_code=409,
            error="Your agency requires a second factor; it cannot be removed.",
        )  # fmt: skip
    refused = await _unproven(request, session, ctx, live, user)
    if refused is not None:
        return refused
    await mfa.remove(session, user, live.principal, "removed")
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path=sessions.COOKIE_PATH)
    return response
