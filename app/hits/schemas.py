"""Answer bodies for hits."""

from __future__ import annotations

import uuid

from pydantic import Field

from app.core.schemas import OutputModel
from app.core.types import Instant
from app.hits.models import HitStatus, HitTier


class HitCounterpart(OutputModel):
    """The other agency of a hit: who holds the matching record and how to reach them."""

    agency_id: uuid.UUID
    agency_name: str
    agency_country: str
    contact_email: str | None
    alert_id: uuid.UUID | None = Field(
        description="The other record, only when sharing lets you see it; otherwise null."
    )


class HitRead(OutputModel):
    id: uuid.UUID
    tier: HitTier = Field(
        description=(
            "How closely the items match, when you may see the other record; otherwise "
            "always `candidate` (the serial matched), so that it says nothing of the other "
            "record's make or calibre."
        )
    )
    serial_key: str
    status: HitStatus = Field(description="Your side's status.")
    created_at: Instant
    my_alert_id: uuid.UUID
    blind_to_other: bool = Field(
        description=(
            "True while the other agency is not told of this hit, because your record is "
            "red, amber+strict or for your agency alone and it may not see it; "
            "`POST /hits/{id}/disclose` tells it who holds the record (never its content)."
        )
    )
    other: HitCounterpart


class HitPage(OutputModel):
    items: list[HitRead]
    next_cursor: str | None = None
