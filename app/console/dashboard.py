"""Console home page: trace requests needing action, recent hits and alerts, a chart."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from app.alerts import query as alert_query
from app.alerts import read as alert_read
from app.console import charts, common
from app.console.choices import KIND_NAMES
from app.console.deps import LiveDep, render
from app.core.db import SessionDep
from app.core.types import utcnow
from app.hits import read as hits
from app.traces import query as trace_query
from app.traces import read as trace_read
from app.traces.models import OPEN_STATES, TraceState

router = APIRouter(prefix="/console", include_in_schema=False)


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
        if t.state in (TraceState.info_requested, TraceState.responded)
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
            "agencies": await common.directory(session),
            "kinds": KIND_NAMES,
            "now": utcnow(),
        },
    )
