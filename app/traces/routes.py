"""`/api/v1/trace-requests`: the tracing workflow between the two parties."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from app.alerts.deps import AlertReader
from app.authz.principal import Principal
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.core.idempotency import IdempotencyKey, idempotent
from app.core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from app.traces import forward, query, read, workflow
from app.traces.deps import TraceActor, TraceParty
from app.traces.models import TraceState
from app.traces.query import PartyTrace
from app.traces.schemas import (
    TraceAnswer,
    TraceForward,
    TracePage,
    TraceQuestion,
    TraceRead,
    TraceRespond,
    TraceWithdraw,
)

router = APIRouter(prefix="/api/v1/trace-requests", tags=["trace requests"])
READ_ERRORS = problem_responses(401, 403, 404, 422)
STEP_ERRORS = problem_responses(401, 403, 404, 409, 422)
# Routes with a JSON body also answer 400 when it is not valid JSON or not UTF-8
# (app/core/errors.py); Schemathesis found that status undocumented.
BODY_STEP_ERRORS = problem_responses(400, 401, 403, 404, 409, 422)


async def _step(
    session: AsyncSession,
    principal: Principal,
    request: Request,
    key: str | None,
    party: PartyTrace,
    action: str,
    *,
    text: str | None = None,
    response: TraceRespond | None = None,
    forward_to: TraceForward | None = None,
) -> JSONResponse:
    # The guard's read is unlocked: the step's service locks what it changes, and reads
    # it afresh, only once the Idempotency-Key is taken (a repeat replays, locking nothing).
    alert_id = party.trace.alert_id

    async def run() -> TraceRead:
        if action == "withdraw":
            # One withdraw path, the alert's: the alert and its workflow end together.
            await workflow.withdraw_trace_request(session, principal, alert_id, text or "")
        elif action == "forward":
            assert forward_to is not None
            await forward.forward(session, principal, alert_id, forward_to)
        else:
            await workflow.act(session, principal, alert_id, action, text=text, response=response)
        return await current()

    async def current(_first: object = None) -> TraceRead:
        trace, alert = await query.get_trace(session, principal, alert_id)
        return await read.read_model(session, principal, trace, alert, full=True)

    return await idempotent(
        session, principal, request, key, status_code=200, run=run, reread=current
    )


@router.get("", response_model=TracePage, responses=READ_ERRORS)
async def list_trace_requests(
    session: SessionDep,
    principal: AlertReader,
    direction: Literal["incoming", "outgoing"] | None = None,
    status: TraceState | None = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> TracePage:
    """Trace requests your agency sent (outgoing) or received (incoming), newest first."""
    rows, next_cursor = await query.list_traces(
        session,
        principal,
        direction=direction,
        state=status,
        overdue=overdue,
        limit=limit,
        cursor=cursor,
    )
    items = [await read.read_model(session, principal, t, a, full=False) for t, a in rows]
    return TracePage(items=items, next_cursor=next_cursor)


@router.get("/{alert_id}", response_model=TraceRead, responses=READ_ERRORS)
async def get_trace_request(
    party: TraceParty, session: SessionDep, principal: AlertReader
) -> TraceRead:
    """The workflow, response and information exchange (the two parties only)."""
    return await read.read_model(session, principal, party.trace, party.alert, full=True)


@router.post("/{alert_id}/acknowledge", response_model=TraceRead, responses=STEP_ERRORS)
async def acknowledge(
    party: TraceParty,
    request: Request,
    session: SessionDep,
    principal: TraceActor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Requested agency: acknowledge receipt."""
    return await _step(session, principal, request, idempotency_key, party, "acknowledge")


@router.post("/{alert_id}/request-info", response_model=TraceRead, responses=BODY_STEP_ERRORS)
async def request_info(
    party: TraceParty,
    data: TraceQuestion,
    request: Request,
    session: SessionDep,
    principal: TraceActor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Requested agency: ask the requester for more information."""
    return await _step(
        session, principal, request, idempotency_key, party, "request_info", text=data.question
    )


@router.post("/{alert_id}/respond", response_model=TraceRead, responses=BODY_STEP_ERRORS)
async def respond(
    party: TraceParty,
    data: TraceRespond,
    request: Request,
    session: SessionDep,
    principal: TraceActor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Requested agency: answer the request (visible to the two parties only)."""
    return await _step(
        session, principal, request, idempotency_key, party, "respond", response=data
    )


@router.post("/{alert_id}/provide-info", response_model=TraceRead, responses=BODY_STEP_ERRORS)
async def provide_info(
    party: TraceParty,
    data: TraceAnswer,
    request: Request,
    session: SessionDep,
    principal: TraceActor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Requester: answer the requested agency's question."""
    return await _step(
        session, principal, request, idempotency_key, party, "provide_info", text=data.answer
    )


@router.post("/{alert_id}/close", response_model=TraceRead, responses=STEP_ERRORS)
async def close(
    party: TraceParty,
    request: Request,
    session: SessionDep,
    principal: TraceActor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Requester: close a responded request."""
    return await _step(session, principal, request, idempotency_key, party, "close")


@router.post("/{alert_id}/withdraw", response_model=TraceRead, responses=BODY_STEP_ERRORS)
async def withdraw(
    party: TraceParty,
    data: TraceWithdraw,
    request: Request,
    session: SessionDep,
    principal: TraceActor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Requester: withdraw an open request (the alert is withdrawn with it)."""
    return await _step(
        session, principal, request, idempotency_key, party, "withdraw", text=data.reason
    )


@router.post("/{alert_id}/forward", response_model=TraceRead, responses=BODY_STEP_ERRORS)
async def forward_request(
    party: TraceParty,
    data: TraceForward,
    request: Request,
    session: SessionDep,
    principal: TraceActor,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Requested agency: hand an open request to another agency of your country.

    This request ends `forwarded`; a new one, the requester's, goes to that agency alone
    (`forwarded_to` names it, and its `forwarded_from` names this one).
    """
    return await _step(
        session, principal, request, idempotency_key, party, "forward", forward_to=data
    )
