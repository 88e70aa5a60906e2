"""TAXII 2.1 under `/taxii2/`: discovery, one API root, collections, objects, status.

Its own standard, so its own media type on every answer (errors too, in the TAXII error
envelope) and out of the OpenAPI document. Visibility, audit and writes are the
service's (`app/interop/service.py`), which goes through app/sharing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from pydantic import AwareDatetime
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match as RouteMatch
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.auth.deps import BasicOrBearerPrincipal
from app.core.db import SessionDep
from app.core.errors import PROBLEM_MEDIA_TYPE, AppError, FieldError
from app.core.logging import request_id_var
from app.interop import service, stix
from app.interop.service import Match, Page

TAXII_MEDIA_TYPE = "application/taxii+json;version=2.1"
ROOT = "/taxii2"
API_ROOT = f"{ROOT}/api"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"

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
                problem = {}
            status = int(start["status"])
            errors = [FieldError.model_validate(e) for e in problem.get("errors") or []]
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
                    exc.status, exc.title, exc.detail, errors=exc.errors, headers=exc.headers
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


router = APIRouter(
    route_class=TaxiiRoute,
    include_in_schema=False,
    dependencies=[Depends(require_taxii_accept)],
    default_response_class=TaxiiResponse,
)

# A larger `limit` is not an error: the server may answer fewer (stix2 asks for 5,000).
Limit = Annotated[int, Query(ge=1, le=1_000_000)]
Csv = Annotated[str | None, Query(max_length=10_000)]


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value is not None else None


def _match(
    added_after: AwareDatetime | None = None,
    match_id: Annotated[str | None, Query(alias="match[id]", max_length=10_000)] = None,
    match_type: Annotated[str | None, Query(alias="match[type]", max_length=1_000)] = None,
    match_version: Annotated[str | None, Query(alias="match[version]", max_length=10_000)] = None,
    match_spec_version: Annotated[
        str | None, Query(alias="match[spec_version]", max_length=100)
    ] = None,
) -> Match:
    return Match(
        ids=_csv(match_id),
        types=_csv(match_type),
        versions=_csv(match_version) or ["last"],
        spec_versions=_csv(match_spec_version),
        added_after=added_after,
    )


MatchDep = Annotated[Match, Depends(_match)]


def _date_headers(page: Page) -> dict[str, str]:
    if not page.entries:
        return {}
    return {
        "X-TAXII-Date-Added-First": stix.precise_timestamp(page.entries[0].date_added),
        "X-TAXII-Date-Added-Last": stix.precise_timestamp(page.entries[-1].date_added),
    }


def _envelope(page: Page) -> TaxiiResponse:
    body: dict[str, Any] = {"more": page.more}
    if page.next:
        body["next"] = page.next
    if page.entries:
        body["objects"] = [e.obj for e in page.entries]
    return TaxiiResponse(body, headers=_date_headers(page))


@router.get(f"{ROOT}/")
async def discovery(request: Request, principal: BasicOrBearerPrincipal) -> dict[str, Any]:
    """TAXII server discovery."""
    root = str(request.base_url).rstrip("/") + f"{API_ROOT}/"
    return {
        "title": "Tracewire",
        "description": "Interagency alerts on weapons that may reach terrorists (UNSCR 2370).",
        "default": root,
        "api_roots": [root],
    }


@router.get(f"{API_ROOT}/")
async def api_root(request: Request, principal: BasicOrBearerPrincipal) -> dict[str, Any]:
    """The one API root."""
    return {
        "title": "Tracewire alerts",
        "description": "Alerts as STIX 2.1 reports, one collection per kind and one for all.",
        "versions": [TAXII_MEDIA_TYPE],
        "max_content_length": request.app.state.settings.max_body_bytes,
    }


@router.get(f"{API_ROOT}/collections/")
async def collections(principal: BasicOrBearerPrincipal) -> dict[str, Any]:
    """Every collection, with the caller's rights."""
    return {"collections": [service.collection_resource(c, principal) for c in service.COLLECTIONS]}


@router.get(f"{API_ROOT}/collections/{{collection_id}}/")
async def collection(collection_id: str, principal: BasicOrBearerPrincipal) -> dict[str, Any]:
    """One collection."""
    return service.collection_resource(service.get_collection(collection_id), principal)


@router.get(f"{API_ROOT}/collections/{{collection_id}}/objects/")
async def get_objects(
    collection_id: str,
    session: SessionDep,
    principal: BasicOrBearerPrincipal,
    match: MatchDep,
    limit: Limit = DEFAULT_LIMIT,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> TaxiiResponse:
    """The collection's objects the caller may see, oldest added first."""
    found = service.get_collection(collection_id)
    page = await service.read_objects(
        session, principal, found, match, limit=min(limit, MAX_LIMIT), cursor=next
    )
    return _envelope(page)


@router.post(f"{API_ROOT}/collections/{{collection_id}}/objects/", status_code=202)
async def add_objects(
    collection_id: str, request: Request, session: SessionDep, principal: BasicOrBearerPrincipal
) -> TaxiiResponse:
    """Push STIX reports in: each becomes a published alert under the agency's default handling."""
    found = service.get_collection(collection_id)
    media = (request.headers.get("content-type") or "").replace(" ", "").lower()
    if media.split(";")[0] != "application/taxii+json" or "version=2.0" in media:
        raise UnsupportedMediaType(f"Send the envelope as {TAXII_MEDIA_TYPE}.")
    try:
        envelope = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise service.BadTaxiiRequest("The body is not valid JSON.") from exc
    status = await service.add_objects(session, principal, found, envelope)
    return TaxiiResponse(service.status_resource(status), status_code=202)


@router.get(f"{API_ROOT}/collections/{{collection_id}}/objects/{{object_id}}/")
async def get_object(
    collection_id: str,
    object_id: str,
    session: SessionDep,
    principal: BasicOrBearerPrincipal,
    match: MatchDep,
    limit: Limit = DEFAULT_LIMIT,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> TaxiiResponse:
    """One object (every version asked for)."""
    found = service.get_collection(collection_id)
    match.ids = [object_id]
    page = await service.read_one(
        session, principal, found, match, limit=min(limit, MAX_LIMIT), cursor=next
    )
    return _envelope(page)


@router.get(f"{API_ROOT}/collections/{{collection_id}}/objects/{{object_id}}/versions/")
async def object_versions(
    collection_id: str,
    object_id: str,
    session: SessionDep,
    principal: BasicOrBearerPrincipal,
    match: MatchDep,
    limit: Limit = DEFAULT_LIMIT,
) -> TaxiiResponse:
    """The versions of one object."""
    found = service.get_collection(collection_id)
    match.ids, match.versions = [object_id], ["all"]
    page = await service.versions(session, principal, found, match)
    return TaxiiResponse(
        {"more": False, "versions": [e.obj["modified"] for e in page.entries][:limit]},
        headers=_date_headers(page),
    )


@router.get(f"{API_ROOT}/collections/{{collection_id}}/manifest/")
async def manifest(
    collection_id: str,
    session: SessionDep,
    principal: BasicOrBearerPrincipal,
    match: MatchDep,
    limit: Limit = DEFAULT_LIMIT,
    next: Annotated[str | None, Query(max_length=500)] = None,
) -> TaxiiResponse:
    """Which objects the collection holds for the caller, without their content."""
    found = service.get_collection(collection_id)
    page = await service.scan(
        session, principal, found, match, limit=min(limit, MAX_LIMIT), cursor=next
    )
    body: dict[str, Any] = {"more": page.more}
    if page.next:
        body["next"] = page.next
    if page.entries:
        body["objects"] = [
            {
                "id": e.obj["id"],
                "date_added": stix.precise_timestamp(e.date_added),
                "version": e.obj["modified"],
                "media_type": stix.STIX_MEDIA_TYPE,
            }
            for e in page.entries
        ]
    return TaxiiResponse(body, headers=_date_headers(page))


@router.get(f"{API_ROOT}/status/{{status_id}}/")
@router.get(f"{API_ROOT}/status/{{status_id}}")
async def status(
    status_id: str, session: SessionDep, principal: BasicOrBearerPrincipal
) -> dict[str, Any]:
    """What became of an `add objects` request of your agency."""
    return service.status_resource(await service.get_status(session, principal, status_id))


@router.api_route(
    f"{ROOT}/{{rest:path}}", methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
)
async def unknown(request: Request) -> Response:
    """Anything else under /taxii2/: a slash added, 405 for a known path, else 404."""
    path = request.url.path
    known = [r for r in router.routes if isinstance(r, APIRoute) and "{rest:path}" not in r.path]

    def matches(candidate: str) -> bool:
        scope = {**request.scope, "path": candidate, "method": "GET"}
        return any(route.matches(scope)[0] is RouteMatch.FULL for route in known)

    if not path.endswith("/") and matches(f"{path}/"):
        query = f"?{request.url.query}" if request.url.query else ""
        return RedirectResponse(f"{path}/{query}", status_code=308)
    if matches(path):
        raise StarletteHTTPException(405, "Method not allowed on this TAXII resource.")
    raise StarletteHTTPException(404, "No such TAXII resource.")


schema_router = APIRouter(include_in_schema=False)


@schema_router.get("/stix/schemas/{name}")
async def stix_schema(name: str) -> Response:
    """The committed JSON Schemas of Tracewire's STIX extension (public)."""
    files = {p.name: p for p in SCHEMA_DIR.glob("*.json")}
    if name not in files:
        raise StarletteHTTPException(404, "No such schema.")
    return Response(files[name].read_bytes(), media_type="application/schema+json")
