"""Console pages for trace requests (acknowledge, request info, respond, close…) and hits."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from app.console import common, forms
from app.console.deps import LiveDep, PostDep, render
from app.core.db import SessionDep
from app.core.errors import AppError, Conflict, InvalidInput
from app.hits import read as hit_read
from app.hits import service as hits
from app.hits.models import HitStatus
from app.traces import query as trace_query
from app.traces import read as trace_read
from app.traces import workflow as traces
from app.traces.models import TraceOutcome, TraceState
from app.traces.schemas import TraceAnswer, TraceQuestion, TraceRespond, TraceWithdraw

router = APIRouter(prefix="/console", include_in_schema=False)
ACTIONS = ("acknowledge", "request_info", "respond", "provide_info", "close", "withdraw")
# The API body of each step that takes a text: its one field and its limits.
TEXT_BODY: dict[str, type[TraceQuestion | TraceAnswer | TraceWithdraw]] = {
    "request_info": TraceQuestion,
    "provide_info": TraceAnswer,
    "withdraw": TraceWithdraw,
}
TEXT_FIELD = {action: next(iter(body.model_fields)) for action, body in TEXT_BODY.items()}


@router.get("/traces")
async def trace_list(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """Incoming and outgoing trace requests, with due dates and overdue marked."""
    q = request.query_params
    direction = q.get("direction") if q.get("direction") in ("incoming", "outgoing") else None
    state = q.get("status") if q.get("status") in {s.value for s in TraceState} else None
    rows, next_cursor = await trace_query.list_traces(
        session,
        live.principal,
        direction=direction,
        state=TraceState(state) if state else None,
        overdue=True if q.get("overdue") == "1" else None,
        limit=50,
        cursor=q.get("cursor") or None,
    )
    items = [
        await trace_read.read_model(session, live.principal, t, a, full=False) for t, a in rows
    ]
    return render(
        request,
        "traces.html",
        {
            "rows": items,
            "direction": direction or "",
            "status": state or "",
            "overdue": q.get("overdue") == "1",
            "states": [s.value for s in TraceState],
            "next_cursor": next_cursor,
            "agencies": await common.directory(session),
        },
    )


async def _trace_view(
    request: Request,
    session: SessionDep,
    live: Any,
    alert_id: uuid.UUID,
    errors: forms.FormErrors,
    values: forms.Values,
    status_code: int = 200,
) -> HTMLResponse:
    trace, alert = await trace_query.get_trace(session, live.principal, alert_id)
    read = await trace_read.read_model(session, live.principal, trace, alert, full=True)
    return render(
        request,
        "trace.html",
        {
            "t": read,
            "errors": errors,
            "values": values,
            "outcomes": [o.value for o in TraceOutcome],
            "agencies": await common.directory(session),
        },
        status_code=status_code,
    )


@router.get("/traces/{alert_id}")
async def trace_page(
    request: Request, alert_id: uuid.UUID, session: SessionDep, live: LiveDep
) -> HTMLResponse:
    """One trace request: its state, deadlines, questions, response and history."""
    return await _trace_view(request, session, live, alert_id, forms.FormErrors(), {})


def _respond_body(values: forms.Values) -> dict[str, Any]:
    findings = {
        k: values.get(f"findings.{k}") or None
        for k in ("manufacturer", "exporter", "importer", "last_legal_holder", "notes")
    }
    return {
        "outcome": values.get("outcome") or None,
        "findings": {k: v for k, v in findings.items() if v},
        "reasons": values.get("reasons") or None,
        "use_restrictions": values.get("use_restrictions") or None,
    }


@router.post("/traces/{alert_id}/{action}")
async def trace_step(
    request: Request, alert_id: uuid.UUID, action: str, session: SessionDep, live: PostDep
) -> Response:
    """Move the workflow one step (the same service function as the API's steps)."""
    form = await request.form()
    values = forms.values_of(form)
    try:
        if action not in ACTIONS:
            raise InvalidInput.on("action", "Unknown step.")
        text = None
        response = None
        if action in TEXT_FIELD:
            field = TEXT_FIELD[action]
            text = str(values.get(field) or "")
            if not text:
                raise InvalidInput.on(field, "This field is required.")
            text = getattr(TEXT_BODY[action].model_validate({field: text}), field)
        if action == "respond":
            response = TraceRespond.model_validate(_respond_body(values))
        if action == "withdraw":
            # The API's one withdraw path: the alert and its workflow end together.
            await traces.withdraw_trace_request(session, live.principal, alert_id, text or "")
        else:
            await traces.act(
                session, live.principal, alert_id, action, text=text, response=response
            )
    except (AppError, ValidationError) as exc:
        await session.rollback()
        if isinstance(exc, AppError) and exc.status == 404:
            raise
        errors = forms.errors_of(exc)
        if action == "respond" and any("`reasons`" in g for g in errors.general):
            errors.fields["reasons"] = "Give the reasons for a restricted or refused response."
            errors.general = [g for g in errors.general if "`reasons`" not in g]
        status = exc.status if isinstance(exc, AppError) else 422
        return await _trace_view(request, session, live, alert_id, errors, values, status)
    return RedirectResponse(f"/console/traces/{alert_id}", status_code=303)


@router.get("/hits")
async def hit_list(request: Request, session: SessionDep, live: LiveDep) -> HTMLResponse:
    """Hits on the agency's records: which other agency holds a matching record."""
    q = request.query_params
    status = q.get("status") if q.get("status") in {s.value for s in HitStatus} else None
    rows, next_cursor = await hit_read.list_hits(
        session,
        live.principal,
        status=HitStatus(status) if status else None,
        limit=50,
        cursor=q.get("cursor") or None,
    )
    return render(
        request,
        "hits.html",
        {
            "rows": await hit_read.read_models(session, live.principal, rows),
            "status": status or "",
            "statuses": [s.value for s in HitStatus],
            "next_cursor": next_cursor,
        },
    )


@router.post("/hits/{hit_id}/{action}")
async def hit_step(hit_id: uuid.UUID, action: str, session: SessionDep, live: PostDep) -> Response:
    """Confirm or dismiss a hit, for the agency's side."""
    targets: dict[str, hits.Decision] = {
        "confirm": HitStatus.confirmed,
        "dismiss": HitStatus.dismissed,
    }
    if action not in targets:
        raise InvalidInput.on("action", "Unknown step.")
    try:
        await hits.set_status(session, live.principal, hit_id, targets[action])
    except Conflict:
        await session.rollback()  # already so for this side (a second click): nothing to do
    return RedirectResponse("/console/hits", status_code=303)
