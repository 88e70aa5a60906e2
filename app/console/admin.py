"""Console pages for agency administrators: users, API clients, groups, policy, audit."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.agencies import invitations, passwords
from app.agencies import service as agencies
from app.agencies.schemas import ApiClientCreate, ApiClientRead, UserCreate, UserUpdate
from app.audit import trail as audit_records
from app.authz import rights
from app.authz.principal import Role, Scope
from app.console import common, forms
from app.console.deps import LiveDep, PostDep, render
from app.console.security_admin import OVERLAPS
from app.core.db import SessionDep
from app.core.errors import AppError, InvalidInput
from app.core.jsonshape import JsonShapeError, load_bounded
from app.core.pagination import MAX_LIMIT
from app.sharing import groups as sharing_groups
from app.sharing import policies as sharing_policies
from app.sharing.schemas import SharingGroupCreate, SharingPolicyBody

router = APIRouter(prefix="/console/admin", include_in_schema=False)
# Three kinds, each with up to 600 recipient ids, fit several times over.
POLICY_MAX_BYTES = 256 * 1024


def _agency_of(request: Request, live: Any) -> uuid.UUID:
    """The agency a page is about: the caller's, or (platform admins) `?agency=`."""
    wanted = common.parse_uuid(request.query_params.get("agency"))
    return wanted or live.principal.agency_id


# --- users ------------------------------------------------------------------------------


async def _users_page(
    request: Request,
    session: SessionDep,
    live: Any,
    agency_id: uuid.UUID,
    *,
    errors: forms.FormErrors | None = None,
    values: forms.Values | None = None,
    reset: dict[str, Any] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows, _ = await agencies.list_users(session, live.principal, agency_id, limit=MAX_LIMIT)
    agency = await agencies.get_agency(session, agency_id)
    roles = [
        r.value for r in Role if r is not Role.platform_admin or live.principal.is_platform_admin
    ]
    return render(
        request,
        "admin_users.html",
        {
            "agency": agency,
            "rows": rows,
            "roles": roles,
            # Only the agency's own administrators manage its users (DESIGN §2).
            "manages": agency.id == live.principal.agency_id,
            "errors": errors or forms.FormErrors(),
            "values": values or {"role": "focal_point"},
            "reset": reset,
        },
        status_code=status_code,
    )


@router.get("/users")
async def users(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """The agency's users, and a form to add one."""
    return await _users_page(request, session, live, _agency_of(request, live))


@router.post("/users")
async def create_user(request: Request, session: SessionDep, live: PostDep) -> Response:
    """Add a user (the same rules as `POST /agencies/{id}/users`)."""
    form = await request.form()
    values = forms.values_of(form)
    agency_id = common.parse_uuid(str(values.get("agency") or "")) or live.principal.agency_id
    try:
        data = UserCreate.model_validate(
            {k: values.get(k, "") for k in ("email", "full_name", "role", "password")}
        )
        await agencies.create_user(
            session, live.principal, agency_id, data, hashing=request.app.state.auth.hashing
        )
    except (AppError, ValidationError) as exc:
        await session.rollback()
        if isinstance(exc, AppError) and exc.status in (403, 404):
            raise
        values.pop("password", None)
        return await _users_page(
            request,
            session,
            live,
            agency_id,
            errors=forms.errors_of(exc),
            values=values,
            status_code=422,
        )
    return RedirectResponse(f"/console/admin/users?agency={agency_id}", status_code=303)


@router.post("/users/{user_id}/password-reset")
async def reset_password(
    request: Request, user_id: uuid.UUID, session: SessionDep, live: PostDep
) -> Response:
    """Issue a user's one-time set-password link, shown on this answer only."""
    user, token, expires_at = await passwords.issue_password_reset(
        session,
        live.principal,
        user_id,
        hashing=request.app.state.auth.hashing,
        ttl_seconds=request.app.state.settings.invitation_ttl_seconds,
    )
    reset = {
        "email": user.email,
        "token": token,
        "url": invitations.set_password_url(request.app.state.settings.public_url),
        "expires_at": expires_at,
    }
    response = await _users_page(request, session, live, user.agency_id, reset=reset)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/users/{user_id}/{action}")
async def user_action(
    user_id: uuid.UUID, action: str, session: SessionDep, live: PostDep
) -> Response:
    """Deactivate or reactivate a user."""
    if action not in ("activate", "deactivate"):
        raise InvalidInput.on("action", "Unknown action.")
    user = await agencies.update_user(
        session, live.principal, user_id, UserUpdate(is_active=action == "activate")
    )
    return RedirectResponse(f"/console/admin/users?agency={user.agency_id}", status_code=303)


# --- API clients --------------------------------------------------------------------------


async def _clients_page(
    request: Request,
    session: SessionDep,
    live: Any,
    *,
    errors: forms.FormErrors | None = None,
    values: forms.Values | None = None,
    created: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    agency_id = live.principal.agency_id
    rows, _ = await agencies.list_clients(session, live.principal, agency_id, limit=MAX_LIMIT)
    return render(
        request,
        "admin_clients.html",
        {
            "rows": [ApiClientRead.model_validate(r) for r in rows],
            "revoked": {r.id for r in rows if r.revoked_at is not None},
            "scopes": [s.value for s in Scope],
            "overlaps": OVERLAPS,
            "errors": errors or forms.FormErrors(),
            "values": values or {},
            "created": created,
        },
        status_code=status_code,
    )


@router.get("/clients")
async def clients(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """The agency's API clients (partner systems)."""
    return await _clients_page(request, session, live)


@router.post("/clients")
async def create_client(request: Request, session: SessionDep, live: PostDep) -> Response:
    """Register an API client; its secret is shown on this answer only."""
    form = await request.form()
    values = forms.values_of(form)
    scopes = [s for s in form.getlist("scopes") if isinstance(s, str)]
    try:
        data = ApiClientCreate.model_validate({"name": values.get("name", ""), "scopes": scopes})
        client, secret = await agencies.create_client(
            session, live.principal, live.principal.agency_id, data
        )
    except (AppError, ValidationError) as exc:
        await session.rollback()
        return await _clients_page(
            request, session, live, errors=forms.errors_of(exc), values=values, status_code=422
        )
    created = {"name": client.name, "client_id": str(client.id), "secret": secret}
    response = await _clients_page(request, session, live, created=created)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/clients/{client_id}/revoke")
async def revoke_client(client_id: uuid.UUID, session: SessionDep, live: PostDep) -> Response:
    """Revoke an API client."""
    await agencies.delete_client(session, live.principal, client_id)
    return RedirectResponse("/console/admin/clients", status_code=303)


# --- sharing groups and policy ------------------------------------------------------------


async def _groups_page(
    request: Request,
    session: SessionDep,
    live: Any,
    *,
    errors: forms.FormErrors | None = None,
    values: forms.Values | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows = await common.groups(session, live.principal)
    return render(
        request,
        "admin_groups.html",
        {
            "rows": [await sharing_groups.group_read(session, live.principal, g) for g in rows],
            "agencies": await common.directory(session),
            "errors": errors or forms.FormErrors(),
            "values": values or {},
        },
        status_code=status_code,
    )


@router.get("/groups")
async def groups(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """Sharing groups the agency owns or belongs to."""
    return await _groups_page(request, session, live)


@router.post("/groups")
async def create_group(request: Request, session: SessionDep, live: PostDep) -> Response:
    """Create a sharing group owned by the agency."""
    form = await request.form()
    values = forms.values_of(form)
    members = [m for m in form.getlist("members") if isinstance(m, str)]
    values["members"] = members
    try:
        data = SharingGroupCreate.model_validate(
            {
                "name": values.get("name", ""),
                "description": values.get("description", ""),
                "hide_members": values.get("hide_members") == "on",
                "members": members,
            }
        )
        await sharing_groups.create_group(session, live.principal, data)
    except (AppError, ValidationError) as exc:
        await session.rollback()
        return await _groups_page(
            request, session, live, errors=forms.errors_of(exc), values=values, status_code=422
        )
    return RedirectResponse("/console/admin/groups", status_code=303)


@router.post("/groups/{group_id}/members")
async def add_group_member(
    request: Request, session: SessionDep, live: PostDep, group_id: uuid.UUID
) -> Response:
    """Add an agency to a group the agency owns."""
    form = await request.form()
    values = forms.values_of(form)
    try:
        agency_id = uuid.UUID(str(values.get("agency_id", "")))
    except ValueError:
        errors = forms.FormErrors({f"member-{group_id}": "Choose an agency."})
        return await _groups_page(request, session, live, errors=errors, status_code=422)
    try:
        await sharing_groups.add_member(session, live.principal, group_id, agency_id)
    except AppError as exc:
        await session.rollback()
        return await _groups_page(
            request, session, live, errors=forms.errors_of(exc), status_code=exc.status
        )
    return RedirectResponse("/console/admin/groups", status_code=303)


@router.post("/groups/{group_id}/members/{agency_id}/remove")
async def remove_group_member(
    request: Request, session: SessionDep, live: PostDep, group_id: uuid.UUID, agency_id: uuid.UUID
) -> Response:
    """Remove an agency from a group the agency owns: it loses the group's alerts at once."""
    try:
        await sharing_groups.remove_member(session, live.principal, group_id, agency_id)
    except AppError as exc:
        await session.rollback()
        return await _groups_page(
            request, session, live, errors=forms.errors_of(exc), status_code=exc.status
        )
    return RedirectResponse("/console/admin/groups", status_code=303)


@router.get("/policy")
async def policy(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """The agency's sharing policy (per-kind defaults and ceilings), as JSON to edit."""
    current = await sharing_policies.get_policy(session, live.principal, live.principal.agency_id)
    text = json.dumps(current.model_dump(mode="json")["kinds"], indent=2)
    return render(
        request,
        "admin_policy.html",
        {"text": text, "errors": forms.FormErrors(), "updated_at": current.updated_at},
    )


@router.post("/policy")
async def put_policy(request: Request, session: SessionDep, live: PostDep) -> Response:
    """Replace the policy (the same checks as `PUT /agencies/{id}/sharing-policy`)."""
    form = await request.form()
    text = str(form.get("policy") or "")
    try:
        try:
            kinds = load_bounded(text or "{}", max_bytes=POLICY_MAX_BYTES)
        except JsonShapeError as exc:
            raise InvalidInput.on("policy", str(exc), exc.kind) from exc
        data = SharingPolicyBody.model_validate({"kinds": kinds})
        await sharing_policies.put_policy(session, live.principal, live.principal.agency_id, data)
    except (AppError, ValidationError) as exc:
        await session.rollback()
        errors = forms.errors_of(exc)
        errors.general += [f"{k}: {v}" for k, v in errors.fields.items() if k != "policy"]
        errors.fields = {k: v for k, v in errors.fields.items() if k == "policy"}
        if not errors.fields:
            errors.fields["policy"] = "The policy was refused; see the messages above."
        return render(
            request,
            "admin_policy.html",
            {"text": text, "errors": errors, "updated_at": None},
            status_code=422,
        )
    return RedirectResponse("/console/admin/policy", status_code=303)


# --- audit --------------------------------------------------------------------------------


@router.get("/audit")
async def audit_trail(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """The agency's audit trail (platform administrators: everybody's), newest first."""
    wanted = common.parse_uuid(request.query_params.get("agency"))
    agency_id = rights.audit_agency(live.principal, wanted)
    before = request.query_params.get("before", "")
    rows = await audit_records.list_records(
        session,
        agency_id=agency_id,
        actor_id=None,
        action=request.query_params.get("action") or None,
        object_type=None,
        object_id=None,
        since=None,
        until=None,
        before_seq=int(before)
        if before.isascii() and before.isdigit() and len(before) < 18
        else None,
        limit=51,
    )
    return render(
        request,
        "admin_audit.html",
        {
            "rows": rows[:50],
            "next_before": rows[49].seq if len(rows) > 50 else None,
            "action": request.query_params.get("action", ""),
        },
    )
