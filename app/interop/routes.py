"""`GET /api/v1/alerts/{id}/stix`: one alert as a STIX 2.1 bundle."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.alerts.deps import AlertReader, VisibleAlert
from app.core.db import SessionDep
from app.core.errors import problem_responses
from app.interop import export

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])


class StixBundle(BaseModel):
    """A STIX 2.1 bundle (see the extension definition it carries for the custom parts)."""

    type: Literal["bundle"]
    id: str = Field(pattern=r"^bundle--[0-9a-f-]{36}$")
    objects: list[dict[str, Any]]


@router.get(
    "/{alert_id}/stix", response_model=StixBundle, responses=problem_responses(401, 403, 404, 422)
)
async def export_stix(
    alert: VisibleAlert, session: SessionDep, principal: AlertReader
) -> dict[str, Any]:
    """The alert as a STIX 2.1 bundle: a `report`, its `seized-item`s, place and identities."""
    return await export.export_alert(session, principal, alert)
