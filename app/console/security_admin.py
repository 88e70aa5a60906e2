"""The console's account-security administration: an agency's second-factor rule and its
single sign-on provider, a user's second-factor reset, and an API client's secret
rotation with an overlap. Each calls the same service as its API route."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.agencies import service as agencies
from app.auth import mfa, sso
from app.auth.deps import AuthContextDep
from app.auth.sso_schemas import IdentityProviderUpdate
from app.authz import rights
from app.console import forms
from app.console.deps import LiveDep, PostDep, render
from app.core.db import SessionDep
from app.core.errors import AppError, NotFound

router = APIRouter(prefix="/console/admin", include_in_schema=False)
OVERLAPS = {"0": "none: the old secret stops now", "3600": "1 hour", "86400": "1 day",
            "604800": "7 days"}  # fmt: skip


async def _page(
    request: Request,
    session: SessionDep,
    ctx: AuthContextDep,
    live: Any,
    *,
    errors: forms.FormErrors | None = None,
    values: forms.Values | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    agency_id = live.principal.agency_id
    rights.require_agency_manager(live.principal, agency_id)
    agency = await agencies.get_agency(session, agency_id)
    try:
        provider = sso.read_model(
            ctx.settings, await sso.get_provider(session, live.principal, agency_id)
        )
    except NotFound:
        provider = None
    return render(
        request,
        "admin_security.html",
        {
            "agency": agency,
            "platform_rule": ctx.settings.require_mfa,
            "provider": provider,
            "redirect_uri": sso.redirect_uri(ctx.settings),
            "domains_text": (values or {}).get("email_domains")
            or (" ".join(provider.email_domains) if provider else ""),
            "errors": errors or forms.FormErrors(),
            "values": values or {},
        },
        status_code=status_code,
    )


@router.get("/security")
async def security(
    request: Request, session: SessionDep, ctx: AuthContextDep, live: LiveDep
) -> HTMLResponse:
    """The agency's second-factor rule and single sign-on provider."""
    return await _page(request, session, ctx, live)


@router.post("/security/mfa-policy")
async def mfa_policy(request: Request, session: SessionDep, live: PostDep) -> Response:
    """Require (or stop requiring) a second factor of the agency's users."""
    form = await request.form()
    await mfa.set_rule(
        session, live.principal, live.principal.agency_id, form.get("require_mfa") == "on"
    )
    return RedirectResponse("/console/admin/security", status_code=303)


@router.post("/security/identity-provider")
async def identity_provider(
    request: Request, session: SessionDep, ctx: AuthContextDep, live: PostDep
) -> Response:
    """Set the agency's OpenID Connect provider (a blank secret keeps the stored one)."""
    form = await request.form()
    values = forms.values_of(form)
    body: dict[str, Any] = {
        "issuer": values.get("issuer", ""),
        "client_id": values.get("client_id", ""),
        "email_claim": values.get("email_claim") or "email",
        "email_domains": str(values.get("email_domains", "")).replace(",", " ").split(),
        "create_users": form.get("create_users") == "on",
        "enabled": form.get("enabled") == "on",
    }
    secret = str(form.get("client_secret") or "")
    if secret:
        body["client_secret"] = secret
    values.pop("client_secret", None)  # never shown back
    try:
        data = IdentityProviderUpdate.model_validate(body)
        await sso.set_provider(
            session, live.principal, live.principal.agency_id, data, settings=ctx.settings
        )
    except (AppError, ValidationError) as exc:
        await session.rollback()
        return await _page(
            request, session, ctx, live, errors=forms.errors_of(exc), values=values,
            status_code=422,
        )  # fmt: skip
    return RedirectResponse("/console/admin/security", status_code=303)


@router.post("/security/identity-provider/delete")
async def delete_identity_provider(session: SessionDep, live: PostDep) -> Response:
    """Stop single sign-on for the agency's users (passwords and passkeys still work)."""
    await sso.delete_provider(session, live.principal, live.principal.agency_id)
    return RedirectResponse("/console/admin/security", status_code=303)


@router.post("/users/{user_id}/mfa-reset")
async def reset_second_factor(user_id: uuid.UUID, session: SessionDep, live: PostDep) -> Response:
    """Remove a user's second factor (a lost phone); every session of theirs ends."""
    user = await mfa.reset(session, live.principal, user_id)
    return RedirectResponse(f"/console/admin/users?agency={user.agency_id}", status_code=303)


@router.post("/clients/{client_id}/rotate")
async def rotate_client(
    request: Request, client_id: uuid.UUID, session: SessionDep, live: PostDep
) -> HTMLResponse:
    """A new secret for a client, shown once; the old one stops now or after the overlap."""
    form = await request.form()
    overlap = str(form.get("overlap_seconds") or "0")
    if overlap not in OVERLAPS:
        overlap = "0"
    client, secret = await agencies.rotate_client_secret(
        session, live.principal, client_id, overlap_seconds=int(overlap)
    )
    response = render(
        request,
        "client_rotated.html",
        {"client": client, "secret": secret, "until": client.previous_secret_expires_at},
    )
    response.headers["Cache-Control"] = "no-store"
    return response
