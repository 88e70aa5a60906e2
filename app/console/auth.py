"""Console login, logout and the landing redirect."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.auth import service as auth
from app.auth.deps import AuthContextDep
from app.console import sessions
from app.console.deps import PostDep, render
from app.core.db import SessionDep
from app.core.security import secrets_equal

router = APIRouter(prefix="/console", include_in_schema=False)


def _secure(request: Request) -> bool:
    setting = request.app.state.settings.console_cookie_secure
    if setting is not None:
        return bool(setting)
    return getattr(request.state, "client_scheme", request.url.scheme) == "https"


def _set_cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=sessions.COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
    )


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/console/") and "//" not in target and "\\" not in target:
        return target
    return "/console/"


def _login_page(
    request: Request, *, error: str | None = None, email: str = "", status_code: int = 200
) -> HTMLResponse:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        {
            "login_csrf": token,
            "error": error,
            "email": email,
            "next": _safe_next(request.query_params.get("next")),
        },
        status_code=status_code,
    )
    _set_cookie(request, response, sessions.LOGIN_CSRF_COOKIE, token)
    return response


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    """The login page."""
    return _login_page(request)


@router.post("/login")
async def login(request: Request, session: SessionDep, ctx: AuthContextDep) -> Response:
    """Check the password like `POST /auth/token` does, then open a console session."""
    form = await request.form()
    sent = form.get("login_csrf")
    expected = request.cookies.get(sessions.LOGIN_CSRF_COOKIE)
    if not isinstance(sent, str) or not expected or not secrets_equal(sent, expected):
        return _login_page(
            request,
            error="Your login form expired or was not sent from this page; please try again.",
            status_code=403,
        )
    email = str(form.get("email") or "").strip()[:254]
    password = str(form.get("password") or "")[:1024]
    if not email or not password:
        return _login_page(
            request, error="Enter your email address and password.", email=email, status_code=422
        )
    try:
        user = await auth.authenticate_password(
            session, ctx, username=email, password=password, channel="console"
        )
    except auth.ErrorAfterCommit as exc:
        # Answered without raising, so the failure's audit record and back-off are kept.
        throttled = exc.error.status == 429
        message = (
            "Too many failed logins for this account; wait a few minutes and try again."
            if throttled
            else "Wrong email address or password."
        )
        return _login_page(
            request, error=message, email=email, status_code=429 if throttled else 401
        )
    token = await sessions.start(session, ctx, user)
    response = RedirectResponse(_safe_next(str(form.get("next") or "")), status_code=303)
    _set_cookie(request, response, sessions.COOKIE, token)
    response.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path=sessions.COOKIE_PATH)
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep, live: PostDep) -> Response:
    """End the console session (its row is deleted)."""
    await sessions.end(session, request.cookies.get(sessions.COOKIE))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path=sessions.COOKIE_PATH)
    return response


@router.get("")
async def landing() -> RedirectResponse:
    """`/console` → the dashboard."""
    return RedirectResponse("/console/", status_code=307)
