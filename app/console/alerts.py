"""Console pages for alerts: dashboard, list, page, create/edit, preview, publish, withdraw."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.alerts import query as alert_query
from app.alerts import read as alert_read
from app.alerts import service as alerts
from app.alerts.schemas import (
    AlertUpdate,
    AudiencePreviewRequest,
    IllicitBasis,
    ItemCategory,
    PartyRole,
    Priority,
    ProcurementState,
    SeizedWeaponCreate,
    SerialStatus,
    SuspiciousProcurementCreate,
    TraceRequestCreate,
    Unit,
)
from app.audit import service as audit
from app.console import charts, common, forms
from app.console.deps import LiveDep, PostDep, render
from app.core.db import SessionDep
from app.core.errors import AppError, InvalidInput
from app.core.types import utcnow
from app.hits import read as hits
from app.sharing.handling import AlertKind, AlertStatus, Audience, Tlp
from app.sharing.render import history_shown
from app.traces import query as trace_query
from app.traces import read as trace_read
from app.traces.models import OPEN_STATES

router = APIRouter(prefix="/console", include_in_schema=False)
PAGE = 25
CREATE_MODELS: dict[str, Any] = {
    AlertKind.seized_weapon.value: SeizedWeaponCreate,
    AlertKind.trace_request.value: TraceRequestCreate,
    AlertKind.suspicious_procurement.value: SuspiciousProcurementCreate,
}
KIND_NAMES = {
    "seized_weapon": "Seized weapon",
    "trace_request": "Trace request",
    "suspicious_procurement": "Suspicious procurement",
}
CHOICES = {
    "kinds": KIND_NAMES,
    "statuses": [s.value for s in AlertStatus],
    "tlps": [t.value for t in Tlp],
    "audiences": [a.value for a in Audience],
    "categories": [c.value for c in ItemCategory],
    "serial_statuses": [s.value for s in SerialStatus],
    "units": [u.value for u in Unit],
    "illicit_bases": [b.value for b in IllicitBasis],
    "priorities": [p.value for p in Priority],
    "procurement_states": [s.value for s in ProcurementState],
    "party_roles": [r.value for r in PartyRole],
}


@router.get("/")
async def dashboard(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """Trace requests needing action, recent hits, recent alerts and a chart."""
    p = live.principal
    incoming, _ = await trace_query.list_traces(
        session, p, direction="incoming", state=None, overdue=None, limit=100, cursor=None
    )
    outgoing, _ = await trace_query.list_traces(
        session, p, direction="outgoing", state=None, overdue=None, limit=100, cursor=None
    )
    todo = [
        await trace_read.read_model(session, p, t, a, full=False)
        for t, a in incoming
        if t.state in OPEN_STATES
    ]
    todo += [
        await trace_read.read_model(session, p, t, a, full=False)
        for t, a in outgoing
        if t.state in ("info_requested", "responded")
    ]
    todo.sort(key=lambda t: (not t.overdue, t.response_due))
    hit_rows, _ = await hits.list_hits(session, p, status=None, limit=5, cursor=None)
    recent, _ = await alert_query.list_alerts(session, p, alert_query.AlertFilters(), limit=8)
    months = charts.months_back(utcnow(), 6)
    rows = await alert_query.activity(session, p, utcnow() - timedelta(days=190))
    return render(
        request,
        "dashboard.html",
        {
            "todo": todo,
            "hits": await hits.read_models(session, p, hit_rows),
            "recent": await alert_read.read_models(session, p, recent),
            "chart": charts.alerts_per_month(rows, months),
            "agencies": await common.directory(session, p),
            "kinds": KIND_NAMES,
            "now": utcnow(),
        },
    )


@router.get("/alerts")
async def alert_list(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """The alerts the agency may see, with the API's filters, text search and paging."""
    q = request.query_params
    values = {k: q.get(k, "").strip() for k in ("kind", "status", "country", "tlp", "q", "tag")}
    values["serial"] = q.get("serial", "").strip()
    values["originator"] = q.get("originator", "")
    errors = forms.FormErrors()
    rows: list[Any] = []
    next_cursor = None
    try:
        filters = alert_query.AlertFilters(
            kind=AlertKind(values["kind"]) if values["kind"] else None,
            status=AlertStatus(values["status"]) if values["status"] else None,
            country=values["country"].upper()[:2] or None,
            tlp=values["tlp"] or None,
            originator=common.parse_uuid(values["originator"]),
            tag=values["tag"][:60] or None,
            serial=values["serial"][:100] or None,
            q=values["q"][:200] or None,
        )
        found, next_cursor = await alert_query.list_alerts(
            session, live.principal, filters, limit=PAGE, cursor=q.get("cursor") or None
        )
        rows = await alert_read.read_models(session, live.principal, found)
    except ValueError:
        errors.general.append("One of the filters has a value the list does not know.")
    except AppError as exc:
        await session.rollback()
        errors = forms.errors_of(exc)
        errors.fields = {k.removeprefix("query."): v for k, v in errors.fields.items()}
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
            "agencies": await common.directory(session, live.principal),
            "choices": CHOICES,
        },
        status_code=422 if errors else 200,
    )


async def _form_context(session: SessionDep, live: Any) -> dict[str, Any]:
    return {
        "agencies": await common.directory(session, live.principal),
        "groups": await common.groups(session, live.principal),
        "choices": CHOICES,
    }


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
    kind = request.query_params.get("kind", "seized_weapon")
    if kind not in CREATE_MODELS:
        kind = "seized_weapon"
    values = _new_values(kind)
    return render(
        request,
        "alert_form.html",
        {
            "kind": kind,
            "values": values,
            "errors": forms.FormErrors(),
            "item_count": 1,
            "alert": None,
            "preview": await _preview(session, live, kind, values),
            **await _form_context(session, live),
        },
    )


@router.post("/alerts/new")
async def create_alert(request: Request, session: SessionDep, live: PostDep) -> Response:
    """Save a draft or publish at once; `add_item` and `preview` only show the form again."""
    form = await request.form()
    kind = str(form.get("kind") or "")
    if kind not in CREATE_MODELS:
        kind = "seized_weapon"
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
            alert = await alerts.create_alert(session, live.principal, data)  # type: ignore[arg-type]
            return RedirectResponse(f"/console/alerts/{alert.id}", status_code=303)
        except (AppError, ValidationError) as exc:
            await session.rollback()
            if isinstance(exc, AppError) and exc.status == 404:
                raise
            errors = forms.errors_of(exc)
            status = exc.status if isinstance(exc, AppError) else 422
    return render(
        request,
        "alert_form.html",
        {
            "kind": kind,
            "values": values,
            "errors": errors,
            "item_count": count,
            "alert": None,
            "preview": await _preview(session, live, kind, values),
            **await _form_context(session, live),
        },
        status_code=status,
    )


@router.post("/alerts/preview")
async def preview(request: Request, session: SessionDep, live: PostDep) -> HTMLResponse:
    """The "who will receive this" fragment, for the form's script (nothing is stored)."""
    form = await request.form()
    kind = str(form.get("kind") or "")
    if kind not in CREATE_MODELS:
        kind = "seized_weapon"
    result = await _preview(session, live, kind, forms.values_of(form))
    return render(
        request,
        "_preview.html",
        {"preview": result, "agencies": await common.directory(session, live.principal)},
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
    access = await alert_read.explain_access(session, p, alert_id)
    history: list[Any] = []
    if not read.tombstone:
        records = await audit.list_records(
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
            "agencies": await common.directory(session, p),
            "groups": {g.id: g for g in await common.groups(session, p)},
            "errors": errors,
        },
        status_code=status_code,
    )


@router.get("/alerts/{alert_id}/edit")
async def edit_alert_form(
    request: Request, alert_id: uuid.UUID, session: SessionDep, live: LiveDep
) -> HTMLResponse:
    """The edit form of an alert the agency wrote."""
    p = live.principal
    alert = await alert_query.read_alert(session, p, alert_id)
    read = (await alert_read.read_models(session, p, [alert]))[0]
    values = forms.values_from_alert(read)
    return render(
        request,
        "alert_form.html",
        {
            "kind": alert.kind,
            "values": values,
            "errors": forms.FormErrors(),
            "item_count": max(1, len(read.items or [])),
            "alert": read,
            "preview": await _preview(session, live, alert.kind, values),
            **await _form_context(session, live),
        },
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
            if isinstance(exc, AppError) and exc.status == 404:
                raise
            errors = forms.errors_of(exc)
            status = exc.status if isinstance(exc, AppError) else 422
    alert = await alert_query.get_visible_alert(session, p, alert_id)
    read = (await alert_read.read_models(session, p, [alert]))[0]
    return render(
        request,
        "alert_form.html",
        {
            "kind": kind,
            "values": values,
            "errors": errors,
            "item_count": count,
            "alert": read,
            "preview": await _preview(session, live, kind, values),
            **await _form_context(session, live),
        },
        status_code=status,
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
    reason = str(form.get("reason") or "").strip()
    try:
        if not reason or len(reason) > 2000:
            raise InvalidInput.on("reason", "Give a reason (at most 2,000 characters).")
        await alerts.withdraw_alert(session, live.principal, alert_id, reason)
    except AppError as exc:
        await session.rollback()
        if exc.status == 404:
            raise
        errors = forms.errors_of(exc)
        return await _alert_view(request, session, live, alert_id, errors, exc.status)
    return RedirectResponse(f"/console/alerts/{alert_id}", status_code=303)
