"""Passkeys in the console: adding one to your account, and logging in with one.

The browser calls these with `fetch` (app/console/static/passkeys.js) and gets JSON back,
errors included. The account's calls carry the session's CSRF token; the login's carry the
login page's one-time token, which must equal its cookie (as the password form does).
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app.agencies.models import User
from app.auth import credentials, passkeys
from app.auth.context import kept_refusal
from app.auth.deps import AuthContextDep
from app.console import sessions
from app.console.auth import safe_next
from app.console.deps import PostDep
from app.core.db import SessionDep
from app.core.errors import AppError
from app.core.security import secrets_equal

router = APIRouter(prefix="/console", include_in_schema=False)
CHALLENGE_COOKIE = "tw_console_webauthn"
NO_STORE = {"Cache-Control": "no-store"}


def _problem(exc: AppError) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=NO_STORE)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _with_challenge(request: Request, options: dict[str, Any], cookie: str) -> JSONResponse:
    response = JSONResponse(options, headers=NO_STORE)
    sessions.set_cookie(request, response, CHALLENGE_COOKIE, cookie)
    return response


@router.post("/account/passkeys/options")
async def add_options(
    request: Request, session: SessionDep, ctx: AuthContextDep, live: PostDep
) -> JSONResponse:
    """Options for creating a passkey on this device (CSRF header required)."""
    user = await session.get(User, live.principal.id)
    assert user is not None
    options, cookie = await passkeys.registration_options(
        session, ctx.settings, ctx.keys, ctx.clock(), user
    )
    return _with_challenge(request, options, cookie)


@router.post("/account/passkeys")
async def add(
    request: Request, session: SessionDep, ctx: AuthContextDep, live: PostDep
) -> JSONResponse:
    """Keep the passkey the browser created, once verified."""
    user = await session.get(User, live.principal.id)
    assert user is not None
    body = await _body(request)
    credential = body.get("credential")
    try:
        row = await passkeys.register(
            session, ctx.settings, ctx.keys, ctx.clock(), user=user, actor=live.principal,
            cookie=request.cookies.get(CHALLENGE_COOKIE),
            credential=credential if isinstance(credential, dict) else {},
            name=str(body.get("name") or "Passkey"),
        )  # fmt: skip
    except AppError as exc:
        await session.rollback()
        return _problem(exc)
    response = JSONResponse({"id": str(row.id), "name": row.name}, status_code=201)
    response.delete_cookie(CHALLENGE_COOKIE, path=sessions.COOKIE_PATH)
    return response


@router.post("/account/passkeys/{passkey_id}/delete")
async def delete(passkey_id: uuid.UUID, session: SessionDep, live: PostDep) -> RedirectResponse:
    """Remove one of your passkeys (a form button on the account page)."""
    user = await session.get(User, live.principal.id)
    assert user is not None
    await passkeys.remove(session, user, live.principal, passkey_id)
    return RedirectResponse("/console/account/security", status_code=303)


def _login_csrf_ok(request: Request) -> bool:
    sent = request.headers.get("x-login-csrf")
    expected = request.cookies.get(sessions.LOGIN_CSRF_COOKIE)
    return bool(sent and expected and secrets_equal(sent, expected))


@router.post("/login/passkey/options")
async def login_options(request: Request, ctx: AuthContextDep) -> JSONResponse:
    """Options for logging in with any passkey of this site."""
    if not _login_csrf_ok(request):
        return JSONResponse({"detail": "This page expired; reload it."}, status_code=403)
    options, cookie = passkeys.authentication_options(ctx.settings, ctx.keys, ctx.clock())
    return _with_challenge(request, options, cookie)


@router.post("/login/passkey")
async def login(request: Request, session: SessionDep, ctx: AuthContextDep) -> Response:
    """Log in with the passkey's signed answer; the console session opens at once (a passkey
    with user verification is a second factor in itself)."""
    if not _login_csrf_ok(request):
        return JSONResponse({"detail": "This page expired; reload it."}, status_code=403)
    body = await _body(request)
    credential = body.get("credential")
    try:
        async with kept_refusal(session):
            user = await passkeys.authenticate(
                session, ctx.settings, ctx.keys, ctx.clock(),
                cookie=request.cookies.get(CHALLENGE_COOKIE),
                credential=credential if isinstance(credential, dict) else {},
            )  # fmt: skip
    except AppError as exc:
        await session.commit()  # the spent challenge stays spent
        return _problem(exc)
    await credentials.finish_login(session, user, channel="passkey", factor="passkey")
    token = await sessions.start(session, ctx, user)
    response = JSONResponse({"redirect": safe_next(str(body.get("next") or ""))}, headers=NO_STORE)
    sessions.set_cookie(request, response, sessions.COOKIE, token)
    for name in (CHALLENGE_COOKIE, sessions.LOGIN_CSRF_COOKIE):
        response.delete_cookie(name, path=sessions.COOKIE_PATH)
    return response
