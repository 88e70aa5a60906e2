"""Console login, logout, setting a password from an invitation, and the landing redirect."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.agencies import invitations
from app.agencies.models import Agency
from app.agencies.schemas import SetPassword
from app.auth import credentials, mfa
from app.auth.context import OAuthError, kept_refusal
from app.auth.deps import AuthContextDep
from app.auth.schemas import PasswordField, UsernameField
from app.console import forms, second_factor, sessions
from app.console.deps import PostDep, render
from app.core.db import SessionDep
from app.core.errors import AppError, InvalidInput
from app.core.security import secrets_equal

router = APIRouter(prefix="/console", include_in_schema=False)
# The login's fields with the limits of `POST /auth/token` (username, password).
LoginForm = forms.params_model("LoginForm", {"username": UsernameField, "password": PasswordField})
LABELS = {"username": "Email address", "password": "Password"}


def safe_next(target: str | None) -> str:
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
            "next": safe_next(request.query_params.get("next")),
        },
        status_code=status_code,
    )
    sessions.set_cookie(request, response, sessions.LOGIN_CSRF_COOKIE, token)
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
    email = str(form.get("email") or "").strip()
    password = str(form.get("password") or "")
    if not email or not password:
        return _login_page(
            request, error="Enter your email address and password.", email=email, status_code=422
        )
    try:
        LoginForm.model_validate({"username": email, "password": password})
    except ValidationError as exc:
        error = "; ".join(f"{LABELS[str(e['loc'][0])]}: {e['msg']}" for e in exc.errors())
        return _login_page(request, error=error + ".", email=email, status_code=422)
    try:
        async with kept_refusal(session):
            user = await credentials.authenticate_password(
                session, ctx, username=email, password=password, channel="console"
            )
    except OAuthError as exc:
        throttled = exc.status == 429
        message = (
            "Too many failed logins for this account; wait a few minutes and try again."
            if throttled
            else "Wrong email address or password."
        )
        return _login_page(
            request, error=message, email=email, status_code=429 if throttled else 401
        )
    next_url = safe_next(str(form.get("next") or ""))
    agency = await session.get(Agency, user.agency_id)
    assert agency is not None  # authenticate_password joined it
    if mfa.due(ctx.settings, user, agency):
        pending = await second_factor.begin(session, ctx, user, next_url)
        response = RedirectResponse(second_factor.PAGE, status_code=303)
        sessions.set_cookie(request, response, second_factor.PENDING_COOKIE, pending)
        return response
    token = await sessions.start(session, ctx, user)
    response = RedirectResponse(next_url, status_code=303)
    sessions.set_cookie(request, response, sessions.COOKIE, token)
    response.delete_cookie(sessions.LOGIN_CSRF_COOKIE, path=sessions.COOKIE_PATH)
    return response


@router.post("/logout")
async def logout(request: Request, session: SessionDep, _live: PostDep) -> Response:
    """End the console session (its row is deleted)."""
    await sessions.end(session, request.cookies.get(sessions.COOKIE))
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path=sessions.COOKIE_PATH)
    return response


def _set_password_page(
    request: Request,
    token: str,
    *,
    errors: forms.FormErrors | None = None,
    done: bool = False,
    status_code: int = 200,
) -> HTMLResponse:
    response = render(
        request,
        "set_password.html",
        {"token": token, "errors": errors or forms.FormErrors(), "done": done},
        status_code=status_code,
    )
    # The page carries a one-time token: keep it out of caches.
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/set-password")
async def set_password_form(request: Request) -> HTMLResponse:
    """The page an invitation points to: enter the one-time code and your own password."""
    return _set_password_page(request, "")


@router.post("/set-password")
async def set_password(request: Request, session: SessionDep) -> Response:
    """Set your password with the link's token (the same rules as `POST /auth/set-password`).

    No CSRF token: the one-time token in the form is itself the secret a forger lacks.
    """
    form = await request.form()
    token = str(form.get("token") or "")
    password = str(form.get("password") or "")
    try:
        if password != str(form.get("password_again") or ""):
            raise InvalidInput.on("password_again", "The two passwords differ.")
        data = SetPassword.model_validate({"token": token, "password": password})
        await invitations.set_password(session, data, hashing=request.app.state.auth.hashing)
    except (AppError, ValidationError) as exc:
        await session.rollback()
        return _set_password_page(request, token, errors=forms.errors_of(exc), status_code=422)
    return _set_password_page(request, "", done=True)


@router.get("")
async def landing() -> RedirectResponse:
    """`/console` → the dashboard."""
    return RedirectResponse("/console/", status_code=307)
