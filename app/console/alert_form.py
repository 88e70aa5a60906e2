"""Console pages that write alerts: the create and edit forms and the audience preview."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.alerts import query as alert_query
from app.alerts import read as alert_read
from app.alerts import service as alerts
from app.alerts.schemas import AlertRead, AlertUpdate, AudiencePreviewRequest
from app.console import common, forms
from app.console.choices import CHOICES, CREATE_MODELS, form_kind
from app.console.deps import LiveDep, PostDep, render
from app.core.db import SessionDep
from app.core.errors import AppError
from app.sharing.handling import AlertKind

router = APIRouter(prefix="/console", include_in_schema=False)


async def _form_page(
    request: Request,
    session: SessionDep,
    live: Any,
    *,
    kind: str,
    values: forms.Values,
    item_count: int = 1,
    alert: AlertRead | None = None,
    errors: forms.FormErrors | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The create or edit form with its audience preview, the directory and the choices."""
    return render(
        request,
        "alert_form.html",
        {
            "kind": kind,
            "values": values,
            "errors": errors or forms.FormErrors(),
            "item_count": item_count,
            "alert": alert,
            "preview": await _preview(session, live, kind, values),
            "agencies": await common.directory(session),
            "groups": await common.groups(session, live.principal),
            "choices": CHOICES,
        },
        status_code=status_code,
    )


def _refused(exc: AppError | ValidationError) -> tuple[forms.FormErrors, int]:
    """A save's refusal as the form's errors and status; a 404 is not the form's to show."""
    if isinstance(exc, AppError) and exc.status == 404:
        raise exc
    return forms.errors_of(exc), exc.status if isinstance(exc, AppError) else 422


def _new_values(kind: str) -> forms.Values:
    return {"items.0.category": "small_arm"} if kind != "suspicious_procurement" else {}


async def _preview(session: SessionDep, live: Any, kind: str, values: forms.Values) -> Any:
    """The audience preview for the form's handling; errors instead when it is refused."""
    body = {"kind": kind, "handling": forms.handling_of(values)}
    if kind == AlertKind.trace_request.value:
        body["addressed_to"] = values.get("details.addressed_to") or None
    country = str(values.get("country") or "").upper()
    if len(country) == 2:
        body["country"] = country
    try:
        data = AudiencePreviewRequest.model_validate(body)
        return await alert_read.preview_audience(session, live.principal, data)
    except (AppError, ValidationError) as exc:
        return forms.errors_of(exc)


@router.get("/alerts/new")
async def new_alert(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """The form for a new alert of one kind."""
    kind = form_kind(request.query_params.get("kind"))
    return await _form_page(request, session, live, kind=kind, values=_new_values(kind))


@router.post("/alerts/new")
async def create_alert(request: Request, session: SessionDep, live: PostDep) -> Response:
    """Save a draft or publish at once; `add_item` and `preview` only show the form again."""
    form = await request.form()
    kind = form_kind(form.get("kind"))
    action = str(form.get("action") or "save")
    values = forms.values_of(form)
    count = max(1, forms.item_count(values))
    errors = forms.FormErrors()
    status = 200
    if action == "add_item":
        count = min(forms.MAX_ITEMS, count + 1)
    elif action in ("save", "publish"):
        try:
            data = forms.validate(
                CREATE_MODELS[kind], forms.alert_body(kind, values, publish=action == "publish")
            )
            alert = await alerts.create_alert(session, live.principal, data)
            return RedirectResponse(f"/console/alerts/{alert.id}", status_code=303)
        except (AppError, ValidationError) as exc:
            await session.rollback()
            errors, status = _refused(exc)
    return await _form_page(
        request,
        session,
        live,
        kind=kind,
        values=values,
        item_count=count,
        errors=errors,
        status_code=status,
    )


@router.post("/alerts/preview")
async def preview(request: Request, session: SessionDep, live: PostDep) -> HTMLResponse:
    """The "who will receive this" fragment, for the form's script (nothing is stored)."""
    form = await request.form()
    kind = form_kind(form.get("kind"))
    result = await _preview(session, live, kind, forms.values_of(form))
    return render(
        request,
        "_preview.html",
        {"preview": result, "agencies": await common.directory(session)},
    )


@router.get("/alerts/{alert_id}/edit")
async def edit_alert_form(
    request: Request, alert_id: uuid.UUID, session: SessionDep, live: LiveDep
) -> HTMLResponse:
    """The edit form of an alert the agency wrote."""
    p = live.principal
    alert = await alert_query.read_alert(session, p, alert_id)
    read = (await alert_read.read_models(session, p, [alert]))[0]
    return await _form_page(
        request,
        session,
        live,
        kind=alert.kind,
        values=forms.values_from_alert(read),
        item_count=max(1, len(read.items or [])),
        alert=read,
    )


@router.post("/alerts/{alert_id}/edit")
async def edit_alert(
    request: Request, alert_id: uuid.UUID, session: SessionDep, live: PostDep
) -> Response:
    """Save changes (`If-Match` is the version the form was loaded at)."""
    p = live.principal
    alert = await alert_query.get_visible_alert(session, p, alert_id)
    kind = alert.kind
    form = await request.form()
    action = str(form.get("action") or "save")
    values = forms.values_of(form)
    count = max(1, forms.item_count(values))
    errors = forms.FormErrors()
    status = 200
    if action == "add_item":
        count = min(forms.MAX_ITEMS, count + 1)
    elif action == "save":
        try:
            data = AlertUpdate.model_validate(forms.update_body(kind, values))
            await alerts.update_alert(
                session, p, alert_id, data, if_match=f'"{form.get("version") or ""}"'
            )
            return RedirectResponse(f"/console/alerts/{alert_id}", status_code=303)
        except (AppError, ValidationError) as exc:
            await session.rollback()
            errors, status = _refused(exc)
    alert = await alert_query.get_visible_alert(session, p, alert_id)
    read = (await alert_read.read_models(session, p, [alert]))[0]
    return await _form_page(
        request,
        session,
        live,
        kind=kind,
        values=values,
        item_count=count,
        alert=read,
        errors=errors,
        status_code=status,
    )
