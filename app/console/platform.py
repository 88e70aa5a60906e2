"""Console pages for platform administrators: agencies (register, suspend, reactivate) and
the invitation of an agency's first administrator."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.agencies import invitations
from app.agencies import service as agencies
from app.agencies.models import AgencyStatus, AgencyType
from app.agencies.schemas import AgencyCreate, AgencyUpdate, InvitationCreate
from app.authz.principal import Role
from app.console import common, forms
from app.console.deps import LiveDep, PostDep, render, require_role
from app.core.db import SessionDep
from app.core.errors import AppError, InvalidInput
from app.core.pagination import MAX_LIMIT

router = APIRouter(prefix="/console/platform", include_in_schema=False)


async def _agencies_page(
    request: Request,
    session: SessionDep,
    live: Any,
    *,
    errors: forms.FormErrors | None = None,
    values: forms.Values | None = None,
    invite_errors: forms.FormErrors | None = None,
    invite_values: forms.Values | None = None,
    invited: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    require_role(live, Role.platform_admin)
    rows, next_cursor = await agencies.list_agencies(
        session, limit=MAX_LIMIT, cursor=request.query_params.get("cursor")
    )
    return render(
        request,
        "platform_agencies.html",
        {
            "rows": rows,
            "next_cursor": next_cursor,
            "agency_options": [
                (str(a.id), a.name)
                for a in rows
                if not a.is_operator and a.id != live.principal.agency_id
            ],
            "types": [t.value for t in AgencyType],
            "errors": errors or forms.FormErrors(),
            "values": values or {},
            "invite_errors": invite_errors or forms.FormErrors(),
            "invite_values": invite_values or {},
            "invited": invited,
        },
        status_code=status_code,
    )


@router.get("/agencies")
async def agency_list(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """Every agency, with its status; a form to register one."""
    return await _agencies_page(request, session, live)


@router.post("/agencies")
async def create_agency(request: Request, session: SessionDep, live: PostDep) -> Response:
    """Register an agency (the same rules as `POST /agencies`)."""
    form = await request.form()
    values = forms.values_of(form)
    try:
        data = AgencyCreate.model_validate(
            {
                "name": values.get("name", ""),
                "country": str(values.get("country", "")).upper(),
                "type": values.get("type", ""),
                "is_focal_point": values.get("is_focal_point") == "on",
                "contact_email": values.get("contact_email") or None,
            }
        )
        await agencies.create_agency(session, live.principal, data)
    except (AppError, ValidationError) as exc:
        await session.rollback()
        return await _agencies_page(
            request, session, live, errors=forms.errors_of(exc), values=values, status_code=422
        )
    return RedirectResponse("/console/platform/agencies", status_code=303)


@router.post("/agencies/{agency_id}/{action}")
async def agency_status(
    agency_id: uuid.UUID, action: str, session: SessionDep, live: PostDep
) -> Response:
    """Suspend or reactivate an agency."""
    targets = {"suspend": AgencyStatus.suspended, "reactivate": AgencyStatus.active}
    if action not in targets:
        raise InvalidInput.on("action", "Unknown action.")
    await agencies.update_agency(
        session, live.principal, agency_id, AgencyUpdate(status=targets[action])
    )
    return RedirectResponse("/console/platform/agencies", status_code=303)


@router.post("/invitations")
async def invite_first_admin(request: Request, session: SessionDep, live: PostDep) -> Response:
    """Invite an agency's first administrator; the one-time link is shown on this answer only."""
    form = await request.form()
    values = forms.values_of(form)
    settings = request.app.state.settings
    try:
        agency_id = common.parse_uuid(str(values.get("agency_id") or ""))
        if agency_id is None:
            raise InvalidInput.on("agency_id", "Choose an agency.")
        data = InvitationCreate.model_validate(
            {"email": values.get("email", ""), "full_name": values.get("full_name", "")}
        )
        user, token, expires_at = await invitations.invite_first_admin(
            session,
            live.principal,
            agency_id,
            data,
            hashing=request.app.state.auth.hashing,
            ttl_seconds=settings.invitation_ttl_seconds,
        )
        agency = await agencies.get_agency(session, agency_id)
    except (AppError, ValidationError) as exc:
        await session.rollback()
        if isinstance(exc, AppError) and exc.status in (403, 404):
            raise
        status = exc.status if isinstance(exc, AppError) else 422
        return await _agencies_page(
            request,
            session,
            live,
            invite_errors=forms.errors_of(exc),
            invite_values=values,
            status_code=status,
        )
    invited = {
        "agency": agency.name,
        "email": user.email,
        "url": invitations.set_password_url(settings.public_url),
        "token": token,
        "expires_at": expires_at.strftime("%Y-%m-%d %H:%M UTC"),
    }
    response = await _agencies_page(request, session, live, invited=invited)
    response.headers["Cache-Control"] = "no-store"
    return response
