"""Domain errors and their RFC 9457 `application/problem+json` rendering."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import request_id_var

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "urn:tracewire:problem:"

log = logging.getLogger("tracewire.errors")

# The part of an HTTP request a field is in: the problem answer's paths start with it.
Location = Literal["body", "query", "path", "header"]


# A service names a field in its own terms (`details.addressed_to`) and the part of the
# request that carries it (`location`); `located()` is the path the problem answer shows
# (`body.details.addressed_to`). Without a location, `field` is that path already (request
# validation, a check of the raw body, TAXII's own names). The docstring is the schema's.
class FieldError(BaseModel):
    """One invalid field: where it is and what is wrong with it."""

    field: str = Field(description="Dotted path to the field, e.g. `body.items.0.serial_raw`.")
    message: str
    type: str = "invalid"
    # Not part of the answer: `located()` has put it in front of `field`.
    location: SkipJsonSchema[Location | None] = Field(default=None, exclude=True)

    def located(self) -> FieldError:
        """The error as the problem answer names it: the request part, then the field."""
        if self.location is None:
            return self
        field = f"{self.location}.{self.field}" if self.field else self.location
        return FieldError(field=field, message=self.message, type=self.type)


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


class AppError(Exception):
    """Base of every domain error; carries its HTTP status and problem type.

    `field_errors` are as the service named them (domain paths, for the console's forms);
    `errors` are the same as the problem answer names them (HTTP paths, for the API).
    """

    status: int = 400
    slug: str = "bad-request"
    title: str = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.field_errors = list(errors) if errors else None
        self.headers = headers or {}
        self.extra = extra or {}

    @property
    def errors(self) -> list[FieldError] | None:
        """The field errors at their place in the HTTP request (`body.details.addressed_to`):
        the one mapping from a service's field names to the problem answer's."""
        return [e.located() for e in self.field_errors] if self.field_errors else None


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str = "Missing, invalid or expired credentials.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class PreconditionFailed(AppError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PreconditionRequired(AppError):
    status, slug, title = 428, "precondition-required", "Precondition required"


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class InvalidInput(AppError):
    status, slug, title = 422, "validation-error", "Invalid input"

    @classmethod
    def on(
        cls, field: str, message: str, type_: str = "invalid", *, location: Location = "body"
    ) -> InvalidInput:
        """An error naming a single field (a domain path, in the request body unless
        `location` says which other part of the request carries it)."""
        error = FieldError(field=field, message=message, type=type_, location=location)
        return cls(message, errors=[error])


def problem_response(
    status: int,
    *,
    slug: str,
    title: str,
    detail: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
    instance: str | None = None,
) -> JSONResponse:
    """A problem+json answer; every error the service gives goes through here."""
    problem = Problem(
        type=PROBLEM_BASE + slug,
        title=title,
        status=status,
        detail=detail,
        instance=instance,
        request_id=request_id_var.get(),
        errors=list(errors) if errors else None,
    )
    body = problem.model_dump(exclude_none=True) | (extra or {})
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def _field_path(loc: Sequence[Any]) -> str:
    return ".".join(str(part) for part in loc) if loc else "body"


def _validation_errors(exc: RequestValidationError) -> list[FieldError]:
    out: list[FieldError] = []
    for err in exc.errors():
        message = str(err.get("msg", "invalid"))
        # Never echo the submitted value: it may be a password.
        out.append(
            FieldError(field=_field_path(err.get("loc", ())), message=message, type=err["type"])
        )
    return out


def render_error(exc: AppError, instance: str | None = None) -> JSONResponse:
    """The problem+json answer for a domain error."""
    return problem_response(
        exc.status,
        slug=exc.slug,
        title=exc.title,
        detail=exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        extra=exc.extra,
        instance=instance,
    )


async def _app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return render_error(exc, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _validation_errors(exc)
    if any(e.type == "json_invalid" for e in errors):
        return problem_response(
            400,
            slug="malformed-json",
            title="Malformed JSON",
            detail="The request body is not valid JSON.",
            errors=errors,
            instance=request.url.path,
        )
    return problem_response(
        422,
        slug="validation-error",
        title="Invalid input",
        detail="; ".join(f"{e.field}: {e.message}" for e in errors[:5]),
        errors=errors,
        instance=request.url.path,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    try:
        phrase = HTTPStatus(exc.status_code).phrase
    except ValueError:
        phrase = "Error"
    slug = phrase.lower().replace(" ", "-")
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != phrase else None
    if exc.status_code == 400 and detail and "parsing the body" in detail:
        detail = "The request body could not be decoded (invalid JSON or not UTF-8)."
    return problem_response(
        exc.status_code,
        slug=slug,
        title=phrase,
        detail=detail,
        headers=dict(exc.headers or {}),
        instance=request.url.path,
    )


async def _integrity_error(request: Request, _exc: Exception) -> JSONResponse:
    # A unique or foreign-key constraint caught a race the service's own checks missed.
    log.info("integrity conflict", extra={"path": request.url.path})
    return problem_response(
        409,
        slug="conflict",
        title="Conflict",
        detail="The request conflicts with a concurrent or existing record; retry it.",
        instance=request.url.path,
    )


async def _unhandled(request: Request, _exc: Exception) -> JSONResponse:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem_response(
        500,
        slug="internal-error",
        title="Internal server error",
        detail="The server could not complete the request; quote the request id when reporting.",
        instance=request.url.path,
    )


class UnexpectedErrorMiddleware:
    """Answer an error nothing else handled with the app's 500 page, and keep the connection.

    Starlette's outermost ServerErrorMiddleware renders the same answer but then re-raises
    (for the server's log), and uvicorn closes a connection whose app raised after its
    answer began: the client's next request on it fails. Here the error is logged by the
    handler and goes no further. An answer already under way cannot be replaced, so that
    error still goes up (and the server drops the half-sent answer's connection).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if started:
                raise
            # The app's own handler for Exception: the console wraps it to answer a page.
            handlers = getattr(scope.get("app"), "exception_handlers", {})
            handler = handlers.get(Exception, _unhandled)
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise to a problem+json answer.

    Call it before adding other middleware: the catch-all middleware then sits innermost,
    so the outer ones (request id, security headers, TAXII media type) see its answer.
    """
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(Exception, _unhandled)
    app.add_middleware(UnexpectedErrorMiddleware)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries declaring the problem answers a route can give."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }
