"""Console pages for webhook subscriptions: create (secret shown once), deliveries, replay."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.console import forms
from app.console.deps import LiveDep, PostDep, render
from app.core.db import SessionDep
from app.core.errors import AppError, InvalidInput
from app.core.pagination import MAX_LIMIT
from app.events.models import EventType
from app.sharing.handling import AlertKind, Tlp
from app.webhooks import service as webhooks
from app.webhooks.schemas import DeliveryRead, SubscriptionCreate, SubscriptionRead

router = APIRouter(prefix="/console/admin", include_in_schema=False)
SUBSCRIBABLE = [e.value for e in EventType if e is not EventType.subscription_disabled]


async def _subs_page(
    request: Request,
    session: SessionDep,
    live: Any,
    *,
    errors: forms.FormErrors | None = None,
    values: forms.Values | None = None,
    created: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rows, _ = await webhooks.list_subscriptions(
        session, live.principal, limit=MAX_LIMIT, cursor=None
    )
    return render(
        request,
        "admin_subscriptions.html",
        {
            "rows": [SubscriptionRead.model_validate(r) for r in rows],
            "events": SUBSCRIBABLE,
            "kinds": [k.value for k in AlertKind],
            "tlps": [t.value for t in Tlp],
            "errors": errors or forms.FormErrors(),
            "values": values or {},
            "created": created,
        },
        status_code=status_code,
    )


@router.get("/subscriptions")
async def subscriptions(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """The agency's webhook subscriptions, and a form to add one."""
    return await _subs_page(request, session, live)


@router.post("/subscriptions")
async def create_subscription(request: Request, session: SessionDep, live: PostDep) -> Response:
    """Subscribe an endpoint; the signing secret is shown on this answer only."""
    form = await request.form()
    values = forms.values_of(form)
    event_types = [e for e in form.getlist("event_types") if isinstance(e, str)]
    kinds = [k for k in form.getlist("kinds") if isinstance(k, str)]
    values["event_types"], values["kinds"] = event_types, kinds
    countries = str(values.get("countries") or "")
    try:
        data = SubscriptionCreate.model_validate(
            {
                "url": values.get("url", ""),
                "description": values.get("description", ""),
                "event_types": event_types,
                "kinds": kinds,
                "countries": [c.strip().upper() for c in countries.split(",") if c.strip()],
                "max_tlp": values.get("max_tlp") or None,
            }
        )
        sub, secret = await webhooks.create(
            session, live.principal, data, request.app.state.settings
        )
    except (AppError, ValidationError) as exc:
        await session.rollback()
        return await _subs_page(
            request, session, live, errors=forms.errors_of(exc), values=values, status_code=422
        )
    created = {"url": sub.url, "id": str(sub.id), "secret": secret}
    response = await _subs_page(request, session, live, created=created)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _deliveries_page(
    request: Request,
    session: SessionDep,
    live: Any,
    sub_id: uuid.UUID,
    errors: forms.FormErrors | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    sub = await webhooks.get(session, live.principal, sub_id)
    rows, next_cursor = await webhooks.list_deliveries(
        session,
        sub,
        status=None,
        limit=50,
        cursor=request.query_params.get("cursor") or None,
    )
    return render(
        request,
        "admin_deliveries.html",
        {
            "sub": SubscriptionRead.model_validate(sub),
            "rows": [DeliveryRead.model_validate(r) for r in rows],
            "next_cursor": next_cursor,
            "errors": errors or forms.FormErrors(),
            "notice": notice,
        },
        status_code=status_code,
    )


@router.get("/subscriptions/{sub_id}")
async def deliveries(
    request: Request, sub_id: uuid.UUID, session: SessionDep, live: LiveDep
) -> HTMLResponse:
    """A subscription and its delivery log."""
    return await _deliveries_page(request, session, live, sub_id)


@router.post("/subscriptions/{sub_id}/{action}")
async def subscription_action(
    request: Request, sub_id: uuid.UUID, action: str, session: SessionDep, live: PostDep
) -> Response:
    """Ping, replay since a date, pause, resume or delete a subscription."""
    form = await request.form()
    notice = None
    try:
        if action == "ping":
            await webhooks.ping(session, await webhooks.get(session, live.principal, sub_id))
            notice = "A ping event is queued."
        elif action == "replay":
            since = forms.instant(str(form.get("since") or ""), "since")
            sub = await webhooks.get(session, live.principal, sub_id)
            queued = await webhooks.replay(session, live.principal, sub, since)
            notice = f"{queued} deliveries queued again."
        elif action == "delete":
            await webhooks.delete(session, live.principal, sub_id)
            return RedirectResponse("/console/admin/subscriptions", status_code=303)
        else:
            raise InvalidInput.on("action", "Unknown action.")
    except AppError as exc:
        await session.rollback()
        if exc.status == 404:
            raise
        return await _deliveries_page(
            request, session, live, sub_id, errors=forms.errors_of(exc), status_code=exc.status
        )
    return await _deliveries_page(request, session, live, sub_id, notice=notice)


@router.post("/deliveries/{delivery_id}/retry")
async def retry_delivery(
    request: Request, delivery_id: uuid.UUID, session: SessionDep, live: PostDep
) -> Response:
    """Send one delivery again (same `webhook-id`)."""
    try:
        delivery = await webhooks.retry(session, live.principal, delivery_id)
    except AppError as exc:
        if exc.status == 404:
            raise
        await session.rollback()
        sub_id = forms.parse_sub(await request.form())
        if sub_id is None:
            raise
        return await _deliveries_page(
            request, session, live, sub_id, errors=forms.errors_of(exc), status_code=exc.status
        )
    return RedirectResponse(
        f"/console/admin/subscriptions/{delivery.subscription_id}", status_code=303
    )
