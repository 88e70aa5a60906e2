"""Console pages that read alerts: the list, one alert's page, publish and withdraw."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.alerts import query as alert_query
from app.alerts import read as alert_read
from app.alerts import service as alerts
from app.alerts.schemas import CountryFilter, SerialFilter, TagFilter, TextQuery, WithdrawRequest
from app.audit import trail as audit_records
from app.console import common, forms
from app.console.choices import CHOICES, KIND_NAMES
from app.console.deps import LiveDep, PostDep, render
from app.core.db import SessionDep
from app.core.errors import AppError
from app.sharing.handling import AlertKind, AlertStatus, Tlp
from app.sharing.render import history_shown
from app.traces import query as trace_query
from app.traces import read as trace_read

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = 25
# The list's filters with the types and limits of `GET /alerts` (tag at most 60 characters…).
AlertListQuery = forms.params_model(
    "AlertListQuery",
    {
        "kind": AlertKind | None,
        "status": AlertStatus | None,
        "country": CountryFilter,
        "tlp": Tlp | None,
        "originator": uuid.UUID | None,
        "tag": TagFilter,
        "serial": SerialFilter,
        "q": TextQuery,
    },
)


@router.get("/alerts")
async def alert_list(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """The alerts the agency may see, with the API's filters, text search and paging."""
    q = request.query_params
    values = {k: q.get(k, "").strip() for k in ("kind", "status", "country", "tlp", "q", "tag")}
    values["serial"] = q.get("serial", "").strip()
    values["originator"] = q.get("originator", "")
    values["country"] = values["country"].upper()
    errors = forms.FormErrors()
    rows: list[Any] = []
    next_cursor = None
    try:
        # A model built from the route's parameters: its fields are not known statically.
        f: Any = AlertListQuery.model_validate(
            {k: values[k] or None for k in AlertListQuery.model_fields}
        )
        filters = alert_query.AlertFilters(
            kind=f.kind,
            status=f.status,
            country=f.country,
            tlp=f.tlp,
            originator=f.originator,
            tag=f.tag,
            serial=f.serial,
            q=f.q,
        )
        found, next_cursor = await alert_query.list_alerts(
            session, live.principal, filters, limit=PAGE, cursor=q.get("cursor") or None
        )
        rows = await alert_read.read_models(session, live.principal, found)
    except ValidationError as exc:
        errors = forms.errors_of(exc)
    except AppError as exc:
        await session.rollback()
        errors = forms.errors_of(exc)
    params = {k: v for k, v in values.items() if v}
    return render(
        request,
        "alerts.html",
        {
            "rows": rows,
            "values": values,
            "errors": errors,
            "next_cursor": next_cursor,
            "params": params,
            "agencies": await common.directory(session),
            "choices": CHOICES,
        },
        status_code=422 if errors else 200,
    )


@router.get("/alerts/{alert_id}")
async def alert_page(
    request: Request, alert_id: uuid.UUID, session: SessionDep, live: LiveDep
) -> HTMLResponse:
    """One alert: items, TLP badge, who can see it and why, history of versions."""
    return await _alert_view(request, session, live, alert_id, forms.FormErrors())


async def _alert_view(
    request: Request,
    session: SessionDep,
    live: Any,
    alert_id: uuid.UUID,
    errors: forms.FormErrors,
    status_code: int = 200,
) -> HTMLResponse:
    p = live.principal
    alert = await alert_query.read_alert(session, p, alert_id)
    read = (await alert_read.read_models(session, p, [alert]))[0]
    access = await alert_read.explain_access(session, p, alert)
    history: list[Any] = []
    if not read.tombstone:
        records = await audit_records.list_records(
            session,
            agency_id=None,
            actor_id=None,
            action=None,
            object_type="alert",
            object_id=str(alert_id),
            since=None,
            until=None,
            before_seq=None,
            limit=500,
        )
        history = history_shown(alert, p, records)
    trace = None
    if alert.kind == AlertKind.trace_request and alert.status != AlertStatus.draft:
        try:
            t, a = await trace_query.get_trace(session, p, alert_id)
            trace = await trace_read.read_model(session, p, t, a, full=False)
        except AppError:
            trace = None
    return render(
        request,
        "alert.html",
        {
            "a": read,
            "access": access,
            "history": history,
            "trace": trace,
            "kinds": KIND_NAMES,
            "agencies": await common.directory(session),
            "groups": {g.id: g for g in await common.groups(session, p)},
            "errors": errors,
        },
        status_code=status_code,
    )


@router.post("/alerts/{alert_id}/publish")
async def publish(
    request: Request, alert_id: uuid.UUID, session: SessionDep, live: PostDep
) -> Response:
    """Publish a draft."""
    try:
        await alerts.publish_alert(session, live.principal, alert_id)
    except AppError as exc:
        await session.rollback()
        if exc.status == 404:
            raise
        return await _alert_view(request, session, live, alert_id, forms.errors_of(exc), 409)
    return RedirectResponse(f"/console/alerts/{alert_id}", status_code=303)


@router.post("/alerts/{alert_id}/withdraw")
async def withdraw(
    request: Request, alert_id: uuid.UUID, session: SessionDep, live: PostDep
) -> Response:
    """Withdraw a published alert, with a reason."""
    form = await request.form()
    try:
        # The API's body, so the same limit (`reason`: 1 to 2,000 characters).
        data = WithdrawRequest.model_validate({"reason": str(form.get("reason") or "").strip()})
        await alerts.withdraw_alert(session, live.principal, alert_id, data.reason)
    except ValidationError as exc:
        return await _alert_view(request, session, live, alert_id, forms.errors_of(exc), 422)
    except AppError as exc:
        await session.rollback()
        if exc.status == 404:
            raise
        errors = forms.errors_of(exc)
        return await _alert_view(request, session, live, alert_id, errors, exc.status)
    return RedirectResponse(f"/console/alerts/{alert_id}", status_code=303)
