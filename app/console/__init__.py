"""The web console: server-rendered pages over the same services as the API, under /console."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import cast
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.console import (
    account,
    admin,
    alert_form,
    alerts,
    auth,
    dashboard,
    hooks,
    passkeys,
    platform,
    second_factor,
    security_admin,
    sessions,
    sso,
    tokens,
    traces,
)
from app.console.deps import CsrfRefused, LoginRequired, render
from app.core.errors import AppError
from app.core.logging import request_id_var

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"
log = logging.getLogger("tracewire.console")

Handler = Callable[[Request, Exception], Awaitable[Response]]


def _status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, AppError):
        return exc.status, exc.detail or exc.title
    if isinstance(exc, RequestValidationError):
        # A malformed id in the address: the page does not exist.
        return 404, "There is no such page."
    if isinstance(exc, StarletteHTTPException):
        if exc.status_code == 404:
            return 404, "There is no such page."
        return exc.status_code, HTTPStatus(exc.status_code).phrase
    return 500, "Something went wrong on our side; nothing was saved. Quote the reference below."


def error_page(request: Request, exc: Exception) -> Response:
    """A readable error page (never a stack trace)."""
    if isinstance(exc, LoginRequired):
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        url = "/console/login"
        if request.method == "GET":
            url += "?next=" + quote(target, safe="")
        response: Response = RedirectResponse(url, status_code=303)
        response.delete_cookie(sessions.COOKIE, path=sessions.COOKIE_PATH)
        return response
    if isinstance(exc, CsrfRefused):
        status, message = (
            403,
            (
                "This form was not sent from a current console page (its security token is "
                "missing or wrong). Go back, reload the page and try again."
            ),
        )
    else:
        status, message = _status_of(exc)
    if status >= 500:
        log.exception("console error", exc_info=exc, extra={"path": request.url.path})
    titles = {403: "Not allowed", 404: "Not found", 409: "Not possible now", 422: "Invalid input"}
    return render(
        request,
        "error.html",
        {
            "status": status,
            "title": titles.get(status, "Error" if status < 500 else "Server error"),
            "message": message,
            "request_id": request_id_var.get(),
        },
        status_code=status,
    )


def _for_console(handler: Handler) -> Handler:
    async def dispatch(request: Request, exc: Exception) -> Response:
        if request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/"):
            return error_page(request, exc)
        return await handler(request, exc)

    return dispatch


async def _console_only(request: Request, exc: Exception) -> Response:
    return error_page(request, exc)


def install_console(app: FastAPI) -> None:
    """Mount the console's pages and static files; its errors become HTML pages.

    Call after `install_error_handlers`: each API handler is wrapped so that /console
    paths get a page and every other path the same problem+json as before.
    """
    for key, handler in list(app.exception_handlers.items()):
        # Starlette allows plain functions; every handler installed here is async.
        app.exception_handlers[key] = _for_console(cast(Handler, handler))
    app.add_exception_handler(LoginRequired, _console_only)
    app.add_exception_handler(CsrfRefused, _console_only)
    app.mount(PREFIX + "/static", StaticFiles(directory=STATIC), name="console-static")
    # The form's `/alerts/new` before the page's `/alerts/{alert_id}`.
    for module in (
        auth,
        second_factor,
        passkeys,
        sso,
        account,
        dashboard,
        alert_form,
        alerts,
        traces,
        # Before admin: its `/users/{user_id}/{action}` would take `/users/{id}/mfa-reset`.
        security_admin,
        admin,
        hooks,
        tokens,
        platform,
    ):
        app.include_router(module.router)
