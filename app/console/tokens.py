"""Console page for the signed-in user's personal access tokens: list, create, revoke."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.auth import personal
from app.auth.deps import AuthContextDep
from app.auth.personal_schemas import MAX_LIFETIME_DAYS, PersonalTokenCreate, PersonalTokenRead
from app.console import forms
from app.console.deps import LiveDep, PostDep, render
from app.core.db import SessionDep
from app.core.errors import AppError
from app.core.pagination import MAX_LIMIT

router = APIRouter(prefix="/console/tokens", include_in_schema=False)
DEFAULT_DAYS = "90"


async def _tokens_page(
    request: Request,
    session: SessionDep,
    live: Any,
    *,
    errors: forms.FormErrors | None = None,
    values: forms.Values | None = None,
    created: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows, _ = await personal.list_tokens(session, live.principal, limit=MAX_LIMIT, cursor=None)
    return render(
        request,
        "tokens.html",
        {
            "rows": [PersonalTokenRead.model_validate(r) for r in rows],
            "scopes": sorted(s.value for s in live.principal.scopes),
            "max_days": MAX_LIFETIME_DAYS,
            "errors": errors or forms.FormErrors(),
            "values": values or {"expires_in_days": DEFAULT_DAYS, "scopes": ["alerts:read"]},
            "created": created,
        },
        status_code=status_code,
    )


def _days(raw: str) -> int | str:
    """The lifetime typed in the form, as a number when it is one (else the schema says so)."""
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else raw


@router.get("")
async def tokens(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """Your personal access tokens, and a form to create one."""
    return await _tokens_page(request, session, live)


@router.post("")
async def create_token(
    request: Request, session: SessionDep, ctx: AuthContextDep, live: PostDep
) -> Response:
    """Create a personal access token; the token is shown on this answer only."""
    form = await request.form()
    values = forms.values_of(form)
    values["scopes"] = [s for s in form.getlist("scopes") if isinstance(s, str)]
    try:
        data = PersonalTokenCreate.model_validate(
            {
                "name": values.get("name", ""),
                "scopes": values["scopes"],
                "expires_in_days": _days(values.get("expires_in_days", "")),
            }
        )
        pat, secret = await personal.create_token(session, live.principal, data, now=ctx.clock())
    except (AppError, ValidationError) as exc:
        await session.rollback()
        return await _tokens_page(
            request, session, live, errors=forms.errors_of(exc), values=values, status_code=422
        )
    created = {"name": pat.name, "token": secret, "expires_at": pat.expires_at.isoformat()}
    response = await _tokens_page(request, session, live, created=created)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/{token_id}/revoke")
async def revoke_token(
    token_id: uuid.UUID, session: SessionDep, ctx: AuthContextDep, live: PostDep
) -> Response:
    """Revoke one of your personal access tokens."""
    await personal.revoke_token(session, live.principal, token_id, now=ctx.clock())
    return RedirectResponse("/console/tokens", status_code=303)
