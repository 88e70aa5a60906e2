"""TAXII 2.1 over HTTP: its media type, its error envelope, and the Accept check.

Every answer under `/taxii2/` carries `application/taxii+json;version=2.1`, errors
included: the route class renders a route's errors, the middleware re-renders the
problem+json refusals of the app's own middleware (body cap, JSON shape, rate limit).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import PROBLEM_MEDIA_TYPE, AppError, FieldError
from app.core.logging import request_id_var

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
ROOT = "/taxii2"

log = logging.getLogger("tracewire.taxii")


class TaxiiResponse(JSONResponse):
    media_type = TAXII_MEDIA_TYPE


class NotAcceptable(AppError):
    status, slug, title = 406, "not-acceptable", "Not acceptable"


class UnsupportedMediaType(AppError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


def taxii_error(
    status: int,
    title: str,
    description: str | None = None,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> TaxiiResponse:
    """The TAXII 2.1 error message (§3.6.1) with the TAXII media type."""
    body: dict[str, Any] = {"title": title, "http_status": str(status)}
    if description:
        body["description"] = description
    details: dict[str, Any] = {}
    if request_id_var.get():
        details["request_id"] = request_id_var.get()
    if errors:
        details["errors"] = [e.model_dump() for e in errors]
    if details:
        body["details"] = details
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="tracewire-taxii", Bearer'
    return TaxiiResponse(body, status_code=status, headers=headers)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


class TaxiiErrorMiddleware:
    """Under /taxii2/, re-render the problem+json answers of the middleware (body cap, JSON
    shape, rate limit) as TAXII errors, so that no TAXII answer has another media type."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass through, holding back a problem+json answer to re-render it."""
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith(f"{ROOT}/"):
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers", []))
                if headers.get(b"content-type", b"").startswith(PROBLEM_MEDIA_TYPE.encode()):
                    start = message
                    return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            try:
                problem = json.loads(b"".join(chunks))
            except ValueError:
                problem = None
            problem = problem if isinstance(problem, dict) else {}
            status = int(start["status"])
            errors = [
                FieldError.model_validate(e)
                for e in problem.get("errors") or []
                if isinstance(e, dict) and {"field", "message"} <= e.keys()
            ]
            answer = taxii_error(
                status,
                problem.get("title") or _phrase(status),
                problem.get("detail"),
                errors=errors,
            )
            kept = [
                (k, v)
                for k, v in start.get("headers", [])
                if k.lower() not in (b"content-type", b"content-length", b"www-authenticate")
            ]
            await send({**start, "headers": kept + answer.raw_headers})
            await send({"type": "http.response.body", "body": answer.body})

        await self.app(scope, receive, capture)


class TaxiiRoute(APIRoute):
    """Answers every error of a TAXII route as a TAXII error, never as problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The route's handler, wrapped to render errors the TAXII way."""
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except AppError as exc:
                return taxii_error(
                    exc.status, exc.title, exc.detail, errors=exc.field_errors, headers=exc.headers
                )
            except RequestValidationError as exc:
                errors = [
                    FieldError(
                        field=".".join(str(p) for p in e.get("loc", ())),
                        message=str(e.get("msg", "invalid")),
                        type=str(e.get("type", "invalid")),
                    )
                    for e in exc.errors()
                ]
                detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
                return taxii_error(400, "Bad request", detail, errors=errors)
            except StarletteHTTPException as exc:
                detail = exc.detail if isinstance(exc.detail, str) else None
                return taxii_error(exc.status_code, _phrase(exc.status_code), detail)
            except IntegrityError:
                return taxii_error(409, "Conflict", "A concurrent change conflicted; retry.")
            except Exception:
                log.exception("unhandled TAXII error", extra={"path": request.url.path})
                return taxii_error(500, "Internal server error", "Quote the request id.")

        return run


def require_taxii_accept(request: Request) -> None:
    """406 unless the caller accepts the TAXII 2.1 media type."""
    header = request.headers.get("accept")
    if not header:
        return
    for part in header.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        values = {
            k.strip().lower(): v.strip().strip('"')
            for k, _, v in (p.partition("=") for p in params)
        }
        try:
            if float(values.get("q", "1")) <= 0:
                continue
        except ValueError:
            continue
        media = media.lower()
        if media in ("*/*", "application/*"):
            return
        if media == "application/taxii+json" and values.get("version", "2.1") == "2.1":
            return
    raise NotAcceptable(f"This server answers {TAXII_MEDIA_TYPE} only.")
