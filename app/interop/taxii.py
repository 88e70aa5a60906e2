"""TAXII 2.1 under `/taxii2/`: discovery, one API root, collections, objects, status.

Its own standard, so its own media type on every answer (errors too, in the TAXII error
envelope: `app/interop/taxii_http.py`) and out of the OpenAPI document. Visibility,
audit and writes are the service's (`app/interop/service.py`), through app/sharing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match as RouteMatch

from app.authz.deps import BasicOrBearerPrincipal
from app.core.db import SessionDep
from app.core.types import Instant
from app.interop import service, stix
from app.interop.service import Match, Page
from app.interop.taxii_http import (
    ROOT,
    TAXII_MEDIA_TYPE,
    TaxiiResponse,
    TaxiiRoute,
    UnsupportedMediaType,
    require_taxii_accept,
)

API_ROOT = f"{ROOT}/api"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"


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
    added_after: Instant | None = None,
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
async def discovery(request: Request, _principal: BasicOrBearerPrincipal) -> dict[str, Any]:
    """TAXII server discovery."""
    root = str(request.base_url).rstrip("/") + f"{API_ROOT}/"
    return {
        "title": "Tracewire",
        "description": "Interagency alerts on weapons that may reach terrorists (UNSCR 2370).",
        "default": root,
        "api_roots": [root],
    }


@router.get(f"{API_ROOT}/")
async def api_root(request: Request, _principal: BasicOrBearerPrincipal) -> dict[str, Any]:
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
    """Push STIX reports in: each becomes a published alert kept at its TLP marking."""
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
