"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from app.core.errors import problem_response, problem_responses

router = APIRouter(tags=["operations"])
log = logging.getLogger("tracewire.ops")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses=problem_responses(503))
async def readyz(request: Request) -> JSONResponse:
    """The process can reach its database."""
    try:
        await request.app.state.db.ping()
    except (SQLAlchemyError, OSError) as exc:
        log.warning("database unreachable", extra={"error": type(exc).__name__})
        return problem_response(
            503, slug="not-ready", title="Not ready", detail="The database is unreachable."
        )
    return JSONResponse({"status": "ready", "database": "ok"})
